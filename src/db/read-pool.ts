import { workerCount } from '../cores.js';
import { Worker } from 'node:worker_threads';
import { AppError, type ErrorCode } from '../errors.js';
import { openedWith, type Db } from './open.js';

/**
 * A read a worker can run on its own read-only connection: `run(db, ...args)`, exported as `name`
 * from the module at `module` (its `import.meta.url`), so a worker can import it. Arguments and
 * result cross threads by structured clone; `run` must only read.
 */
export interface ReadJob<A extends unknown[], R> {
  module: string;
  name: string;
  run: (db: Db, ...args: A) => R;
}

/** What a worker answers: the result, or the error (an `AppError`'s code and message survive). */
type Answer = { id: number; result: unknown } | { id: number; error: { message: string; code?: string; app: boolean } };

interface Pending {
  job: ReadJob<unknown[], unknown>;
  args: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * Read-only SQLite connections in worker threads (`src/db/read-worker.ts`), so long reads (listing
 * pages) leave the event loop free and run on another core. Workers start on first use, one more
 * whenever every running one is busy, up to `size`. WAL mode lets them see every committed
 * transaction; each read is one statement's (or one job's) short read transaction, so checkpoints
 * are not starved. If a worker cannot start or dies, its reads and every later one run on the
 * main connection instead (`onError` says why, once).
 */
export class ReadPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private failed = false;
  private closed = false;
  /** Reads answered by a worker and on the main connection (`stats`). */
  private served = { worker: 0, main: 0 };

  constructor(
    private db: Db,
    private size: number,
    private onError: (e: unknown) => void = () => {},
  ) {}

  /** Runs `job` on a worker's connection (or on the main one, see above); rejects with the job's own error. */
  run<A extends unknown[], R>(job: ReadJob<A, R>, ...args: A): Promise<R> {
    if (this.size === 0 || this.failed || this.closed) return this.onMain(job as ReadJob<unknown[], unknown>, args) as Promise<R>;
    const slot = this.pick();
    if (!slot) return this.onMain(job as ReadJob<unknown[], unknown>, args) as Promise<R>;
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      slot.pending.set(id, { job: job as ReadJob<unknown[], unknown>, args, resolve: resolve as (v: unknown) => void, reject });
      slot.worker.postMessage({ id, module: runnable(job.module), name: job.name, args });
    });
  }

  /** How many reads workers and the main connection answered so far, and the workers running. */
  stats(): { worker_reads: number; main_reads: number; workers: number } {
    return { worker_reads: this.served.worker, main_reads: this.served.main, workers: this.slots.length };
  }

  /** Ends the workers; reads still waiting on one are rejected, later ones run on the main connection. */
  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots;
    this.slots = [];
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private onMain(job: ReadJob<unknown[], unknown>, args: unknown[]): Promise<unknown> {
    return new Promise((resolve) => {
      this.served.main++;
      resolve(job.run(this.db, ...args));
    });
  }

  /** The least busy worker, starting another while all are busy and the pool has room; undefined if none can start. */
  private pick(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.pending.size < best.pending.size) best = s;
    if (best && (best.pending.size === 0 || this.slots.length >= this.size)) return best;
    return this.spawn() ?? best;
  }

  private spawn(): Slot | undefined {
    const opened = openedWith(this.db);
    if (!opened) return this.fail(new Error('the read pool needs a connection opened by openDb'));
    let worker: Worker;
    try {
      // The key travels in workerData only (never logged); the worker opens the same file read-only.
      worker = new Worker(new URL(runnable(import.meta.url.replace(/read-pool\.(ts|js)$/, 'read-worker.$1'))), {
        workerData: { file: opened.file, keyHex: opened.keyHex },
      });
    } catch (e) {
      return this.fail(e);
    }
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (a: Answer) => {
      const p = slot.pending.get(a.id);
      if (!p) return;
      slot.pending.delete(a.id);
      this.served.worker++;
      if ('error' in a)
        p.reject(
          a.error.app
            ? new AppError(a.error.code as ErrorCode, a.error.message)
            : Object.assign(new Error(a.error.message), { code: a.error.code }),
        );
      else p.resolve(a.result);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', () => {
      this.slots = this.slots.filter((s) => s !== slot);
      const pending = [...slot.pending.values()];
      slot.pending.clear();
      if (this.closed) {
        for (const p of pending) p.reject(new Error('the read pool is closed'));
        return;
      }
      this.fail(new Error('a read worker exited'));
      for (const p of pending) this.onMain(p.job, p.args).then(p.resolve, p.reject);
    });
    this.slots.push(slot);
    return slot;
  }

  private fail(e: unknown): undefined {
    if (!this.failed) {
      this.failed = true;
      this.onError(e);
      for (const s of this.slots) void s.worker.terminate();
    }
    return undefined;
  }
}

/**
 * The module a worker can load for `href`: itself when compiled, the compiled twin in `dist/`
 * when running from TypeScript sources (the test runner), as workers load JavaScript only.
 */
function runnable(href: string): string {
  return href.endsWith('.ts') ? href.replace(/\/src\/(?!.*\/src\/)/, '/dist/').replace(/\.ts$/, '.js') : href;
}

/**
 * `server.read_workers`: a number (0: every read on the main connection), or `auto` for one per
 * core but one (the event loop's), 1 to 4: on two cores a second worker measured no better at
 * concurrency 8 than one (docs/performance.md).
 */
export function readWorkers(setting: number | 'auto', cores?: number): number {
  return workerCount(setting, 4, cores);
}

const pools = new WeakMap<Db, ReadPool>();

/**
 * Lets reads made through `readOffLoop` on this connection run on `size` worker threads (created
 * on first use). Kept per connection, like its prepared statements: the daemon enables it, the
 * CLI and in-process tools that never do keep every read on their connection.
 */
export function enableReadPool(db: Db, size: number, onError?: (e: unknown) => void): ReadPool {
  const pool = new ReadPool(db, size, onError);
  pools.set(db, pool);
  return pool;
}

/** Ends the connection's read pool, if it has one (before closing the connection). */
export async function closeReadPool(db: Db): Promise<void> {
  await pools.get(db)?.close();
  pools.delete(db);
}

/** The connection's read pool, if enabled. */
export function readPoolOf(db: Db): ReadPool | undefined {
  return pools.get(db);
}

/** Runs `job` on the connection's read pool when it has one, else on the connection itself; either way a Promise. */
export function readOffLoop<A extends unknown[], R>(db: Db, job: ReadJob<A, R>, ...args: A): Promise<R> {
  const pool = pools.get(db);
  if (pool) return pool.run(job, ...args);
  return new Promise((resolve) => resolve(job.run(db, ...args)));
}
