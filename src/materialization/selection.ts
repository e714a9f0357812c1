import { stmt, type Db } from '../db/open.js';
import { AppError, notFound } from '../errors.js';
import { getObservationRow, type ObservationRow } from '../observations/repo.js';
import { getSourceRow, type SourceRow } from '../sources/repo.js';
import type { Selection } from './schemas.js';

/** A resolved selection: observations in the order the run presents them, and their sources. */
export interface Selected {
  observations: ObservationRow[];
  sources: Map<string, SourceRow>;
}

// Newest first on the (source_id[, stream_id], captured_at_ms, observation_id) indexes, so only
// about `limit` rows are read however many the source holds; purged rows are skipped on the way.
const LATEST_FROM_SOURCE = `SELECT * FROM observations
  WHERE source_id = ? AND captured_at_ms >= ? AND retention_state = 'active'
  ORDER BY captured_at_ms DESC, observation_id DESC LIMIT ?`;
const LATEST_FROM_STREAM = `SELECT * FROM observations
  WHERE source_id = ? AND stream_id = ? AND captured_at_ms >= ? AND retention_state = 'active'
  ORDER BY captured_at_ms DESC, observation_id DESC LIMIT ?`;

// On the capture-group expression index; the exact-string rule (a number 5 is not the group "5")
// is the json_type check on the few rows the index yields.
const LATEST_OF_GROUP = `SELECT * FROM observations
  WHERE json_extract(metadata, '$.capture_group_id') = ? AND metadata IS NOT NULL
    AND json_type(metadata, '$.capture_group_id') = 'text' AND captured_at_ms >= ? AND retention_state = 'active'
  ORDER BY captured_at_ms DESC, observation_id DESC LIMIT ?`;

/**
 * Resolves a selection against the store at `now`: explicit ids in the caller's order
 * (duplicates dropped), latest-N selections newest N by capture time (ties by id) returned
 * oldest first. not_found for an unknown observation or source; gone for a purged observation;
 * forbidden when an involved source disallows materialization or is disabled.
 */
export function resolveSelection(db: Db, selection: Selection, now: number): Selected {
  if (selection.type === 'observation_ids') {
    const observations = [...new Set(selection.observation_ids)].map((id) => requireActive(db, id));
    return { observations, sources: sourcesOf(db, observations) };
  }
  const since = selection.lookback_seconds == null ? Number.MIN_SAFE_INTEGER : now - selection.lookback_seconds * 1000;
  if (selection.type === 'observation_group') {
    const rows = stmt(db, LATEST_OF_GROUP).all(selection.capture_group_id, since, selection.max_observations) as ObservationRow[];
    return { observations: rows.reverse(), sources: sourcesOf(db, rows) };
  }
  const sourceId = selection.source_id!;
  const source = requireMaterializable(db, sourceId);
  const rows = (
    selection.type === 'latest_from_source'
      ? stmt(db, LATEST_FROM_SOURCE).all(sourceId, since, selection.max_observations)
      : stmt(db, LATEST_FROM_STREAM).all(sourceId, selection.stream_id, since, selection.max_observations)
  ) as ObservationRow[];
  return { observations: rows.reverse(), sources: new Map([[sourceId, source]]) };
}

/** Reads an observation that can still be materialized; not_found if missing, gone if purged. */
export function requireActive(db: Db, id: string): ObservationRow {
  const row = getObservationRow(db, id);
  if (!row) throw notFound(`observation "${id}"`);
  if (row.retention_state !== 'active') throw new AppError('gone', `observation "${id}" was purged; it can no longer be materialized`);
  return row;
}

/** Reads a source whose observations may be materialized; not_found if missing, forbidden if it disallows it or is disabled. */
export function requireMaterializable(db: Db, sourceId: string): SourceRow {
  const source = getSourceRow(db, sourceId);
  if (!source) throw notFound(`source "${sourceId}"`);
  if (!source.allow_materialization) throw new AppError('forbidden', `source "${sourceId}" does not allow materialization`);
  if (source.status === 'disabled') throw new AppError('forbidden', `source "${sourceId}" is disabled`);
  return source;
}

/** The sources of some observations, each checked materializable once (forbidden / not_found otherwise). */
function sourcesOf(db: Db, observations: ObservationRow[]): Map<string, SourceRow> {
  const sources = new Map<string, SourceRow>();
  for (const o of observations) if (!sources.has(o.source_id)) sources.set(o.source_id, requireMaterializable(db, o.source_id));
  return sources;
}
