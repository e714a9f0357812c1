import type { Db } from '../db/open.js';
import { keysetListing } from '../db/keyset.js';
import type { Listing } from '../pagination.js';
import type { DerivationBackend, DerivationListQuery, DerivationProfile, DerivationStatus, DerivationView, Subject } from './schemas.js';

/** A derivation row as stored. */
export interface DerivationRow {
  derivation_id: string;
  cache_key: string;
  profile: DerivationProfile;
  profile_version: number;
  subject: string;
  subject_type: Subject['type'];
  subject_observation_id: string | null;
  subject_asset_id: string;
  subject_content_hash: string;
  backend_identity: string | null;
  status: DerivationStatus;
  error: string | null;
  backend: string | null;
  result_asset_id: string | null;
  reused_subject_asset: number;
  auto_derive: number;
  /** 1 when the subject's source did not allow the external backend this derivation needs. */
  external_processing_withheld: number;
  created_at_ms: number;
  updated_at_ms: number;
}

/** Reads one derivation; undefined if missing. */
export function getDerivationRow(db: Db, id: string): DerivationRow | undefined {
  return db.prepare(`SELECT * FROM derivations WHERE derivation_id = ?`).get(id) as DerivationRow | undefined;
}

/** Reads the derivation stored under a cache key; undefined if none. */
export function findByCacheKey(db: Db, key: string): DerivationRow | undefined {
  return db.prepare(`SELECT * FROM derivations WHERE cache_key = ?`).get(key) as DerivationRow | undefined;
}

/** Inserts a new derivation inside the caller's transaction. */
export function insertDerivation(db: Db, row: DerivationRow): void {
  const cols = Object.keys(row);
  db.prepare(`INSERT INTO derivations (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
}

/** Updates some columns of a derivation inside the caller's transaction; false if it no longer exists. */
export function updateDerivation(db: Db, id: string, set: Partial<DerivationRow>): boolean {
  const cols = Object.keys(set);
  const sql = `UPDATE derivations SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE derivation_id = @id`;
  return db.prepare(sql).run({ ...set, id }).changes > 0;
}

/** Ids of every derivation still to run, oldest first (the queue's durable backlog). */
export function listUnsettledIds(db: Db): string[] {
  return db
    .prepare(`SELECT derivation_id FROM derivations WHERE status IN ('pending', 'processing') ORDER BY derivation_id`)
    .pluck()
    .all() as string[];
}

/** Converts a row to its wire view. */
export function toDerivationView(r: DerivationRow, cacheStatus: 'hit' | 'miss' | null = null): DerivationView {
  // Screen text records where its text came from beside the backend (see compute.ts).
  const { text_from = null, ...backend } = r.backend === null ? { text_from: null } : (JSON.parse(r.backend) as Record<string, unknown>);
  return {
    derivation_id: r.derivation_id,
    profile: r.profile,
    subject: JSON.parse(r.subject),
    source_fingerprint: r.subject_content_hash,
    profile_version: r.profile_version,
    result_asset_id: r.result_asset_id ?? '',
    reused_subject_asset: r.reused_subject_asset === 1,
    created_at_ms: r.created_at_ms,
    updated_at_ms: r.updated_at_ms,
    status: r.status,
    error: r.error,
    backend: r.backend === null ? null : backendView(backend as unknown as DerivationBackend),
    text_from: text_from as DerivationView['text_from'],
    external_processing_withheld: r.external_processing_withheld === 1,
    cache_status: cacheStatus,
  };
}

/** Kheish's provenance shape (every field a string) for a stored backend: OCR (tesseract) or a transcription route. */
function backendView(b: DerivationBackend) {
  return { kind: b.kind, route_id: b.kind === 'tesseract' ? 'ocr' : 'transcription', provider: b.kind, model: b.model ?? '' };
}

/** Lists derivations by id, with a substring filter over id, profile, subject and result asset id (keyset pages). */
export function listDerivations(db: Db, q: DerivationListQuery): Listing<DerivationView> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.query) {
    where.push(
      `(instr(lower(derivation_id), lower(?)) > 0 OR instr(profile, lower(?)) > 0 OR instr(lower(subject), lower(?)) > 0 OR instr(lower(coalesce(result_asset_id, '')), lower(?)) > 0)`,
    );
    args.push(q.query, q.query, q.query, q.query);
  }
  if (q.profile) where.push('profile = ?'), args.push(q.profile);
  if (q.status) where.push('status = ?'), args.push(q.status);
  return keysetListing<DerivationRow, DerivationView>(db, {
    table: 'derivations',
    key: 'derivation_id',
    scope: 'derivations',
    order: 'asc',
    where,
    args,
    view: (r) => toDerivationView(r),
  });
}

/**
 * Recomputes an observation's `processing_status` from its auto_derive derivations, inside the
 * caller's transaction: processing while any is unsettled (pending until one starts), then
 * failed if any failed, else completed. Observations without auto_derive keep null.
 */
export function refreshProcessingStatus(db: Db, observationId: string): void {
  const statuses = db
    .prepare(`SELECT status FROM derivations WHERE subject_observation_id = ? AND auto_derive = 1`)
    .pluck()
    .all(observationId) as DerivationStatus[];
  if (statuses.length === 0) return;
  let status: DerivationStatus;
  if (statuses.every((s) => s === 'pending')) status = 'pending';
  else if (statuses.some((s) => s === 'pending' || s === 'processing')) status = 'processing';
  else status = statuses.includes('failed') ? 'failed' : 'completed';
  db.prepare(`UPDATE observations SET processing_status = ? WHERE observation_id = ? AND processing_status IS NOT NULL`).run(
    status,
    observationId,
  );
}
