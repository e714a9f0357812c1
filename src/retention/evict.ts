import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import type { Eviction } from '../observations/hooks.js';
import { fitsQuota } from '../observations/quota.js';
import type { SourceWriteRow } from '../sources/repo.js';
import { CANDIDATE_COLUMNS, purgeObservations, type PurgeCandidate } from './purge.js';

/**
 * The `evict_oldest` quota policy, inside the upload's transaction: purges the source's oldest
 * active observations by receipt until one more of `bytes` fits; returns the blobs freed and how
 * many rows were erased.
 */
export function evictOldest(deps: Pick<Deps, 'db' | 'newId' | 'events'>, source: SourceWriteRow, bytes: number, now: number): Eviction {
  if (fitsQuota(source, bytes)) return { freed: [], erased: 0 };
  const rows = stmt(
    deps.db,
    `SELECT ${CANDIDATE_COLUMNS} FROM observations o JOIN sources s ON s.source_id = o.source_id
       WHERE o.source_id = ? AND o.retention_state = 'active' ORDER BY o.received_at_ms, o.observation_id`,
  ).iterate(source.source_id) as IterableIterator<PurgeCandidate>;
  const victims: PurgeCandidate[] = [];
  let count = source.active_observation_count;
  let total = source.active_byte_length;
  for (const r of rows) {
    if (count + 1 <= source.max_active_observations && total + bytes <= source.max_active_bytes) break;
    victims.push(r);
    count--;
    total -= r.byte_length;
  }
  return purgeObservations(deps, now, victims, 'quota_evicted');
}
