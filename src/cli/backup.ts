import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MARKER_FILE } from '../crypto/store.js';
import { openStore } from '../daemon.js';
import { openDb } from '../db/open.js';
import { commonArgs } from './args.js';

/**
 * `observd backup DEST`: a consistent copy of the data directory, safe beside a running daemon:
 * SQLite's online backup of the database, then every blob the copied database references
 * (blobs are immutable, so copying after the snapshot is enough). DEST must not exist yet.
 */
export async function backupCommand(argv: string[]): Promise<number> {
  const args = commonArgs(argv);
  const dest = args.positionals[0];
  if (!dest) {
    console.error('usage: observd backup DEST_DIR');
    return 2;
  }
  if (existsSync(dest) && readdirSync(dest).length > 0) {
    console.error(`backup destination ${dest} is not empty`);
    return 1;
  }
  const store = openStore(args.config(), { sweepStrays: false });
  const { services } = store;
  try {
    mkdirSync(dest, { recursive: true });
    const dbCopy = join(dest, 'observd.db');
    const keys = services.blobs.keys;
    let shas: string[];
    if (keys) {
      // An encrypted database cannot be copied by the backup API into a plain file; VACUUM INTO
      // writes a consistent copy encrypted with the same key, and the marker goes with it.
      services.db.prepare('VACUUM INTO ?').run(dbCopy);
      copyFileSync(join(services.blobs.dataDir, MARKER_FILE), join(dest, MARKER_FILE));
    } else {
      await services.db.backup(dbCopy);
    }
    const copy = openDb(dbCopy, keys?.dbHex);
    try {
      shas = copy.prepare(`SELECT sha256 FROM assets`).pluck().all() as string[];
    } finally {
      copy.close();
    }
    let copied = 0;
    let missing = 0;
    for (const sha of shas) {
      const from = services.blobs.pathOf(sha);
      const to = join(dest, from.slice(services.blobs.dataDir.length));
      if (!existsSync(from)) {
        missing++;
        continue;
      }
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
      copied++;
    }
    console.log(JSON.stringify({ destination: dest, database: dbCopy, blobs_copied: copied, blobs_missing: missing }));
    return missing ? 1 : 0;
  } finally {
    await store.close();
  }
}
