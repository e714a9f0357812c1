import { recordAudit } from '../audit/repo.js';
import { stmt } from '../db/open.js';
import { releaseWithDerivations } from '../assets/repo.js';
import type { Deps } from '../deps.js';
import { adjustCounters } from '../sources/repo.js';
import { eraseMentions, scrubPurgedRows } from './erase.js';

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
  /** How many purged rows were erased (scrubbed, their blobs released): `purge_raw_on_retention`. */
  erased: number;
  /** Hashes of blobs whose rows were released; erase them after commit. */
  freed: string[];
}

/** Columns a `PurgeCandidate` query selects from `observations o JOIN sources s`. */
export const CANDIDATE_COLUMNS = `o.observation_id, o.source_id, o.byte_length, o.asset_id, o.canonical_text_asset_id, s.purge_raw_on_retention`;

/**
 * Marks active observations purged inside the caller's transaction: counters move, the rows
 * stay for `include_purged`, and with `purge_raw_on_retention` their blobs are released unless
 * something else still holds them. Audits one `event` per source and emits one
 * `observation.purged` per observation.
 */
export function purgeObservations(
  deps: Pick<Deps, 'db' | 'newId' | 'events'>,
  now: number,
  candidates: PurgeCandidate[],
  event: 'retention_purged' | 'quota_evicted',
): PurgeResult {
  const { db, newId, events } = deps;
  const mark = stmt(
    db,
    `UPDATE observations SET retention_state = 'purged', purged_at_ms = ?, blobs_held = ? WHERE observation_id = ? AND retention_state = 'active'`,
  );
  const perSource = new Map<string, { count: number; bytes: number; ids: string[] }>();
  const release: string[] = [];
  const erasedIds: string[] = [];
  for (const c of candidates) {
    const keepRaw = c.purge_raw_on_retention ? 0 : 1;
    if (mark.run(now, keepRaw, c.observation_id).changes === 0) continue;
    const s = perSource.get(c.source_id) ?? { count: 0, bytes: 0, ids: [] };
    s.count++;
    s.bytes += c.byte_length;
    s.ids.push(c.observation_id);
    perSource.set(c.source_id, s);
    events.append('observation.purged', c.source_id, {
      observation_id: c.observation_id,
      source_id: c.source_id,
      retention_state: 'purged',
      reason: event === 'quota_evicted' ? 'quota' : 'retention',
    });
    if (!keepRaw) {
      release.push(c.asset_id, ...(c.canonical_text_asset_id ? [c.canonical_text_asset_id] : []));
      erasedIds.push(c.observation_id);
    }
  }
  // Erased rows keep no identifying field, and no run keeps their content.
  scrubPurgedRows(deps, erasedIds);
  release.push(...eraseMentions({ db, now: () => now, events }, erasedIds));
  // Derivations of purged observations go too, and with them results nothing else holds.
  const freed = releaseWithDerivations(
    db,
    [...perSource.values()].flatMap((s) => s.ids),
    release,
  );
  let purged = 0;
  let bytes = 0;
  for (const [sourceId, s] of perSource) {
    adjustCounters(db, sourceId, -s.count, -s.bytes);
    purged += s.count;
    bytes += s.bytes;
    recordAudit(db, newId, now, event === 'retention_purged' ? 'retention_purged_assets' : event, {
      source_id: sourceId,
      detail: { observations: s.count, active_bytes_released: s.bytes, observation_ids: s.ids.slice(0, 100) },
    });
  }
  return { purged, bytes, erased: erasedIds.length, freed };
}
