import { getAsset, type AssetRow } from '../assets/repo.js';
import type { Db } from '../db/open.js';
import { AppError, notFound } from '../errors.js';
import { normalizeMediaType } from '../observations/media.js';
import { getSessionInput } from '../sessions/journal.js';
import { getObservationRow } from '../observations/repo.js';
import type { Subject } from './schemas.js';

/** A subject resolved to the bytes a derivation reads. */
export interface ResolvedSubject {
  subject: Subject;
  /** The subject's identity in cache keys, e.g. `observation:obs_…`. */
  key: string;
  asset: AssetRow;
  /** The asset's media type without parameters. */
  mediaType: string;
  observationId: string | null;
  /** Text the uploader supplied with the observation, reused by canonical_text. */
  uploaderTextAssetId: string | null;
  /** Changes whenever what the subject would derive from changes. */
  contentHash: string;
}

/**
 * Resolves a subject against the store; not_found for an unknown asset, observation or
 * session input; gone for a purged observation.
 */
export function resolveSubject(db: Db, subject: Subject): ResolvedSubject {
  switch (subject.type) {
    case 'asset': {
      const asset = getAsset(db, subject.asset_id);
      if (!asset) throw notFound(`asset "${subject.asset_id}"`);
      return {
        subject,
        key: `asset:${asset.asset_id}`,
        asset,
        mediaType: normalizeMediaType(asset.media_type),
        observationId: null,
        uploaderTextAssetId: null,
        contentHash: asset.sha256,
      };
    }
    case 'observation': {
      const obs = getObservationRow(db, subject.observation_id);
      if (!obs) throw notFound(`observation "${subject.observation_id}"`);
      if (obs.retention_state === 'purged') {
        throw new AppError('gone', `observation "${obs.observation_id}" was purged; its content can no longer be derived`);
      }
      const asset = getAsset(db, obs.asset_id);
      if (!asset) throw new AppError('gone', `the content of observation "${obs.observation_id}" is no longer stored`);
      return {
        subject,
        key: `observation:${obs.observation_id}`,
        asset,
        mediaType: obs.media_type,
        observationId: obs.observation_id,
        uploaderTextAssetId: obs.canonical_text_asset_id,
        contentHash: `${obs.sha256}+${obs.canonical_text_asset_id ?? ''}`,
      };
    }
    case 'session_input':
      return resolveSessionInput(db, subject);
  }
}

/**
 * A position in a session's input journal (written by materialization): its subject asset is
 * the input rendered as text/plain, so canonical_text reuses it and visual_preview is refused.
 */
function resolveSessionInput(db: Db, subject: Extract<Subject, { type: 'session_input' }>): ResolvedSubject {
  const entry = getSessionInput(db, subject.session_id, subject.offset);
  if (!entry) throw new AppError('not_found', `session input ${subject.session_id}@${subject.offset} not found`);
  if (entry.text_asset_id === null) {
    throw new AppError(
      'conflict',
      `the text of session input ${subject.session_id}@${subject.offset} is still being written; retry shortly`,
    );
  }
  const asset = getAsset(db, entry.text_asset_id);
  if (!asset) throw new AppError('gone', `the text of session input ${subject.session_id}@${subject.offset} is no longer stored`);
  return {
    subject,
    key: `session_input:${JSON.stringify([subject.session_id, subject.offset])}`,
    asset,
    mediaType: normalizeMediaType(asset.media_type),
    observationId: null,
    uploaderTextAssetId: null,
    contentHash: asset.sha256,
  };
}
