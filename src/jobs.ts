import type { Clock } from './clock.js';
import { startPeriodic } from './periodic.js';

/** A named piece of background work the daemon runs every `intervalMs` (after the previous run ends). */
export interface PeriodicJob {
  name: string;
  intervalMs: number;
  /** One run at `now`; a test or `observd jobs run NAME` calls it directly. Its result is logged when it says something. */
  run(now: number): unknown;
  /**
   * Only the running daemon may run it: it depends on what the daemon holds in memory (signed
   * uploads being written), so `observd jobs run` refuses it.
   */
  daemonOnly?: boolean;
}

/** What one run did: for metrics and logs. */
export interface JobRun {
  name: string;
  startedAtMs: number;
  durationMs: number;
  result?: unknown;
  error?: unknown;
}

/**
 * The daemon's one registry of periodic jobs: added by name, started and stopped together, each
 * run reported to `onRun` (last run time, duration, errors for `/metrics` and the log). A failing
 * run is reported and tried again at the next interval; it never stops the schedule.
 */
export class JobRegistry {
  private jobs = new Map<string, PeriodicJob>();
  private schedules: Array<{ stop(): Promise<void> }> = [];

  constructor(
    private now: Clock,
    private onRun: (run: JobRun) => void = () => {},
  ) {}

  /** Adds a job; a second job of the same name is a programming error. */
  add(job: PeriodicJob): this {
    if (this.jobs.has(job.name)) throw new Error(`job "${job.name}" is registered twice`);
    this.jobs.set(job.name, job);
    return this;
  }

  names(): string[] {
    return [...this.jobs.keys()];
  }

  /** Runs one job now and reports it; rejects with the job's error (after reporting it); unknown names throw. */
  async runOnce(name: string): Promise<unknown> {
    const job = this.jobs.get(name);
    if (!job) throw new Error(`no job named "${name}"`);
    const startedAtMs = this.now();
    const t0 = performance.now();
    try {
      const result = await job.run(startedAtMs);
      this.onRun({ name, startedAtMs, durationMs: performance.now() - t0, result });
      return result;
    } catch (error) {
      this.onRun({ name, startedAtMs, durationMs: performance.now() - t0, error });
      throw error;
    }
  }

  /** Starts every job's schedule (each runs once right away). */
  start(): void {
    for (const job of this.jobs.values()) {
      // runOnce has reported the error already; the schedule only keeps going.
      this.schedules.push(
        startPeriodic(
          () => this.runOnce(job.name),
          job.intervalMs,
          () => {},
        ),
      );
    }
  }

  /** Stops every schedule and waits for the runs in progress. */
  async stop(): Promise<void> {
    const schedules = this.schedules.splice(0);
    await Promise.all(schedules.map((s) => s.stop()));
  }
}
