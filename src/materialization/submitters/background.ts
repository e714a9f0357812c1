import type { Deps } from '../../deps.js';
import { JobQueue, retryWhenDiskFull } from '../../job-queue.js';
import type { Logger } from '../../logger.js';
import type { RunLifecycle } from '../lifecycle.js';
import { listUnfinishedRuns, type RunRow } from '../runs-repo.js';
import type { SubmitterName } from '../schemas.js';
import type { RunSubmitter } from './types.js';

/**
 * A submitter that works in the background with bounded concurrency, so creating a run never
 * waits for it. The durable backlog is the runs table: `start` re-enqueues what is unfinished.
 */
export abstract class BackgroundSubmitter implements RunSubmitter {
  protected readonly abort = new AbortController();
  protected closed = false;
  private queue: JobQueue;

  constructor(
    readonly name: SubmitterName,
    protected deps: Deps,
    protected runs: RunLifecycle,
    protected logger?: Pick<Logger, 'error' | 'info' | 'warn'>,
  ) {
    this.queue = new JobQueue(
      deps.config.runs.concurrency,
      (id) => this.process(id),
      retryWhenDiskFull(logger, 'run_id', { postponed: `${name} run postponed: disk full`, crashed: `${name} run submission crashed` }),
    );
  }

  submit(runId: string): void {
    void this.queue.ensure(runId);
  }

  start(): void {
    this.queue.start();
    const unfinished = listUnfinishedRuns(this.deps.db, this.name);
    for (const row of unfinished) if (this.resumes(row)) this.submit(row.run_id);
    if (unfinished.length) this.logger?.info({ runs: unfinished.length, submitter: this.name }, 'resumed unfinished runs');
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await this.queue.stop();
  }

  /** Decides at start whether an unfinished run is submitted again (and prepares it). */
  protected abstract resumes(row: RunRow): boolean;

  /** Carries one run as far as this submitter takes it. */
  protected abstract process(runId: string): Promise<void>;
}
