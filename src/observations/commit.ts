import type { StagedBlob } from '../assets/blob-store.js';
import { discardUnclaimed, ensureAsset } from '../assets/repo.js';
import { recordAudit } from '../audit/repo.js';
import type { Deps } from '../deps.js';
import { adjustCounters, getSourceWriteRow, touchSource, type SourceWriteRow } from '../sources/repo.js';
import { sha256Hex } from './fingerprint.js';
import type { GroupCommitter } from './group-commit.js';
import type { ObservationHooks } from './hooks.js';
import type { IngestResult } from './idempotency.js';
import { assertQuotaRoom } from './quota.js';
import { insertObservation, toObservationView, type ObservationRow } from './repo.js';
import type { ObservationView, UploadFields } from './schemas.js';

/** An upload that passed validation and idempotency, with its bytes (and redacted text) staged. */
export interface NewUpload {
  sourceId: string;
  fields: UploadFields & { media_type: string };
  fingerprint: string;
  staged: StagedBlob;
  textStaged: StagedBlob | undefined;
  /** The redacted canonical text, indexed for search. */
  text: string | undefined;
  /** Runs inside the transaction that inserts the observation (a caller's own bookkeeping). */
  within?: (observation: ObservationView) => void;
}

/**
 * The tail of an upload: publish its blobs (pinned, so no purge erases them meanwhile), then,
 * in a group commit shared with concurrent uploads, enforce the quota, insert, count, audit
 * and emit. quota_exceeded under the `reject` policy, checked before anything is
 * published and again, authoritatively, inside the transaction.
 */
export async function commitUpload(
  deps: Deps,
  committer: GroupCommitter,
  hooks: Pick<ObservationHooks, 'indexText' | 'evictFor'>,
  u: NewUpload,
): Promise<IngestResult> {
  const { db, newId, blobs } = deps;
  const { sourceId, staged, textStaged } = u;
  assertQuotaRoom(getSourceWriteRow(db, sourceId), sourceId, staged.byteLength);
  const publishing = [staged, ...(textStaged ? [textStaged] : [])];
  const pinned: string[] = [];
  try {
    for (const b of publishing) {
      pinned.push(b.sha256);
      await blobs.publishPinned(b);
    }
  } catch (e) {
    for (const sha of pinned) blobs.unpin(sha);
    discardUnclaimed(db, blobs, pinned);
    throw e;
  }
  return committer.run(() => {
    const now = deps.now();
    // The source may have changed while the body was read; decide on its current settings.
    const source = getSourceWriteRow(db, sourceId);
    assertQuotaRoom(source, sourceId, staged.byteLength);
    const evicted = source.quota_policy === 'evict_oldest' ? hooks.evictFor(source, staged.byteLength, now) : { freed: [], erased: 0 };
    const assetId = ensureAsset(db, staged.sha256, u.fields.media_type, staged.byteLength, now);
    const textId = textStaged ? ensureAsset(db, textStaged.sha256, 'text/plain; charset=utf-8', textStaged.byteLength, now) : null;
    const row = newObservationRow(source, u, newId('obs'), assetId, textId, now);
    insertObservation(db, row);
    if (u.text) hooks.indexText(db, row.observation_id, u.text);
    adjustCounters(db, sourceId, 1, staged.byteLength);
    touchSource(db, sourceId, now, now);
    recordAudit(db, newId, now, 'upload_succeeded', {
      source_id: sourceId,
      observation_id: row.observation_id,
      detail: {
        sha256: staged.sha256,
        byte_length: staged.byteLength,
        media_type: row.media_type,
        idempotency_key_sha256: sha256Hex(row.idempotency_key),
        request_fingerprint: u.fingerprint,
        upload_token_version: source.token_version,
      },
    });
    deps.events.append('observation.created', sourceId, {
      observation_id: row.observation_id,
      source_id: sourceId,
      kind: row.kind,
      stream_id: row.stream_id,
      seq_no: row.seq_no,
      media_type: row.media_type,
      byte_length: row.byte_length,
      captured_at_ms: row.captured_at_ms,
      received_at_ms: row.received_at_ms,
      processing_status: row.processing_status,
    });
    const observation = toObservationView(row);
    u.within?.(observation);
    return { result: { observation, replayed: false }, freed: evicted.freed, erased: evicted.erased > 0 };
  }, pinned);
}

/** The row of a new upload, received `now` into `source` as it is now. */
function newObservationRow(
  source: SourceWriteRow,
  u: NewUpload,
  observationId: string,
  assetId: string,
  textId: string | null,
  now: number,
): ObservationRow {
  const f = u.fields;
  return {
    observation_id: observationId,
    source_id: u.sourceId,
    kind: source.kind,
    sensitivity: source.sensitivity,
    retention_state: 'active',
    asset_id: assetId,
    canonical_text_asset_id: textId,
    file_name: f.file_name,
    media_type: f.media_type,
    sha256: u.staged.sha256,
    byte_length: u.staged.byteLength,
    captured_at_ms: f.captured_at_ms ?? now,
    received_at_ms: now,
    expires_at_ms: now + source.retention_seconds * 1000,
    purged_at_ms: null,
    blobs_held: 1,
    stream_id: f.stream_id ?? null,
    seq_no: f.seq_no ?? null,
    idempotency_key: f.idempotency_key,
    request_fingerprint: u.fingerprint,
    metadata: f.metadata ? JSON.stringify(f.metadata) : null,
    latitude: f.latitude ?? null,
    longitude: f.longitude ?? null,
    processing_status: JSON.parse(source.auto_derive).length > 0 ? 'pending' : null,
    origin_url: f.origin_url ?? null,
  };
}
