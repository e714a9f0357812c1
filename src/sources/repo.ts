import { stmt, type Db } from '../db/open.js';
import { isSensitive, type SourceKind, type SourceView, type Sensitivity } from './schemas.js';

/** A source row as stored. */
export interface SourceRow {
  source_id: string;
  display_name: string;
  kind: SourceKind;
  sensitivity: Sensitivity;
  retention_seconds: number;
  max_active_observations: number;
  max_active_bytes: number;
  allow_materialization: number;
  allow_output_delivery: number;
  status: 'active' | 'paused' | 'disabled';
  quota_policy: 'evict_oldest' | 'reject';
  purge_raw_on_retention: number;
  auto_derive: string;
  ingest_rate_limit: string | null;
  /** JSON list of PII detectors, or null for the config's default. */
  redact: string | null;
  /** 1/0 as set; null follows the sensitivity (see `allowsExternalProcessing`). */
  allow_external_processing: number | null;
  token_hash: Buffer | null;
  token_version: number;
  prev_token_hash: Buffer | null;
  prev_token_expires_at_ms: number | null;
  active_observation_count: number;
  active_byte_length: number;
  created_at_ms: number;
  updated_at_ms: number;
  last_authenticated_at_ms: number | null;
  last_token_rotated_at_ms: number | null;
  upload_token_revoked_at_ms: number | null;
  last_observed_at_ms: number | null;
}

/** Reads a source row; undefined if missing. */
export function getSourceRow(db: Db, sourceId: string): SourceRow | undefined {
  return stmt(db, `SELECT * FROM sources WHERE source_id = ?`).get(sourceId) as SourceRow | undefined;
}

/** What storing an upload needs of its source, read fresh inside the commit. */
export type SourceWriteRow = Pick<
  SourceRow,
  | 'source_id'
  | 'kind'
  | 'sensitivity'
  | 'retention_seconds'
  | 'max_active_observations'
  | 'max_active_bytes'
  | 'quota_policy'
  | 'auto_derive'
  | 'token_version'
  | 'active_observation_count'
  | 'active_byte_length'
>;

/**
 * Reads the columns of a source an upload's commit decides on (quota, kind, retention); cheaper
 * than the whole row (no token hashes), and it runs once or twice per upload. Undefined if missing.
 */
export function getSourceWriteRow(db: Db, sourceId: string): SourceWriteRow | undefined {
  return stmt(
    db,
    `SELECT source_id, kind, sensitivity, retention_seconds, max_active_observations, max_active_bytes, quota_policy, auto_derive,
            token_version, active_observation_count, active_byte_length FROM sources WHERE source_id = ?`,
  ).get(sourceId) as SourceWriteRow | undefined;
}

const COLUMNS = [
  'source_id',
  'display_name',
  'kind',
  'sensitivity',
  'retention_seconds',
  'max_active_observations',
  'max_active_bytes',
  'allow_materialization',
  'allow_output_delivery',
  'status',
  'quota_policy',
  'purge_raw_on_retention',
  'auto_derive',
  'ingest_rate_limit',
  'redact',
  'allow_external_processing',
  'token_hash',
  'token_version',
  'prev_token_hash',
  'prev_token_expires_at_ms',
  'created_at_ms',
  'updated_at_ms',
  'last_token_rotated_at_ms',
  'upload_token_revoked_at_ms',
] as const;

/** Inserts or fully rewrites a source's settings (counters are left to `adjustCounters`). */
export function saveSourceRow(
  db: Db,
  row: Omit<SourceRow, 'active_observation_count' | 'active_byte_length' | 'last_authenticated_at_ms' | 'last_observed_at_ms'>,
): void {
  const placeholders = COLUMNS.map((c) => `@${c}`).join(', ');
  const updates = COLUMNS.filter((c) => c !== 'source_id' && c !== 'created_at_ms')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  stmt(db, `INSERT INTO sources (${COLUMNS.join(', ')}) VALUES (${placeholders}) ON CONFLICT(source_id) DO UPDATE SET ${updates}`).run(row);
}

/** Moves a source's live counters by the given deltas, inside the caller's transaction. */
export function adjustCounters(db: Db, sourceId: string, countDelta: number, bytesDelta: number): void {
  stmt(
    db,
    `UPDATE sources SET active_observation_count = active_observation_count + ?, active_byte_length = active_byte_length + ? WHERE source_id = ?`,
  ).run(countDelta, bytesDelta, sourceId);
}

