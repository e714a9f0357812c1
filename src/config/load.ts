import { existsSync, readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { parseConfig, type Config } from './schema.js';

export interface ConfigFlags {
  config?: string;
  bind?: string;
  data_dir?: string;
  admin_token_file?: string;
  readonly_token_file?: string;
  log_level?: string;
}

type Env = Record<string, string | undefined>;

const ENV_KEYS: Array<[string, string, 'string' | 'number']> = [
  ['OBSERVD_BIND', 'bind', 'string'],
  ['OBSERVD_DATA_DIR', 'data_dir', 'string'],
  ['OBSERVD_ADMIN_TOKEN', 'admin_token', 'string'],
  ['OBSERVD_ADMIN_TOKEN_FILE', 'admin_token_file', 'string'],
  ['OBSERVD_READONLY_TOKEN', 'readonly_token', 'string'],
  ['OBSERVD_READONLY_TOKEN_FILE', 'readonly_token_file', 'string'],
  ['OBSERVD_LOG_LEVEL', 'log_level', 'string'],
  ['OBSERVD_ENCRYPTION_KEY_FILE', 'encryption.key_file', 'string'],
  ['OBSERVD_MAX_RAW_BYTES', 'limits.max_raw_bytes', 'number'],
  ['OBSERVD_SWEEP_INTERVAL_MS', 'retention.sweep_interval_ms', 'number'],
  ['OBSERVD_MIN_FREE_BYTES', 'retention.min_free_bytes', 'number'],
];

function setPath(obj: Record<string, unknown>, path: string, value: unknown) {
  const keys = path.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    cur[k] = (cur[k] as Record<string, unknown>) ?? {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

/**
 * Loads the configuration: `config.toml` (or `--config`), then `OBSERVD_*` env, then flags.
 * Token files are read here so the rest of the daemon only sees token values; throws on any bad value.
 */
export function loadConfig(flags: ConfigFlags = {}, env: Env = process.env): Config {
  const path = flags.config ?? env.OBSERVD_CONFIG ?? 'config.toml';
  let raw: Record<string, unknown> = {};
  if (existsSync(path)) {
    raw = parseToml(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } else if (flags.config ?? env.OBSERVD_CONFIG) {
    throw new Error(`config file not found: ${path}`);
  }
  // A token given in env, as a value or a file, replaces both forms from the config file.
  for (const t of ['admin_token', 'readonly_token']) {
    const upper = `OBSERVD_${t.toUpperCase()}`;
    if (env[upper] || env[`${upper}_FILE`]) {
      delete raw[t];
      delete raw[`${t}_file`];
    }
  }
  for (const [name, key, type] of ENV_KEYS) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    setPath(raw, key, type === 'number' ? Number(v) : v);
  }
  const flagMap: Record<string, string | undefined> = {
    bind: flags.bind,
    data_dir: flags.data_dir,
    admin_token_file: flags.admin_token_file,
    readonly_token_file: flags.readonly_token_file,
    log_level: flags.log_level,
  };
  for (const [k, v] of Object.entries(flagMap)) if (v !== undefined) raw[k] = v;
  // A token file given at a later layer wins over a token value from an earlier one.
  if (flags.admin_token_file) delete raw.admin_token;
  if (flags.readonly_token_file) delete raw.readonly_token;
  return resolveTokenFiles(parseConfig(raw));
}

function readToken(file: string, what: string): string {
  const value = readFileSync(file, 'utf8').trim();
  if (value.length < 16) throw new Error(`${what} in ${file} must be at least 16 characters`);
  return value;
}

/** Replaces `*_token_file` settings with the tokens they hold. */
export function resolveTokenFiles(config: Config): Config {
  const out = { ...config };
  if (out.admin_token_file) out.admin_token = readToken(out.admin_token_file, 'admin token');
  if (out.readonly_token_file) out.readonly_token = readToken(out.readonly_token_file, 'read-only token');
  return out;
}

/** Splits `host:port` (IPv6 in brackets); throws on a malformed value. */
export function parseBind(bind: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(bind);
  if (!m) throw new Error(`bind must be host:port, got "${bind}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`bind port out of range: ${port}`);
  return { host: m[1] ?? m[2], port };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
