import { encodeTime } from 'ulid';
import { checkpointTruncate, stmt } from '../db/open.js';
import { commitThenErase, type Deps } from '../deps.js';
import { releaseWithDerivations } from '../assets/repo.js';
import { eraseMentions } from './erase.js';

export interface HistoryReport {
  purged_rows_deleted: number;
  audit_events_deleted: number;
  blobs_erased: number;
}

/**
 * Forgets history older than `retention.history_ms`, in batches of `sweep_batch_size`, so a
 * daemon that runs for months keeps bounded tables: purged observation rows (and any blobs they
 * still held under `purge_raw_on_retention = false`, with their derivations) and audit records.
 */
export async function pruneHistory(deps: Deps, now = deps.now()): Promise<HistoryReport> {
  const cutoff = now - deps.config.retention.history_ms;
  const batch = deps.config.retention.sweep_batch_size;
  const report: HistoryReport = { purged_rows_deleted: 0, audit_events_deleted: 0, blobs_erased: 0 };
  if (cutoff <= 0) return report;
  for (;;) {
    const r = commitThenErase(deps, () => {
      const rows = stmt(
        deps.db,
        `SELECT observation_id, asset_id, canonical_text_asset_id FROM observations
         WHERE retention_state = 'purged' AND purged_at_ms < ? ORDER BY purged_at_ms LIMIT ?`,
      ).all(cutoff, batch) as Array<{ observation_id: string; asset_id: string; canonical_text_asset_id: string | null }>;
      const del = stmt(deps.db, `DELETE FROM observations WHERE observation_id = ?`);
      for (const row of rows) del.run(row.observation_id);
      const ids = rows.map((row) => row.observation_id);
      const assets = rows.flatMap((row) => [row.asset_id, ...(row.canonical_text_asset_id ? [row.canonical_text_asset_id] : [])]);
      assets.push(...eraseMentions(deps, ids));
      const freed = releaseWithDerivations(deps.db, ids, assets);
      return { result: { rows: rows.length, blobs: freed.length }, freed };
    });
    report.purged_rows_deleted += r.rows;
    report.blobs_erased += r.blobs;
    if (r.rows < batch) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (report.purged_rows_deleted) checkpointTruncate(deps.db);
  // Audit ids are ULIDs: every record older than the cutoff sorts below this bound.
  const bound = `aud_${encodeTime(cutoff, 10)}`;
  const delAudit = stmt(
    deps.db,
    `DELETE FROM audit_events WHERE audit_id IN (SELECT audit_id FROM audit_events WHERE audit_id < ? ORDER BY audit_id LIMIT ?)`,
  );
  for (;;) {
    const n = delAudit.run(bound, batch).changes;
    report.audit_events_deleted += n;
    if (n < batch) break;
    await new Promise((resolve) => setImmediate(resolve));
  }
  return report;
}
