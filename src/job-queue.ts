import { DISK_FULL_RETRY_MS, isDiskFull } from './errors.js';
import type { Logger } from './logger.js';

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * A bounded in-memory runner of job ids. It holds no state worth keeping: the durable backlog
 * is the database (jobs re-enqueued at start), so the queue only orders and limits work and
 * folds duplicate requests for the same id into one run.
 */
export class JobQueue {
  private waiting = new Map<string, Deferred>();
  private active = new Map<string, Deferred>();
  /** Running jobs that declared they only wait (on another job's work): they hold no slot. */
  private parked = new Map<string, Deferred>();
  /** Ids asked to run again while running (their state changed under the run). */
  private again = new Map<string, Deferred>();
  private started = false;
  private stopped = false;
  private retries = new Set<NodeJS.Timeout>();

  /**
   * `onError` hears a run that threw; when it returns a number of milliseconds the id is run
   * again after that long (a transient failure such as a full disk), unless stopped meanwhile.
   */
  constructor(
    private concurrency: number,
    private run: (id: string, park: () => void) => Promise<void>,
    // biome-ignore lint/suspicious/noConfusingVoidType: a plain logging handler (returning nothing) is the common case.
    private onError: (id: string, e: unknown) => number | void,
  ) {}

  /** Queues `id` unless it is already waiting or running; resolves when that run has finished. */
  ensure(id: string): Promise<void> {
    const known = this.waiting.get(id) ?? this.active.get(id) ?? this.parked.get(id);
    if (known) return known.promise;
    const d = deferred();
    this.waiting.set(id, d);
    this.pump();
    return d.promise;
  }

  /** Like `ensure`, but a run already in progress is followed by a fresh one (its input was reset). */
  rerun(id: string): Promise<void> {
    if (!this.active.has(id) && !this.parked.has(id)) return this.ensure(id);
    const d = this.again.get(id) ?? deferred();
    this.again.set(id, d);
    return d.promise;
  }

  /** Jobs waiting or running. */
  get size(): number {
    return this.waiting.size + this.active.size + this.parked.size + this.again.size;
  }

  /** Starts running jobs (queued ones included). */
  start(): void {
    this.started = true;
    this.pump();
  }

  /** Starts nothing more; resolves when the runs in progress have finished. Waiting jobs stay unrun. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    await Promise.all([...this.active.values(), ...this.parked.values()].map((d) => d.promise));
  }

  private retryLater(id: string, ms: number): void {
    const t = setTimeout(() => {
      this.retries.delete(t);
      if (!this.stopped) void this.ensure(id);
    }, ms);
    t.unref();
    this.retries.add(t);
  }

  private pump(): void {
    if (!this.started || this.stopped) return;
    while (this.active.size < this.concurrency && this.waiting.size > 0) {
      const [id, d] = this.waiting.entries().next().value as [string, Deferred];
      this.waiting.delete(id);
      this.active.set(id, d);
      // A parked job frees its slot for the next one; it still finishes (and resolves) as usual.
      const park = () => {
        if (this.active.get(id) !== d) return;
        this.active.delete(id);
        this.parked.set(id, d);
        this.pump();
      };
      // Started on a later turn, so a caller (an upload's hook) never runs job code on its own stack.
      void new Promise((r) => setImmediate(r))
        .then(() => this.run(id, park))
        .catch((e) => {
          const retryMs = this.onError(id, e);
          if (typeof retryMs === 'number' && !this.stopped) this.retryLater(id, retryMs);
        })
        .finally(() => {
          if (this.active.get(id) === d) this.active.delete(id);
          if (this.parked.get(id) === d) this.parked.delete(id);
          d.resolve();
          const next = this.again.get(id);
          if (next) {
            this.again.delete(id);
            this.waiting.set(id, next);
          }
          this.pump();
        });
    }
  }
}

/**
 * The error handler of a queue whose jobs write to disk: a full disk is not the job's fault, so
 * it is logged as postponed and run again after `DISK_FULL_RETRY_MS` (its record stays as it
 * is); anything else is logged as a crash. `idField` names the id in the log line.
 */
export function retryWhenDiskFull(
  logger: Pick<Logger, 'error' | 'warn'> | undefined,
  idField: string,
  messages: { postponed: string; crashed: string },
): (id: string, err: unknown) => number | undefined {
  return (id, err) => {
    if (isDiskFull(err)) {
      logger?.warn({ err, [idField]: id, retry_in_ms: DISK_FULL_RETRY_MS }, messages.postponed);
      return DISK_FULL_RETRY_MS;
    }
    logger?.error({ err, [idField]: id }, messages.crashed);
    return undefined;
  };
}
