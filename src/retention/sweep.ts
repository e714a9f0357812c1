import { checkpointTruncate, stmt } from '../db/open.js';
import { commitThenErase, type Deps } from '../deps.js';
import { CANDIDATE_COLUMNS, purgeObservations, type PurgeCandidate } from './purge.js';

export interface SweepReport {
  purged: number;
  bytes: number;
  blobs_erased: number;
  batches: number;
  duration_ms: number;
}

/**
 * Purges every observation whose retention ended at or before `now`, in short transactions of
 * `sweep_batch_size` rows. Between batches it yields for as long as the batch took, so a sweep
 * never holds more than about half of the event loop and uploads keep flowing.
 */
export async function sweepOnce(deps: Deps, now = deps.now()): Promise<SweepReport> {
  const started = performance.now();
  const report: SweepReport = { purged: 0, bytes: 0, blobs_erased: 0, batches: 0, duration_ms: 0 };
  const select = stmt(
    deps.db,
    `SELECT ${CANDIDATE_COLUMNS} FROM observations o JOIN sources s ON s.source_id = o.source_id
     WHERE o.retention_state = 'active' AND o.expires_at_ms <= ? ORDER BY o.expires_at_ms LIMIT ?`,
  );
  let erased = 0;
  for (;;) {
    const batchStart = performance.now();
    const batch = commitThenErase(deps, () => {
      const rows = select.all(now, deps.config.retention.sweep_batch_size) as PurgeCandidate[];
      const r = purgeObservations(deps, now, rows, 'retention_purged');
      return { result: { ...r, selected: rows.length }, freed: r.freed };
    });
    if (batch.selected === 0) break;
    report.batches++;
    report.purged += batch.purged;
    report.bytes += batch.bytes;
    report.blobs_erased += batch.freed.length;
    erased += batch.erased;
    if (batch.selected < deps.config.retention.sweep_batch_size) break;
    await new Promise((r) => setTimeout(r, Math.ceil(performance.now() - batchStart)));
  }
  // Once per sweep, not per batch: no old copy of what the sweep erased survives in the log.
  if (erased) checkpointTruncate(deps.db);
  report.duration_ms = Math.round(performance.now() - started);
  return report;
}
