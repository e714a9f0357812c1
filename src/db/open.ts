import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/** Opens (creating if needed) the SQLite database in WAL mode with foreign keys and a busy timeout; see `WalSync` for durability. */
export function openDb(file: string): Db {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
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
