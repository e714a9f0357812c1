import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from '../db/open.js';
import { stmt } from '../db/open.js';
import { readPoolOf } from '../db/read-pool.js';
import type { JobRun } from '../jobs.js';

/**
 * The daemon's Prometheus registry (one per daemon, no globals): HTTP instruments, and store
 * gauges read from SQLite at scrape time (the source counters make them cheap).
 */
export function createMetrics(db?: Db, ocrStats?: () => { recognitions: number; screen: { [mode: string]: number } | null }) {
  const registry = new Registry();
  // The event-loop delay monitor samples on a timer: once a second keeps an idle daemon idle.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1000 });
  const requests = new Counter({
    name: 'observd_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'observd_http_request_duration_seconds',
    help: 'HTTP request duration by route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [registry],
  });
  if (db) {
    const gauge = (name: string, help: string, sql: string) =>
      new Gauge({
        name,
        help,
        registers: [registry],
        collect() {
          if (db.open) this.set(stmt(db, sql).pluck().get() as number);
        },
      });
    gauge('observd_sources', 'Observation sources', `SELECT COUNT(*) FROM sources`);
    gauge(
      'observd_active_observations',
      'Active observations over all sources',
      `SELECT COALESCE(SUM(active_observation_count), 0) FROM sources`,
    );
    gauge(
      'observd_active_bytes',
      'Bytes of active observations over all sources',
      `SELECT COALESCE(SUM(active_byte_length), 0) FROM sources`,
    );
    gauge('observd_assets', 'Stored assets (distinct blobs)', `SELECT COUNT(*) FROM assets`);
    gauge(
      'observd_derivations_unsettled',
      'Derivations pending or processing',
      `SELECT COUNT(*) FROM derivations WHERE status IN ('pending', 'processing')`,
    );
    new Gauge({
      name: 'observd_capture_agents',
      help: 'Capture agents by heartbeat state (pending, healthy, missing, revoked)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        if (!db.open) return;
        const counts = new Map(
          (
            stmt(db, `SELECT heartbeat_state AS s, COUNT(*) AS n FROM capture_agents GROUP BY heartbeat_state`).all() as Array<{
              s: string;
              n: number;
            }>
          ).map((r) => [r.s, r.n]),
        );
        for (const state of ['pending', 'healthy', 'missing', 'revoked']) this.set({ state }, counts.get(state) ?? 0);
      },
    });
    new Counter({
      name: 'observd_listing_reads_total',
      help: 'Listing pages and counts read, by where: a read-pool worker, or the main connection',
      labelNames: ['where'],
      registers: [registry],
      collect() {
        const stats = readPoolOf(db)?.stats();
        this.reset();
        this.inc({ where: 'worker' }, stats?.worker_reads ?? 0);
        this.inc({ where: 'main' }, stats?.main_reads ?? 0);
      },
    });
    gauge('observd_runs_queued', 'Runs waiting for an agent runtime', `SELECT COUNT(*) FROM runs WHERE status = 'queued'`);
  }
  const jobLastRun = new Gauge({
    name: 'observd_job_last_run_timestamp_seconds',
    help: 'When each periodic job last ran (Unix seconds)',
    labelNames: ['job'],
    registers: [registry],
  });
  const jobDuration = new Gauge({
    name: 'observd_job_last_duration_seconds',
    help: 'How long the last run of each periodic job took',
    labelNames: ['job'],
    registers: [registry],
  });
  const jobRuns = new Counter({
    name: 'observd_job_runs_total',
    help: 'Runs of each periodic job by outcome (ok, error)',
    labelNames: ['job', 'outcome'],
    registers: [registry],
  });
  /** Records one run of a periodic job. */
  const recordJob = (run: JobRun) => {
    jobLastRun.set({ job: run.name }, run.startedAtMs / 1000);
    jobDuration.set({ job: run.name }, run.durationMs / 1000);
    jobRuns.inc({ job: run.name, outcome: run.error === undefined ? 'ok' : 'error' });
  };
  if (ocrStats) {
    new Counter({
      name: 'observd_ocr_recognitions_total',
      help: 'OCR recognitions run (whole images and changed regions)',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(ocrStats().recognitions);
      },
    });
    new Counter({
      name: 'observd_screen_text_frames_total',
      help: 'Screen capture frames given text, by how: full or region OCR, reused from a same-looking frame, coalesced into a newer one',
      labelNames: ['mode'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [mode, n] of Object.entries(ocrStats().screen ?? {}) as Array<[string, number]>) this.inc({ mode }, n);
      },
    });
  }
  return { registry, requests, duration, recordJob };
}
export type Metrics = ReturnType<typeof createMetrics>;
