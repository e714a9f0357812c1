import { releaseAssets } from '../assets/repo.js';
import { recordAudit } from '../audit/repo.js';
import type { Db } from '../db/open.js';
import type { NewId } from '../ids.js';
import { adjustCounters } from '../sources/repo.js';

/** What a purge needs to know of one observation. */
export interface PurgeCandidate {
  observation_id: string;
  source_id: string;
  byte_length: number;
  asset_id: string;
  canonical_text_asset_id: string | null;
  purge_raw_on_retention: number;
}

export interface PurgeResult {
  purged: number;
  bytes: number;
  /** Hashes of blobs whose rows were released; erase them after commit. */
  freed: string[];
}

/** Columns a `PurgeCandidate` query selects from `observations o JOIN sources s`. */
export const CANDIDATE_COLUMNS = `o.observation_id, o.source_id, o.byte_length, o.asset_id, o.canonical_text_asset_id, s.purge_raw_on_retention`;

/**
 * Marks active observations purged inside the caller's transaction: counters move, the rows
 * stay for `include_purged`, and with `purge_raw_on_retention` their blobs are released unless
 * something else still holds them. Audits one `event` per source.
 */
export function purgeObservations(
  db: Db,
  newId: NewId,
  now: number,
  candidates: PurgeCandidate[],
  event: 'retention_purged' | 'quota_evicted',
): PurgeResult {
  const mark = db.prepare(
    `UPDATE observations SET retention_state = 'purged', purged_at_ms = ?, blobs_held = ? WHERE observation_id = ? AND retention_state = 'active'`,
  );
  const perSource = new Map<string, { count: number; bytes: number; ids: string[] }>();
  const release: string[] = [];
  for (const c of candidates) {
    const keepRaw = c.purge_raw_on_retention ? 0 : 1;
    if (mark.run(now, keepRaw, c.observation_id).changes === 0) continue;
    const s = perSource.get(c.source_id) ?? { count: 0, bytes: 0, ids: [] };
    s.count++;
    s.bytes += c.byte_length;
    s.ids.push(c.observation_id);
    perSource.set(c.source_id, s);
    if (!keepRaw) release.push(c.asset_id, ...(c.canonical_text_asset_id ? [c.canonical_text_asset_id] : []));
  }
  const freed = releaseAssets(db, release);
  let purged = 0;
  let bytes = 0;
  for (const [sourceId, s] of perSource) {
    adjustCounters(db, sourceId, -s.count, -s.bytes);
    purged += s.count;
    bytes += s.bytes;
    recordAudit(db, newId, now, event, {
      source_id: sourceId,
      detail: { observations: s.count, active_bytes_released: s.bytes, observation_ids: s.ids.slice(0, 100) },
    });
  }
  return { purged, bytes, freed };
}
