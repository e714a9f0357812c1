import { parseArgs } from 'node:util';
import { loadConfig, type ConfigFlags } from '../config/load.js';

/** Parses the flags every command shares and loads the layered configuration. */
export function commonArgs(argv: string[], extra: Record<string, { type: 'boolean' | 'string'; multiple?: boolean }> = {}) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      bind: { type: 'string' },
      'data-dir': { type: 'string' },
      'admin-token-file': { type: 'string' },
      'readonly-token-file': { type: 'string' },
      'log-level': { type: 'string' },
      ...extra,
    },
  });
  const flags: ConfigFlags = {
    config: values.config as string | undefined,
    bind: values.bind as string | undefined,
    data_dir: values['data-dir'] as string | undefined,
    admin_token_file: values['admin-token-file'] as string | undefined,
    readonly_token_file: values['readonly-token-file'] as string | undefined,
    log_level: values['log-level'] as string | undefined,
  };
  return { values, positionals, config: () => loadConfig(flags) };
}
