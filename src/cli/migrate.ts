import { openDataDb } from '../daemon.js';
import { migrate } from '../db/migrate.js';
import { commonArgs } from './args.js';

/** `observd migrate`: applies pending migrations to the data directory's database and says which. */
export async function migrateCommand(argv: string[]): Promise<number> {
  // An encrypted store is migrated with its key (and refused, clearly, without it).
  const { db } = openDataDb(commonArgs(argv).config());
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