/** Records an accepted upload on its source (Kheish's `last_authenticated_at_ms`, `last_observed_at_ms`), inside the caller's transaction. */
export function touchSource(db: Db, sourceId: string, authenticatedAt: number, observedAt?: number): void {
  stmt(
    db,
    `UPDATE sources SET last_authenticated_at_ms = MAX(COALESCE(last_authenticated_at_ms, 0), ?), last_observed_at_ms = COALESCE(?, last_observed_at_ms) WHERE source_id = ?`,
  ).run(authenticatedAt, observedAt ?? null, sourceId);
}

/** What the flat Kheish rate-limit fields report for a source without a limit: a burst never reached. */
const UNLIMITED = { window_ms: 60_000, burst: Number.MAX_SAFE_INTEGER };

/** Converts a row to its wire view. */
export function toSourceView(r: SourceRow): SourceView {
  const limit = r.ingest_rate_limit ? (JSON.parse(r.ingest_rate_limit) as { burst: number; window_ms: number }) : null;
  const view: SourceView = {
    source_id: r.source_id,
    display_name: r.display_name,
    kind: r.kind,
    sensitivity: r.sensitivity,
    retention_seconds: r.retention_seconds,
    max_active_observations: r.max_active_observations,
    max_active_bytes: r.max_active_bytes,
    allow_materialization: !!r.allow_materialization,
    allow_output_delivery: !!r.allow_output_delivery,
    status: r.status,
    quota_policy: r.quota_policy,
    purge_raw_on_retention: !!r.purge_raw_on_retention,
    auto_derive: JSON.parse(r.auto_derive),
    ingest_rate_limit: limit,
    ingest_rate_limit_window_ms: (limit ?? UNLIMITED).window_ms,
    ingest_rate_limit_burst: (limit ?? UNLIMITED).burst,
    redact: r.redact === null ? null : JSON.parse(r.redact),
    allow_external_processing: allowsExternalProcessing(r),
    upload_token_version: r.token_version,
    upload_token_active: r.token_hash !== null,
    active_observation_count: r.active_observation_count,
    active_byte_length: r.active_byte_length,
    created_at_ms: r.created_at_ms,
    updated_at_ms: r.updated_at_ms,
  };
  // Kheish's optional timestamps are omitted, not null, when unset.
  if (r.last_authenticated_at_ms !== null) view.last_authenticated_at_ms = r.last_authenticated_at_ms;
  if (r.last_token_rotated_at_ms !== null) view.last_token_rotated_at_ms = r.last_token_rotated_at_ms;
  if (r.upload_token_revoked_at_ms !== null) view.upload_token_revoked_at_ms = r.upload_token_revoked_at_ms;
  if (r.last_observed_at_ms !== null) view.last_observed_at_ms = r.last_observed_at_ms;
  return view;
}

/** Whether a source's raw media and canonical text may go to external processors: as set, else yes unless it is sensitive. */
export function allowsExternalProcessing(r: Pick<SourceRow, 'allow_external_processing' | 'sensitivity'>): boolean {
  return r.allow_external_processing === null ? !isSensitive(r.sensitivity) : r.allow_external_processing === 1;
}

/**
 * The first source holding this asset (as the media or canonical text of an observation that
 * still holds its blobs) that does not allow external processing; undefined when none does. Content is
 * addressed by hash, so the same bytes may belong to several sources: the strictest wins.
 */
export function externalProcessingDeniedBy(db: Db, assetId: string): string | undefined {
  return stmt(
    db,
    `SELECT s.source_id FROM sources s
     WHERE COALESCE(s.allow_external_processing, CASE WHEN s.sensitivity = 'sensitive' THEN 0 ELSE 1 END) = 0
       AND s.source_id IN (
         SELECT source_id FROM observations WHERE asset_id = ? AND blobs_held = 1
         UNION ALL
         SELECT source_id FROM observations WHERE canonical_text_asset_id = ? AND blobs_held = 1
       )
     LIMIT 1`,
  )
    .pluck()
    .get(assetId, assetId) as string | undefined;
}
