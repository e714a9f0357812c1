import { checkHeartbeats } from './capture/heartbeats.js';
import type { Deps } from './deps.js';
import { pruneEvents } from './events/prune.js';
import type { PeriodicJob } from './jobs.js';
import type { Logger } from './logger.js';
import type { MaterializationService } from './materialization/service.js';
import { pruneHistory } from './retention/history.js';
import { sweepOnce } from './retention/sweep.js';
import { backfillSearchIndex } from './search/backfill.js';
import type { SignedUploadService } from './uploads/service.js';

/**
 * Every periodic job of the daemon, by name. Each `run` is a plain call into its domain with
 * the injected clock's `now`; what a run changed is logged here, at info, only when it changed
 * something.
 */
export function daemonJobs(
  deps: Deps,
  services: { signedUploads: SignedUploadService; materializations: MaterializationService },
  logger?: Pick<Logger, 'info'>,
): PeriodicJob[] {
  const { config } = deps;
  return [
    {
      name: 'retention.sweep',
      intervalMs: config.retention.sweep_interval_ms,
      async run(now) {
        const r = await sweepOnce(deps, now);
        if (r.purged > 0) logger?.info(r, 'retention sweep purged observations');
        return r;
      },
    },
    {
      name: 'retention.history',
      intervalMs: config.retention.sweep_interval_ms,
      async run(now) {
        const h = await pruneHistory(deps, now);
        if (h.purged_rows_deleted || h.audit_events_deleted) logger?.info(h, 'old history forgotten');
        return h;
      },
    },
    {
      name: 'uploads.cleanup',
      intervalMs: config.uploads.cleanup_interval_ms,
      // Only the daemon knows which signed uploads are being written right now.
      daemonOnly: true,
      run() {
        const r = services.signedUploads.cleanup();
        if (r.expired || r.strays) logger?.info(r, 'removed expired signed uploads');
        return r;
      },
    },
    { name: 'events.prune', intervalMs: config.events.prune_interval_ms, run: (now) => pruneEvents(deps, now) },
    {
      // Text stored before the search index existed; once done each run is one empty read.
      name: 'search.backfill',
      intervalMs: 1_000,
      async run() {
        const r = await backfillSearchIndex(deps);
        if (r.indexed) logger?.info(r, 'indexed earlier canonical text for search');
        return r;
      },
    },
    {
      // Capture agents past their heartbeat deadline become `missing`, with no traffic needed.
      name: 'capture.heartbeat_deadlines',
      intervalMs: config.capture.heartbeat_check_interval_ms,
      run(now) {
        const ids = checkHeartbeats(deps, now);
        if (ids.length) logger?.info({ machine_ids: ids }, 'capture agents missed their heartbeat deadline');
        return ids;
      },
    },
    {
      name: 'runs.requeue_expired_claims',
      intervalMs: Math.min(5_000, config.runs.claim_lease_ms),
      run(now) {
        const ids = services.materializations.requeueExpiredClaims(now);
        if (ids.length) logger?.info({ run_ids: ids }, 'claimed runs whose lease ran out are queued again');
        return ids;
      },
    },
  ];
}
