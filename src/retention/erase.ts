import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import { eraseRun } from '../materialization/lifecycle.js';
import { erasedKey } from '../observations/repo.js';

/**
 * Scrubs what other tables keep of observations being erased, inside the caller's transaction:
 * the stream id in their `observation.created` events, the file name of the signed upload that
 * made them, and every run that involved them (see `eraseRun`: queued and running runs are
 * cancelled). Returns the asset ids those runs held, for the caller to release.
 */
export function eraseMentions(deps: Pick<Deps, 'db' | 'now' | 'events'>, observationIds: Iterable<string>): string[] {
  const { db } = deps;
  const scrubEvent = stmt(
    db,
    `UPDATE events SET data = json_remove(data, '$.stream_id')
     WHERE type = 'observation.created' AND json_extract(data, '$.observation_id') = ?`,
  );
  const scrubUpload = stmt(db, `UPDATE uploads SET file_name = '' WHERE observation_id = ?`);
  const runsOf = stmt(db, `SELECT run_id FROM run_observations WHERE observation_id = ?`).pluck();
  const runs = new Set<string>();
  for (const id of observationIds) {
    scrubEvent.run(id);
    scrubUpload.run(id);
    for (const r of runsOf.all(id) as string[]) runs.add(r);
  }
  const released: string[] = [];
  for (const runId of runs) released.push(...eraseRun(deps, runId));
  return released;
}

/**
 * Scrubs the identifying fields of purged observation rows that keep no blobs, inside the
 * caller's transaction: the row stays (for `include_purged` listings) with its ids, times,
 * sizes and hashes, but no file name, metadata, stream id, location or raw idempotency key.
 */
export function scrubPurgedRows(deps: Pick<Deps, 'db'>, observationIds: Iterable<string>): void {
  const { db } = deps;
  const keyOf = stmt(db, `SELECT idempotency_key FROM observations WHERE observation_id = ?`).pluck();
  const scrub = stmt(
    db,
    `UPDATE observations SET file_name = '', metadata = NULL, stream_id = NULL, latitude = NULL, longitude = NULL, idempotency_key = ?
     WHERE observation_id = ?`,
  );
  for (const id of observationIds) {
    const key = keyOf.get(id) as string | undefined;
    if (key === undefined) continue;
    scrub.run(erasedKey(key), id);
  }
}
