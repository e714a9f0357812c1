import { createHash } from 'node:crypto';
import type { Deps } from '../deps.js';
import { redactionForSubject } from '../privacy/policy.js';
import type { DerivationEngines } from './compute.js';
import { planFor } from './plan.js';
import { findByCacheKey, insertDerivation, refreshProcessingStatus, type DerivationRow, updateDerivation } from './repo.js';
import { PROFILE_VERSIONS, type DerivationOptions, type DerivationProfile, type DerivationRequest } from './schemas.js';
import { resolveSubject, type ResolvedSubject } from './subjects.js';

export const isSettled = (s: DerivationRow['status']) => s === 'completed' || s === 'failed';

/**
 * The cache key: profile, its version, the subject, the subject's content, the backend identity
 * and, for text observd computes, the PII detectors applied to it (only when there are some, so
 * keys made before redaction existed still hit).
 */
export function cacheKey(
  profile: DerivationProfile,
  s: ResolvedSubject,
  backendIdentity: string | null,
  redaction: readonly string[] = [],
): string {
  const parts: unknown[] = [profile, PROFILE_VERSIONS[profile], s.key, s.contentHash, backendIdentity];
  if (redaction.length) parts.push(redaction);
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/** What recording a request found or made. */
export interface Recorded {
  row: DerivationRow;
  cacheStatus: 'hit' | 'miss';
  /** A settled record was reset to pending to be computed again (force_refresh, retry_failed). */
  rerun: boolean;
}

/**
 * Records a request in one transaction: the single-flight point (one row per cache key). A new
 * record is pending; a settled one is a hit unless `force_refresh` (or `retry_failed` for a
 * failed one) resets it. `auto` marks it as an upload's auto_derive, which the observation's
 * processing_status follows. not_found / gone for the subject, unsupported_derivation for a
 * profile its media cannot give.
 */
export function recordRequest(
  deps: Deps,
  engines: DerivationEngines,
  input: DerivationRequest,
  opts: DerivationOptions,
  auto: boolean,
): Recorded {
  const { db, now, newId } = deps;
  return db.transaction((): Recorded => {
    const resolved = resolveSubject(db, input.subject);
    const plan = planFor(input.profile, resolved);
    const identity = plan.kind === 'transcribe' ? engines.transcriber.identity : null;
    const computesText = plan.kind === 'ocr' || plan.kind === 'transcribe';
    const key = cacheKey(input.profile, resolved, identity, computesText ? redactionForSubject(db, deps.config, resolved) : []);
    const t = now();
    let row = findByCacheKey(db, key);
    if (!row) {
      row = {
        derivation_id: newId('der'),
        cache_key: key,
        profile: input.profile,
        profile_version: PROFILE_VERSIONS[input.profile],
        subject: JSON.stringify(input.subject),
        subject_type: input.subject.type,
        subject_observation_id: resolved.observationId,
        subject_asset_id: resolved.asset.asset_id,
        subject_content_hash: resolved.contentHash,
        backend_identity: identity,
        status: 'pending',
        error: null,
        backend: null,
        result_asset_id: null,
        reused_subject_asset: 0,
        auto_derive: auto ? 1 : 0,
        external_processing_withheld: 0,
        created_at_ms: t,
        updated_at_ms: t,
      };
      insertDerivation(db, row);
      if (auto && row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
      return { row, cacheStatus: 'miss', rerun: false };
    }
    if (auto && !row.auto_derive) {
      updateDerivation(db, row.derivation_id, { auto_derive: 1 });
      if (row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
    }
    const recompute = isSettled(row.status) && (opts.force_refresh || (opts.retry_failed && row.status === 'failed'));
    if (!recompute) return { row, cacheStatus: isSettled(row.status) ? 'hit' : 'miss', rerun: false };
    // The previous result stays readable until the recomputation settles and replaces it.
    const reset = { status: 'pending' as const, error: null, updated_at_ms: t };
    updateDerivation(db, row.derivation_id, reset);
    if (row.auto_derive && row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
    return { row: { ...row, ...reset }, cacheStatus: 'miss', rerun: true };
  })();
}
