import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import Database from 'better-sqlite3-multiple-ciphers';

export type Db = Database.Database;

/**
 * Opens (creating if needed) the SQLite database in WAL mode with foreign keys, a busy timeout
 * and `secure_delete` (deleted content is overwritten, not left in free pages); see `WalSync`
 * for durability. `dbKeyHex` (a raw 256-bit key) opens or creates it encrypted, SQLCipher 4
 * format; a wrong key fails here with SQLITE_NOTADB, before anything is written.
 */
export function openDb(file: string, dbKeyHex?: string): Db {
  const db = new Database(file);
  opened.set(db, { file, keyHex: dbKeyHex });
  try {
    if (dbKeyHex) applyKey(db, dbKeyHex);
    db.pragma('journal_mode = WAL');
  } catch (e) {
    db.close();
    throw e;
  }
  db.pragma('secure_delete = ON');
  // Commits do not fsync on the event loop: uploads make their commit durable with `WalSync`
  // off the loop before answering, and SQLite still fsyncs around every checkpoint.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  // Listing pages read ~100 scattered rows: keep hot pages cached and read the file through mmap.
  db.pragma('cache_size = -65536');
  db.pragma('mmap_size = 268435456');
  db.pragma('busy_timeout = 5000');
  return db;
}

const opened = new WeakMap<Db, { file: string; keyHex?: string }>();

/** The file and key `openDb` opened a connection with (a read pool opens the same, read-only); undefined for other connections. */
export function openedWith(db: Db): { file: string; keyHex?: string } | undefined {
  return opened.get(db);
}

/** Keys a connection just opened (a raw key: no passphrase derivation), SQLCipher 4 format. */
export function applyKey(db: Db, keyHex: string, pragma: 'key' | 'rekey' = 'key'): void {
  if (!/^[0-9a-f]{64}$/.test(keyHex)) throw new Error('a database key is 64 hex digits');
  db.pragma(`cipher = 'sqlcipher'`);
  db.pragma('legacy = 4');
  db.pragma(`${pragma} = "x'${keyHex}'"`);
}

/**
 * Moves everything in the write-ahead log into the database file and truncates the log, so
 * what was just erased (overwritten in the database by `secure_delete`) survives in no old
 * log frame. Never throws: it runs after a commit that already happened (and from timers), so
 * a full disk or a reader that kept the log from being reset makes it return false, and the
 * next checkpoint finishes the job.
 */
export function checkpointTruncate(db: Db): boolean {
  try {
    const [r] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    return r?.busy === 0;
  } catch {
    return false;
  }
}

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/** A prepared statement for `sql`, compiled once per connection and reused. */
export function stmt(db: Db, sql: string): Database.Statement {
  let byDb = statements.get(db);
  if (!byDb) statements.set(db, (byDb = new Map()));
  let s = byDb.get(sql);
  if (!s) byDb.set(sql, (s = db.prepare(sql)));
  return s;
}

/**
 * Makes committed transactions durable by fdatasync-ing the write-ahead log. With
 * `synchronous = NORMAL` a commit is safe against a crashed process but waits for this before
 * it is safe against power loss: `sync()` runs the fsync on libuv's pool so concurrent uploads
 * share it without blocking the event loop; `syncNow()` is the blocking form for rare paths
 * (before erasing blobs a commit released).
 */
export class WalSync {
  private fh: FileHandle | undefined;
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(private walPath: string) {}

  /**
   * Resolves once everything committed before the call is on disk. A call made while an fsync
   * runs waits for the next one, which then serves every caller queued behind it.
   */
  sync(): Promise<void> {
    if (!this.running) {
      this.running = this.fsyncOnce().finally(() => (this.running = undefined));
      return this.running;
    }
    this.queued ??= this.running
      .catch(() => {})
      .then(() => {
        this.queued = undefined;
        return this.sync();
      });
    return this.queued;
  }

  private async fsyncOnce(): Promise<void> {
    this.fh ??= await open(this.walPath, 'r+');
    await this.fh.datasync();
  }

  /** Blocking fdatasync of the log. */
  syncNow(): void {
    const fd = openSync(this.walPath, 'r+');
    try {
      fdatasyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  async close(): Promise<void> {
    await this.running?.catch(() => {});
    await this.queued?.catch(() => {});
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
  }
}
