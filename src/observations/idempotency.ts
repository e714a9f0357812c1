import { recordAudit } from '../audit/repo.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { touchSource } from '../sources/repo.js';
import { sha256Hex } from './fingerprint.js';
import { toObservationView, type ObservationRow } from './repo.js';
import type { ObservationView } from './schemas.js';

export interface IngestResult {
  observation: ObservationView;
  replayed: boolean;
}

/**
 * Answers a repeat of an upload stored under its idempotency key with the stored observation,
 * touching the source and auditing `upload_replayed`; idempotency_conflict when the key holds a
 * different request.
 */
export function replayStored(deps: Pick<Deps, 'db' | 'newId' | 'now'>, existing: ObservationRow, fingerprint: string): IngestResult {
  if (existing.request_fingerprint !== fingerprint) {
    throw new AppError('idempotency_conflict', 'this idempotency key was already used for a different request');
  }
  const { db, newId, now } = deps;
  db.transaction(() => {
    const t = now();
    touchSource(db, existing.source_id, t);
    recordAudit(db, newId, t, 'upload_replayed', {
      source_id: existing.source_id,
      observation_id: existing.observation_id,
      detail: {
        idempotency_key_sha256: existing.idempotency_key.startsWith('erased:')
          ? existing.idempotency_key.slice(7)
          : sha256Hex(existing.idempotency_key),
        request_fingerprint: existing.request_fingerprint,
        media_type: existing.media_type,
        byte_length: existing.byte_length,
      },
    });
  })();
  return { observation: toObservationView(existing), replayed: true };
}
