import { commitThenErase, type Deps } from '../deps.js';
import { CANDIDATE_COLUMNS, purgeObservations, type PurgeCandidate } from './purge.js';

export interface SweepReport {
  purged: number;
  bytes: number;
  blobs_erased: number;
  batches: number;
}

/**
 * Purges every observation whose retention ended at or before `now`, in short transactions of
 * `sweep_batch_size` rows, yielding to the event loop between batches so uploads keep flowing.
 */
export async function sweepOnce(deps: Deps, now = deps.now()): Promise<SweepReport> {
  const report: SweepReport = { purged: 0, bytes: 0, blobs_erased: 0, batches: 0 };
  const select = deps.db.prepare(
    `SELECT ${CANDIDATE_COLUMNS} FROM observations o JOIN sources s ON s.source_id = o.source_id
     WHERE o.retention_state = 'active' AND o.expires_at_ms <= ? ORDER BY o.expires_at_ms LIMIT ?`,
  );
  for (;;) {
    const batch = commitThenErase(deps, () => {
      const rows = select.all(now, deps.config.retention.sweep_batch_size) as PurgeCandidate[];
      const r = purgeObservations(deps.db, deps.newId, now, rows, 'retention_purged');
      return { result: { ...r, selected: rows.length }, freed: r.freed };
    });
    if (batch.selected === 0) break;
    report.batches++;
    report.purged += batch.purged;
    report.bytes += batch.bytes;
    report.blobs_erased += batch.freed.length;
    if (batch.selected < deps.config.retention.sweep_batch_size) break;
    await new Promise((r) => setImmediate(r));
  }
  return report;
}

/** Runs `sweepOnce` every `sweep_interval_ms` until stopped; a failing sweep is reported, not fatal. */
export function startSweeper(deps: Deps, onError: (e: unknown) => void, onReport?: (r: SweepReport) => void) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const tick = () => {
    running = sweepOnce(deps)
      .then((r) => r.purged > 0 && onReport?.(r))
      .catch(onError)
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, deps.config.retention.sweep_interval_ms);
      });
  };
  timer = setTimeout(tick, 0);
  return {
    /** Stops scheduling and waits for a sweep in progress to finish its batch loop. */
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
