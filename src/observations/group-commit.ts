import type { BlobStore } from '../assets/blob-store.js';
import { discardUnclaimed } from '../assets/repo.js';
import { checkpointTruncate, type Db, type WalSync } from '../db/open.js';

/** One write to commit: `work` runs inside the shared transaction and returns its result and the blobs it freed. */
interface Job<T> {
  work: () => { result: T; freed: string[]; erased?: boolean };
  /** Blobs this write published and pinned; unpinned after the commit, erased if the write failed and nothing holds them. */
  pinned: string[];
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/** At most one erasure checkpoint per this many ms on the upload path (see `scheduleCheckpoint`). */
export const ERASURE_CHECKPOINT_MS = 500;

/**
 * Group commit: the synchronous tails of concurrent uploads that arrive while one commit is
 * being prepared share a single SQLite transaction, so N uploads cost one WAL fsync instead of
 * N. Each job runs in its own savepoint, so one failing job (a quota rejection, a race on an
 * idempotency key) rolls back alone. Commits do not fsync on the event loop: the batch waits
 * for `WalSync` (shared with concurrent batches), then unpins, erases what it freed and answers.
 */
export class GroupCommitter {
  private queue: Array<Job<unknown>> = [];
  private scheduled = false;

  constructor(
    private db: Db,
    private blobs: BlobStore,
    private wal: WalSync,
    private maxBatch = 256,
  ) {}

  /** Queues a write; resolves with its result once the shared transaction committed, or rejects with its own error. */
  run<T>(work: Job<T>['work'], pinned: string[] = []): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ work, pinned, resolve, reject } as Job<unknown>);
      this.schedule();
    });
  }

  private checkpointTimer: NodeJS.Timeout | undefined;
  private lastCheckpoint = 0;

  /**
   * Evictions scrubbed rows: a checkpoint then leaves no old copy of them in the log. On this hot
   * path checkpoints (a blocking fsync of the database, and a log that must grow again) are
   * coalesced to one per ERASURE_CHECKPOINT_MS, after the answers went out, instead of one per
   * batch: an evicted observation is gone from every file within that time of the answer.
   */
  private scheduleCheckpoint() {
    if (this.checkpointTimer) return;
    const wait = Math.max(0, this.lastCheckpoint + ERASURE_CHECKPOINT_MS - performance.now());
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      this.lastCheckpoint = performance.now();
      // A store closed meanwhile was checkpointed by its close.
      if (this.db.open) checkpointTruncate(this.db);
    }, wait);
    this.checkpointTimer.unref();
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private async flush() {
    this.scheduled = false;
    const batch = this.queue.splice(0, this.maxBatch);
    if (this.queue.length) this.schedule();
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    const freed: string[] = [];
    let erased = false;
    try {
      this.db.transaction(() => {
        for (const job of batch) {
          try {
            // A nested better-sqlite3 transaction is a savepoint: a throw rolls back this job only.
            const r = this.db.transaction(job.work)();
            freed.push(...r.freed);
            erased ||= r.erased === true;
            outcomes.push({ ok: true, value: r.result });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
      })();
    } catch (error) {
      outcomes.length = 0;
      for (let i = 0; i < batch.length; i++) outcomes.push({ ok: false, error });
      freed.length = 0;
      erased = false;
    }
    if (outcomes.some((o) => o.ok)) {
      // Answer only once the commit is durable; the fsync runs off the event loop and is shared.
      try {
        await this.wal.sync();
      } catch (error) {
        outcomes.fill({ ok: false, error });
      }
    }
    for (const job of batch) for (const sha of job.pinned) this.blobs.unpin(sha);
    for (const sha of freed) this.blobs.removeSync(sha);
    if (erased) this.scheduleCheckpoint();
    batch.forEach((job, i) => {
      const o = outcomes[i];
      if (o.ok) return job.resolve(o.value);
      // The write never happened: drop the blobs it published unless something else has them.
      discardUnclaimed(this.db, this.blobs, job.pinned);
      job.reject(o.error);
    });
  }
}
