import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from '../assets/blob-store.js';
import { applyKey, checkpointTruncate, openDb } from '../db/open.js';
import { BlobEncryptor } from './blob-cipher.js';
import { blobNameOf, type StoreKeys } from './keys.js';
import { CONVERT_DIR, finishConversion, fsyncPath, markerFor, PID_FILE, READY_FILE, writeFileAtomic } from './store.js';

export interface ConversionReport {
  blobs: number;
  uploads: number;
}

/**
 * Converts a stopped store in place, from `from` (undefined: plain) to `to` (`observd encrypt`
 * and `observd rekey`), so that a crash at any point leaves a usable store: the converted
 * database and blobs are built beside it in `.convert/` and fsynced, a READY file is written,
 * and only then is the store switched over by renames that `finishConversion` rolls forward
 * (also at the next start) if the process dies between them. Before READY, a crash leaves the
 * old store untouched and the partial copy is dropped. `crashAt` is a test hook.
 */
export async function convertStore(
  dataDir: string,
  from: StoreKeys | undefined,
  to: StoreKeys,
  crashAt: (point: string) => void = () => {},
): Promise<ConversionReport> {
  finishConversion(dataDir);
  const dir = join(dataDir, CONVERT_DIR);
  const dbFile = join(dataDir, 'observd.db');
  const copyFile = join(dir, 'observd.db');
  const db = openDb(dbFile, from?.dbHex);
  let shas: string[];
  try {
    // A running daemon makes this fail before anything is written. From here on the PID file
    // keeps a daemon that starts meanwhile from dropping or racing the conversion.
    db.pragma('busy_timeout = 200');
    db.pragma('locking_mode = EXCLUSIVE');
    try {
      db.exec('BEGIN EXCLUSIVE; COMMIT');
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new Error(`the store in ${dataDir} is in use: stop observd first`);
      throw e;
    }
    mkdirSync(join(dir, 'blobs'), { recursive: true });
    mkdirSync(join(dir, 'uploads'), { recursive: true });
    writeFileSync(join(dir, PID_FILE), String(process.pid));
    // The database: a consistent copy (VACUUM INTO keeps the source's encryption), then keyed anew.
    checkpointTruncate(db);
    db.prepare('VACUUM INTO ?').run(copyFile);
    shas = db.prepare('SELECT sha256 FROM assets').pluck().all() as string[];
  } finally {
    db.close();
  }
  const copy = new (await import('better-sqlite3-multiple-ciphers')).default(copyFile);
  try {
    if (from) applyKey(copy, from.dbHex);
    // The copy is in rollback-journal mode (rekeying needs that); the daemon turns WAL on again.
    applyKey(copy, to.dbHex, 'rekey');
  } finally {
    copy.close();
  }
  fsyncPath(copyFile);
  crashAt('database-copied');

  // Blobs and signed uploads waiting to be used: decrypted (or read) and sealed with the new key.
  const old = new BlobStore(dataDir, from);
  const shards = new Set<string>();
  for (const sha of shas) {
    if (!old.has(sha)) continue;
    const name = blobNameOf(to, sha);
    const shard = join(dir, 'blobs', name.slice(0, 2), name.slice(2, 4));
    if (!shards.has(shard)) mkdirSync(shard, { recursive: true }), shards.add(shard);
    await sealInto(old.stream(sha), join(shard, name), to);
  }
  for (const s of shards) fsyncPath(s);
  let uploads = 0;
  const uploadsDir = join(dataDir, 'uploads');
  if (existsSync(uploadsDir)) {
    for (const f of readdirSync(uploadsDir)) {
      await sealInto(old.streamFile(join(uploadsDir, f)), join(dir, 'uploads', f), to);
      uploads++;
    }
  }
  fsyncPath(join(dir, 'blobs'));
  fsyncPath(join(dir, 'uploads'));
  fsyncPath(dir);
  crashAt('blobs-copied');

  writeFileAtomic(dir, READY_FILE, JSON.stringify(markerFor(to)));
  crashAt('ready');
  finishConversion(dataDir, crashAt);
  // Nothing of the old store is left but freed disk blocks (see docs/privacy.md).
  rmSync(join(dataDir, 'tmp'), { recursive: true, force: true });
  mkdirSync(join(dataDir, 'tmp'), { recursive: true });
  return { blobs: shas.length, uploads };
}

/** Writes `plain` sealed with `to`'s blob key into a new file, fsynced. */
async function sealInto(plain: AsyncIterable<Buffer>, dest: string, to: StoreKeys): Promise<void> {
  const enc = new BlobEncryptor(to.blob);
  const fd = openSync(dest, 'wx');
  try {
    for await (const chunk of plain) writeSync(fd, enc.push(chunk));
    writeSync(fd, enc.end());
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
