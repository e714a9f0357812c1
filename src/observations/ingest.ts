import type { StagedBlob } from '../assets/blob-store.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { redactionFor } from '../privacy/policy.js';
import { redact } from '../privacy/redact.js';
import type { SourceRow } from '../sources/repo.js';
import { captureGroupProblems } from './capture-group.js';
import { commitUpload } from './commit.js';
import { requestFingerprint } from './fingerprint.js';
import { GroupCommitter } from './group-commit.js';
import type { ObservationHooks } from './hooks.js';
import { replayStored, type IngestResult } from './idempotency.js';
import { assertAllowedForKind, assertBytesMatch, inferMediaType, normalizeMediaType } from './media.js';
import type { RejectionAudit } from './rejections.js';
import { findByIdempotencyKey } from './repo.js';
import type { ObservationView, UploadFields } from './schemas.js';

/** Storing uploads whose bytes are staged: validation, idempotency, redaction, then the group commit. */
export class ObservationIngest {
  /** Idempotency keys (`source\0key`) of uploads being stored right now. */
  private inFlight = new Map<string, string>();
  private committer: GroupCommitter;

  constructor(
    private deps: Deps,
    private rejections: RejectionAudit,
    private hooks: ObservationHooks,
  ) {
    this.committer = new GroupCommitter(deps.db, deps.blobs, deps.wal);
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
        if (existing) return replayStored(this.deps, existing, fingerprint);
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
        const upload = { sourceId: source.source_id, fields: f, fingerprint, staged, textStaged, text, within };
        const result = await commitUpload(this.deps, this.committer, this.hooks, upload);
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

  /**
   * The replay of an upload already stored under its idempotency key, without staging its
   * bytes again (for content known only by hash); undefined when the key is unused.
   * idempotency_conflict when the key holds a different request.
   */
  replayOf(source: SourceRow, fields: UploadFields & { media_type: string }, contentSha256: string): IngestResult | undefined {
    const f = { ...fields, media_type: normalizeMediaType(fields.media_type) };
    const existing = findByIdempotencyKey(this.deps.db, source.source_id, f.idempotency_key);
    return existing ? replayStored(this.deps, existing, requestFingerprint(f, contentSha256)) : undefined;
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
}
