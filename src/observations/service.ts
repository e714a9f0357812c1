import { statfsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { StagedBlob } from '../assets/blob-store.js';
import { discardUnclaimed, ensureAsset } from '../assets/repo.js';
import { listAudit, recordAudit, type AuditRecordView } from '../audit/repo.js';
import type { Listing } from '../pagination.js';
import { stmt } from '../db/open.js';
import { commitThenErase, type Deps } from '../deps.js';
import { releaseWithDerivations } from '../assets/repo.js';
import { AppError, notFound } from '../errors.js';
import { redactionFor } from '../privacy/policy.js';
import { redact } from '../privacy/redact.js';
import { eraseMentions } from '../retention/erase.js';
import { CANDIDATE_COLUMNS, purgeObservations, type PurgeCandidate } from '../retention/purge.js';
import { indexText } from '../search/repo.js';
import { adjustCounters, getSourceWriteRow, touchSource, type SourceRow, type SourceWriteRow } from '../sources/repo.js';
import type { SourceService } from '../sources/service.js';
import { requestFingerprint } from './fingerprint.js';
import { assertAllowedForKind, assertBytesMatch, inferMediaType, normalizeMediaType } from './media.js';
import { GroupCommitter } from './group-commit.js';
import { RateLimiter } from './rate-limiter.js';
import { RejectionAudit } from './rejections.js';
import { captureGroupProblems } from '../capture/groups.js';
import {
  findByIdempotencyKey,
  getObservationRow,
  insertObservation,
  listObservations,
  toObservationView,
  type ObservationRow,
} from './repo.js';
import type { ObservationFilter, ObservationView, UploadFields } from './schemas.js';

/** Callbacks run after an upload committed (never inside its transaction). */
export interface ObservationHooks {
  afterCreate?: (observation: ObservationView, source: SourceRow) => void;
}

export interface IngestResult {
  observation: ObservationView;
  replayed: boolean;
}

/** Uploads, reads and deletes of observations. No HTTP here: routes, the CLI and tests call it. */
export class ObservationService {
  private inFlight = new Map<string, string>();
  private committer: GroupCommitter;
  private limiter = new RateLimiter();
  private rejections: RejectionAudit;

  constructor(
    private deps: Deps,
    private sources: SourceService,
    private hooks: ObservationHooks = {},
  ) {
    this.committer = new GroupCommitter(deps.db, deps.blobs, deps.wal);
    this.rejections = new RejectionAudit(deps);
  }

  /**
   * Everything an upload must pass before its body is read: the token (unauthorized, or
   * forbidden for a paused/disabled source), the rate limit (rate_limited), the free-disk floor
   * (insufficient_storage) and a declared size over `maxBytes` (payload_too_large).
   */
  admit(sourceId: string, token: string | undefined, declaredBytes: number | undefined, maxBytes: number): SourceRow {
    return this.rejections.guard(sourceId, () => {
      const source = this.sources.authenticateUpload(sourceId, token);
      this.assertDiskFloor();
      if (declaredBytes !== undefined && declaredBytes > maxBytes) {
        throw new AppError('payload_too_large', `request body of ${declaredBytes} bytes exceeds the limit of ${maxBytes}`);
      }
      this.takeRateToken(source);
      return source;
    });
  }

  /**
   * Takes one token from the source's ingest rate limit (`admit` takes the first; a batch takes
   * one more per further item); rate_limited, with the wait, when none is left.
   */
  takeRateToken(source: SourceRow): void {
    if (!source.ingest_rate_limit) return;
    const wait = this.limiter.take(source.source_id, JSON.parse(source.ingest_rate_limit), this.deps.now());
    if (wait > 0) {
      throw new AppError('rate_limited', `ingest rate limit of source "${source.source_id}" reached`, {
        retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
      });
    }
  }

  /** Refuses writes when the data directory's free space is below the configured floor; insufficient_storage. */
  assertDiskFloor(): void {
    const floor = this.deps.config.retention.min_free_bytes;
    if (floor <= 0) return;
    const s = statfsSync(this.deps.blobs.dataDir);
    const free = Number(s.bavail) * Number(s.bsize);
    if (free < floor) {
      throw new AppError('insufficient_storage', `free disk space is below the configured floor of ${floor} bytes`);
    }
  }

  /**
   * Stores one upload whose bytes are already staged. Idempotent on (source, idempotency_key):
   * a replay returns the stored observation, a different request under the key is
   * idempotency_conflict, one still being stored is idempotency_in_flight. Also:
   * unsupported_media_type, media_mismatch, validation_failed, payload_too_large, quota_exceeded.
   * The staged blob is always consumed. `within`, if given, runs inside the transaction that
   * inserts a new observation (not on a replay), so a caller's own bookkeeping commits with it.
   */
  async ingest(
    source: SourceRow,
    fields: UploadFields,
    staged: StagedBlob,
    within?: (observation: ObservationView) => void,
  ): Promise<IngestResult> {
    let published = false;
    let key: string | undefined;
    let textStaged: StagedBlob | undefined;
    try {
      return await this.rejections.guard(source.source_id, async () => {
        // No media type (the Kheish CLI's default): what the bytes are, checked against the file name.
        const mediaType = fields.media_type ? normalizeMediaType(fields.media_type) : inferMediaType(fields.file_name, staged.head);
        const f = { ...fields, media_type: mediaType };
        this.validateFields(source, f, staged);
        const fingerprint = requestFingerprint(f, staged.sha256);
        const existing = findByIdempotencyKey(this.deps.db, source.source_id, f.idempotency_key);
        if (existing) return this.replay(existing, fingerprint);
        key = `${source.source_id}\u0000${f.idempotency_key}`;
        if (this.inFlight.has(key)) {
          key = undefined;
          throw new AppError('idempotency_in_flight', 'a request with this idempotency key is still being processed');
        }
        this.inFlight.set(key, fingerprint);
        // Uploader text is redacted before it is stored or indexed; the fingerprint above stays
        // over the request as sent, so a replay of it still matches.
        const text = f.canonical_text ? redact(f.canonical_text, redactionFor(this.deps.config, source)) : undefined;
        if (text) textStaged = await this.deps.blobs.stage(Buffer.from(text, 'utf8'));
        const result = await this.commit(source.source_id, f, fingerprint, staged, textStaged, within, text);
        published = true;
        this.hooks.afterCreate?.(result.observation, source);
        return result;
      });
    } finally {
      if (key) this.inFlight.delete(key);
      if (!published) {
        this.deps.blobs.discard(staged);
        if (textStaged) this.deps.blobs.discard(textStaged);
      }
    }
  }

  private validateFields(source: SourceRow, f: UploadFields & { media_type: string }, staged: StagedBlob) {
    const { limits } = this.deps.config;
    assertAllowedForKind(source.kind, f.media_type);
    if (staged.byteLength === 0) throw new AppError('bad_request', 'upload content is empty');
    if (staged.byteLength > limits.max_raw_bytes) {
      throw new AppError('payload_too_large', `upload content exceeds the limit of ${limits.max_raw_bytes} bytes`);
    }
    assertBytesMatch(f.media_type, staged.head);
    const problems: Array<{ path: string; message: string }> = [];
    if (f.metadata && Buffer.byteLength(JSON.stringify(f.metadata)) > limits.max_metadata_bytes) {
      problems.push({ path: 'metadata', message: `must serialise to at most ${limits.max_metadata_bytes} bytes` });
    }
    if (f.canonical_text && Buffer.byteLength(f.canonical_text) > limits.max_canonical_text_bytes) {
      problems.push({ path: 'canonical_text', message: `must be at most ${limits.max_canonical_text_bytes} bytes` });
    }
    problems.push(...captureGroupProblems(source.source_id, f.metadata));
    if (problems.length) throw new AppError('validation_failed', 'upload fields are invalid', { errors: problems });
    if (staged.byteLength > source.max_active_bytes) {
      throw new AppError(
        'payload_too_large',
        `upload of ${staged.byteLength} bytes is larger than the source's max_active_bytes (${source.max_active_bytes})`,
      );
    }
  }

  private replay(existing: ObservationRow, fingerprint: string): IngestResult {
    if (existing.request_fingerprint !== fingerprint) {
      throw new AppError('idempotency_conflict', 'this idempotency key was already used for a different request');
    }
    const { db, newId, now } = this.deps;
    db.transaction(() => {
      const t = now();
      touchSource(db, existing.source_id, t);
      recordAudit(db, newId, t, 'upload_replayed', {
        source_id: existing.source_id,
        observation_id: existing.observation_id,
        detail: {
          idempotency_key_sha256: existing.idempotency_key.startsWith('erased:')
            ? existing.idempotency_key.slice(7)
            : sha256(existing.idempotency_key),
          request_fingerprint: existing.request_fingerprint,
          media_type: existing.media_type,
          byte_length: existing.byte_length,
        },
      });
    })();
    return { observation: toObservationView(existing), replayed: true };
  }

  /**
   * The tail of an upload: publish its blobs (pinned, so no purge erases them meanwhile), then,
   * in a group commit shared with concurrent uploads, enforce the quota, insert, count, audit
   * and emit. quota_exceeded under the `reject` policy, checked before anything is
   * published and again, authoritatively, inside the transaction.
   */
  private async commit(
    sourceId: string,
    f: UploadFields & { media_type: string },
    fingerprint: string,
    staged: StagedBlob,
    textStaged: StagedBlob | undefined,
    within?: (observation: ObservationView) => void,
    text?: string,
  ): Promise<IngestResult> {
    const { db, newId, blobs } = this.deps;
    this.assertQuotaRoom(getSourceWriteRow(db, sourceId), sourceId, staged.byteLength);
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
    return this.committer.run(() => {
      const now = this.deps.now();
      // The source may have changed while the body was read; decide on its current settings.
      const source = getSourceWriteRow(db, sourceId);
      this.assertQuotaRoom(source, sourceId, staged.byteLength);
      const evicted = source.quota_policy === 'evict_oldest' ? this.evictFor(source, staged.byteLength, now) : { freed: [], erased: 0 };
      const assetId = ensureAsset(db, staged.sha256, f.media_type, staged.byteLength, now);
      const textId = textStaged ? ensureAsset(db, textStaged.sha256, 'text/plain; charset=utf-8', textStaged.byteLength, now) : null;
      const row: ObservationRow = {
        observation_id: newId('obs'),
        source_id: sourceId,
        kind: source.kind,
        sensitivity: source.sensitivity,
        retention_state: 'active',
        asset_id: assetId,
        canonical_text_asset_id: textId,
        file_name: f.file_name,
        media_type: f.media_type,
        sha256: staged.sha256,
        byte_length: staged.byteLength,
        captured_at_ms: f.captured_at_ms ?? now,
        received_at_ms: now,
        expires_at_ms: now + source.retention_seconds * 1000,
        purged_at_ms: null,
        blobs_held: 1,
        stream_id: f.stream_id ?? null,
        seq_no: f.seq_no ?? null,
        idempotency_key: f.idempotency_key,
        request_fingerprint: fingerprint,
        metadata: f.metadata ? JSON.stringify(f.metadata) : null,
        latitude: f.latitude ?? null,
        longitude: f.longitude ?? null,
        processing_status: JSON.parse(source.auto_derive).length > 0 ? 'pending' : null,
        origin_url: f.origin_url ?? null,
      };
      insertObservation(db, row);
      if (text) indexText(db, row.observation_id, text);
      adjustCounters(db, sourceId, 1, staged.byteLength);
      touchSource(db, sourceId, now, now);
      recordAudit(db, newId, now, 'upload_succeeded', {
        source_id: sourceId,
        observation_id: row.observation_id,
        detail: {
          sha256: staged.sha256,
          byte_length: staged.byteLength,
          media_type: f.media_type,
          idempotency_key_sha256: sha256(f.idempotency_key),
          request_fingerprint: fingerprint,
          upload_token_version: source.token_version,
        },
      });
      this.deps.events.append('observation.created', sourceId, {
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
      within?.(observation);
      return { result: { observation, replayed: false }, freed: evicted.freed, erased: evicted.erased > 0 };
    }, pinned);
  }

  /** Refuses an upload a `reject`-policy source has no room for; not_found if the source is gone. */
  private assertQuotaRoom(source: SourceWriteRow | undefined, sourceId: string, bytes: number): asserts source is SourceWriteRow {
    if (!source) throw notFound(`observation source "${sourceId}"`);
    if (source.quota_policy === 'reject' && !fitsQuota(source, bytes)) {
      throw new AppError(
        'quota_exceeded',
        `source "${sourceId}" is at its quota (${source.active_observation_count}/${source.max_active_observations} observations, ${source.active_byte_length}/${source.max_active_bytes} bytes)`,
      );
    }
  }

  /**
   * The replay of an upload already stored under its idempotency key, without staging its
   * bytes again (for content known only by hash); undefined when the key is unused.
   * idempotency_conflict when the key holds a different request.
   */
  replayOf(source: SourceRow, fields: UploadFields & { media_type: string }, contentSha256: string): IngestResult | undefined {
    const f = { ...fields, media_type: normalizeMediaType(fields.media_type) };
    const existing = findByIdempotencyKey(this.deps.db, source.source_id, f.idempotency_key);
    return existing ? this.replay(existing, requestFingerprint(f, contentSha256)) : undefined;
  }

  /** Purges the oldest active observations by receipt until one more of `bytes` fits; returns blobs freed and how many were erased. */
  private evictFor(source: SourceWriteRow, bytes: number, now: number): { freed: string[]; erased: number } {
    if (fitsQuota(source, bytes)) return { freed: [], erased: 0 };
    const rows = stmt(
      this.deps.db,
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
    return purgeObservations(this.deps, now, victims, 'quota_evicted');
  }

  /** Reads one observation; not_found if missing. */
  get(id: string): ObservationView {
    const row = getObservationRow(this.deps.db, id);
    if (!row) throw notFound(`observation "${id}"`);
    return toObservationView(row);
  }

  /** The observations matching a filter, as keyset pages (see `Listing`). */
  list(q: ObservationFilter) {
    return listObservations(this.deps.db, q);
  }

  /** The audit trail (newest first) matching a filter, as keyset pages. */
  audit(q: { source_id?: string; event?: string }): Listing<AuditRecordView> {
    return listAudit(this.deps.db, q);
  }

  /** Erases an observation now, and every blob nothing else references; not_found if missing. */
  delete(id: string): void {
    const { db, newId } = this.deps;
    commitThenErase(this.deps, () => {
      const row = getObservationRow(db, id);
      if (!row) throw notFound(`observation "${id}"`);
      stmt(db, `DELETE FROM observations WHERE observation_id = ?`).run(id);
      if (row.retention_state === 'active') adjustCounters(db, row.source_id, -1, -row.byte_length);
      const runAssets = eraseMentions(this.deps, [id]);
      const freed = releaseWithDerivations(
        db,
        [id],
        [row.asset_id, ...(row.canonical_text_asset_id ? [row.canonical_text_asset_id] : []), ...runAssets],
      );
      recordAudit(db, newId, this.deps.now(), 'observation_deleted', {
        source_id: row.source_id,
        observation_id: id,
        detail: { blobs_erased: freed.length, byte_length: row.byte_length },
      });
      this.deps.events.append('observation.deleted', row.source_id, { observation_id: id, source_id: row.source_id });
      return { result: undefined, freed, erased: true };
    });
  }

  /** Records a rejection that happened while reading the body (size, base64, schema). */
  recordRejection(sourceId: string, e: unknown): void {
    this.rejections.record(sourceId, e);
  }
}

function fitsQuota(source: SourceWriteRow, bytes: number): boolean {
  return (
    source.active_observation_count + 1 <= source.max_active_observations && source.active_byte_length + bytes <= source.max_active_bytes
  );
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
