import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveStoreKeys } from '../crypto/store.js';
import { migrate } from '../db/migrate.js';
import { openDb } from '../db/open.js';
import { commonArgs } from './args.js';

/** `observd migrate`: applies pending migrations to the data directory's database and says which. */
export async function migrateCommand(argv: string[]): Promise<number> {
  const config = commonArgs(argv).config();
  mkdirSync(config.data_dir, { recursive: true });
  // An encrypted store is migrated with its key (and refused, clearly, without it).
  const keys = resolveStoreKeys(config.data_dir, config.encryption.key_file);
  const db = openDb(join(config.data_dir, 'observd.db'), keys?.dbHex);
  try {
    const applied = migrate(db);
    const version = db.pragma('user_version', { simple: true });
    console.log(
      JSON.stringify({ applied: applied.map((m) => `${String(m.version).padStart(3, '0')}_${m.name}`), schema_version: version }),
    );
  } finally {
    db.close();
  }
  return 0;
}
