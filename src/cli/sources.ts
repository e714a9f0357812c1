import { readFileSync } from 'node:fs';
import { openStore } from '../daemon.js';
import { allRows } from '../pagination.js';
import { sourceUpsertSchema } from '../sources/schemas.js';
import { commonArgs } from './args.js';

/**
 * `observd sources list [--query Q]` and `observd sources create --id ID --kind KIND
 * --display-name NAME [--token-file FILE]`: source administration straight against the data
 * directory (safe beside a running daemon: SQLite serialises the writers). Prints JSON.
 */
export async function sourcesCommand(argv: string[]): Promise<number> {
  const args = commonArgs(argv, {
    query: { type: 'string' },
    id: { type: 'string' },
    kind: { type: 'string' },
    'display-name': { type: 'string' },
    'token-file': { type: 'string' },
  });
  const v = args.values as Record<string, string | undefined>;
  const [sub] = args.positionals;
  if (sub !== 'list' && sub !== 'create') {
    console.error('usage: observd sources list [--query Q] | sources create --id ID --kind KIND --display-name NAME [--token-file FILE]');
    return 2;
  }
  const store = openStore(args.config(), { sweepStrays: false });
  const { services } = store;
  try {
    if (sub === 'list') {
      for (const s of allRows(services.sources.list({ query: v.query }), 1000)) console.log(JSON.stringify(s));
      return 0;
    }
    const input = sourceUpsertSchema.safeParse({
      source_id: v.id,
      kind: v.kind,
      display_name: v['display-name'] ?? v.id,
      upload_token: v['token-file'] ? readFileSync(v['token-file'], 'utf8').trim() : undefined,
    });
    if (!input.success) {
      for (const i of input.error.issues) console.error(`${i.path.join('.') || 'input'}: ${i.message}`);
      return 2;
    }
    const { source, upload_token, created } = services.sources.upsert(input.data);
    console.log(JSON.stringify({ created, ...source, ...(upload_token ? { upload_token } : {}) }));
    return 0;
  } finally {
    await store.close();
  }
}
