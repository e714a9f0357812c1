import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { applyKey } from '../db/open.js';
import { deriveKeys, keyMatches, readKeyFile, type StoreKeys } from './keys.js';

/** The marker of an encrypted data directory: what is encrypted how, and which key (by check value). */
export interface EncryptionMarker {
  format: 1;
  database: 'sqlcipher4';
  blobs: 'aes-256-gcm-64k';
  key_check: string;
}

export const MARKER_FILE = 'encryption.json';
/** Where `observd encrypt` and `observd rekey` build the converted store before switching to it. */
export const CONVERT_DIR = '.convert';
/** Written into CONVERT_DIR once the converted copy is complete and durable: from then on the switch only rolls forward. */
export const READY_FILE = 'READY';

export function markerFor(keys: StoreKeys): EncryptionMarker {
  return { format: 1, database: 'sqlcipher4', blobs: 'aes-256-gcm-64k', key_check: keys.check };
}

/** Blocking fsync of a file or directory by path. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a small file durably and atomically (temp, fsync, rename, fsync of the directory). */
export function writeFileAtomic(dir: string, name: string, content: string): void {
  const tmp = join(dir, `${name}.tmp`);
  writeFileSync(tmp, content, { flush: true });
  renameSync(tmp, join(dir, name));
  fsyncPath(dir);
}

function readMarker(dataDir: string): EncryptionMarker | undefined {
  const p = join(dataDir, MARKER_FILE);
  if (!existsSync(p)) return undefined;
  return JSON.parse(readFileSync(p, 'utf8')) as EncryptionMarker;
}

/** True when the database file exists and does not start with SQLite's plain header. */
function dbLooksEncrypted(dbFile: string): boolean {
  if (!existsSync(dbFile)) return false;
  const fd = openSync(dbFile, 'r');
  try {
    const head = Buffer.alloc(16);
    const n = readSync(fd, head, 0, 16, 0);
    return n === 16 && head.toString('latin1') !== 'SQLite format 3\u0000';
  } finally {
    closeSync(fd);
  }
}

/** True when `keyHex` opens the encrypted database (read-only, nothing written). */
function keyOpens(dbFile: string, keyHex: string): boolean {
  const db = new Database(dbFile, { readonly: true });
  try {
    applyKey(db, keyHex);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return true;
  } catch {
    return false;
  } finally {
    db.close();
  }
}

function dbHasContent(dbFile: string): boolean {
  return existsSync(dbFile) && statSync(dbFile).size > 0;
}

/** The file in CONVERT_DIR naming the process that builds it. */
export const PID_FILE = 'PID';

function converterAlive(dir: string): boolean {
  const p = join(dir, PID_FILE);
  if (!existsSync(p)) return false;
  const pid = Number(readFileSync(p, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finishes a conversion (`observd encrypt` / `rekey`) a crash interrupted: once its READY file
 * exists the converted copy is complete, so the switch is rolled forward (each step is a rename
 * that is skipped when already done); without it the unfinished copy is dropped and the store
 * stays as it was. Idempotent; run before the store is opened.
 */
export function finishConversion(dataDir: string, crashAt?: (point: string) => void): void {
  const dir = join(dataDir, CONVERT_DIR);
  if (!existsSync(dir)) return;
  const ready = join(dir, READY_FILE);
  if (!existsSync(ready)) {
    // A conversion still running in another process is not ours to drop (it holds the store's lock).
    if (converterAlive(dir)) throw new Error(`observd encrypt or rekey is converting ${dataDir}: wait for it to finish`);
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  const marker = readFileSync(ready, 'utf8');
  const newDb = join(dir, 'observd.db');
  if (existsSync(newDb)) {
    // The old log was checkpointed into the copy; left beside the new file it would be replayed into it.
    for (const f of ['observd.db-wal', 'observd.db-shm']) rmSync(join(dataDir, f), { force: true });
    renameSync(newDb, join(dataDir, 'observd.db'));
    fsyncPath(dataDir);
    crashAt?.('db-switched');
  }
  for (const sub of ['blobs', 'uploads']) {
    const next = join(dir, sub);
    if (!existsSync(next)) continue;
    const old = join(dir, `old-${sub}`);
    if (existsSync(join(dataDir, sub))) {
      rmSync(old, { recursive: true, force: true });
      renameSync(join(dataDir, sub), old);
    }
    renameSync(next, join(dataDir, sub));
    fsyncPath(dataDir);
    crashAt?.(`${sub}-switched`);
  }
  if (marker.trim() === 'plain') rmSync(join(dataDir, MARKER_FILE), { force: true });
  else writeFileAtomic(dataDir, MARKER_FILE, marker);
  crashAt?.('marker-written');
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Decides how a data directory is opened, before anything in it is touched (except finishing
 * an interrupted conversion): undefined for a plain store; the derived keys for an encrypted
 * one. A fresh directory with a key becomes encrypted. Throws a clear error (never the key)
 * when the key is missing, wrong, or given for a store that is not encrypted.
 */
export function resolveStoreKeys(dataDir: string, keyFile: string | undefined): StoreKeys | undefined {
  finishConversion(dataDir);
  const marker = readMarker(dataDir);
  const dbFile = join(dataDir, 'observd.db');
  if (!keyFile) {
    if (marker || dbLooksEncrypted(dbFile)) {
      throw new Error(
        `the data directory ${dataDir} is encrypted: configure its key with encryption.key_file or OBSERVD_ENCRYPTION_KEY_FILE`,
      );
    }
    return undefined;
  }
  const keys = deriveKeys(readKeyFile(keyFile));
  if (!marker) {
    // An encrypted database whose marker was lost: the key proves itself by opening it.
    if (dbLooksEncrypted(dbFile)) {
      if (!keyOpens(dbFile, keys.dbHex)) {
        throw new Error(`the encryption key in ${keyFile} cannot read ${dbFile} (wrong key); nothing was changed`);
      }
      writeFileAtomic(dataDir, MARKER_FILE, JSON.stringify(markerFor(keys)));
      return keys;
    }
    if (dbHasContent(dbFile)) {
      throw new Error(
        `the data directory ${dataDir} is not encrypted but an encryption key is configured: stop observd and run "observd encrypt" to convert it, or remove the key setting`,
      );
    }
    writeFileAtomic(dataDir, MARKER_FILE, JSON.stringify(markerFor(keys)));
    return keys;
  }
  if (!keyMatches(keys, marker.key_check)) {
    throw new Error(`the encryption key in ${keyFile} is not the key of the data directory ${dataDir} (wrong key); nothing was changed`);
  }
  return keys;
}
