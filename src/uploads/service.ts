import { linkSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fsyncFileSync, type StagedBlob } from '../assets/blob-store.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { assertAllowedForKind, assertBytesMatch, normalizeMediaType } from '../observations/media.js';
import type { UploadFields } from '../observations/schemas.js';
import type { IngestResult, ObservationService } from '../observations/service.js';
import { getSourceRow, type SourceRow } from '../sources/repo.js';
import { pumpLimited, webChunks } from '../streams.js';
import {
  deleteTombstones,
  expiredUnused,
  getUploadRow,
  insertUpload,
  markExpired,
  markReceived,
  markUsed,
  receivedIds,
  type UploadRow,
} from './repo.js';
import { uploadPathOf, uploadsDirOf } from './paths.js';
import { signUpload, verifyUpload, type SignedUploadClaims } from './signing.js';

/** Tombstones of used or expired uploads are kept this long past their expiry. */
const TOMBSTONE_MS = 24 * 3_600_000;

/** The answer to `POST .../upload-urls`. */
export interface UploadUrl {
  upload_id: string;
  upload_url: string;
  expires_at_ms: number;
}

/** The answer to a successful PUT of an upload's bytes. */
export interface ReceivedUpload {
  upload_id: string;
  media_type: string;
  sha256: string;
  byte_length: number;
  expires_at_ms: number;
}

/** The signature parameters of an upload URL, as they arrived (unchecked). */
export interface UploadUrlParams {
  source_id?: string;
  media_type?: string;
  expires_at_ms?: string;
  signature?: string;
}

const forbidden = (detail: string) => new AppError('forbidden', detail);

/**
 * Signed uploads: mint a URL bound to a source and media type, receive raw bytes on it without a
 * token (streamed to `uploads/<upload_id>` under the data dir, so they survive a restart), then
 * turn them into one observation. Single use; unused uploads are removed after they expire.
 */
export class SignedUploadService {
  readonly dir: string;
  /** Uploads being received or turned into an observation right now (one request at a time each). */
  private busy = new Set<string>();

  constructor(
    private deps: Deps,
    private observations: ObservationService,
    private key: Buffer,
  ) {
    this.dir = uploadsDirOf(deps.blobs.dataDir);
    mkdirSync(this.dir, { recursive: true });
  }

  /** Mints an upload URL under `baseUrl` valid for `uploads.url_ttl_ms`; unsupported_media_type for the source's kind. */
  mint(source: SourceRow, req: { media_type: string; file_name: string }, baseUrl: string): UploadUrl {
    const media_type = normalizeMediaType(req.media_type);
    assertAllowedForKind(source.kind, media_type);
    const now = this.deps.now();
    const claims: SignedUploadClaims = {
      upload_id: this.deps.newId('upl'),
      source_id: source.source_id,
      media_type,
      expires_at_ms: now + this.deps.config.uploads.url_ttl_ms,
    };
    insertUpload(this.deps.db, { ...claims, file_name: req.file_name, created_at_ms: now });
    const q = new URLSearchParams({
      source_id: claims.source_id,
      media_type,
      expires_at_ms: String(claims.expires_at_ms),
      signature: signUpload(this.key, claims),
    });
    const upload_url = `${baseUrl.replace(/\/+$/, '')}/v1/uploads/${claims.upload_id}?${q}`;
    return { upload_id: claims.upload_id, upload_url, expires_at_ms: claims.expires_at_ms };
  }

  /**
   * Receives the bytes PUT to an upload URL, streaming them to disk. forbidden for a bad or
   * expired signature (or a source no longer active); conflict when the bytes were already
   * received (or are arriving on another request); payload_too_large over `max_raw_bytes`;
   * bad_request when empty; media_mismatch when they are not the signed media type;
   * insufficient_storage under the disk floor. A refused PUT leaves the upload pending.
   */
  async receive(
    uploadId: string,
    params: UploadUrlParams,
    body: ReadableStream<Uint8Array> | null,
    declaredBytes?: number,
  ): Promise<ReceivedUpload> {
    const claims = this.verify(uploadId, params);
    try {
      return await this.receiveVerified(claims, body, declaredBytes);
    } catch (e) {
      this.observations.recordRejection(claims.source_id, e);
      throw e;
    }
  }

  private verify(uploadId: string, p: UploadUrlParams): SignedUploadClaims {
    const { source_id, media_type, expires_at_ms, signature } = p;
    if (!source_id || !media_type || !expires_at_ms || !signature || !/^\d{1,16}$/.test(expires_at_ms)) {
      throw forbidden('the upload URL is incomplete: it needs source_id, media_type, expires_at_ms and signature');
    }
    const claims = { upload_id: uploadId, source_id, media_type, expires_at_ms: Number(expires_at_ms) };
    if (!verifyUpload(this.key, claims, signature)) throw forbidden('the upload URL signature is invalid');
    if (this.deps.now() >= claims.expires_at_ms) throw forbidden('the upload URL has expired');
    return claims;
  }

  private async receiveVerified(claims: SignedUploadClaims, body: ReadableStream<Uint8Array> | null, declaredBytes?: number) {
    const id = claims.upload_id;
    const row = getUploadRow(this.deps.db, id);
    // A valid signature without its row: the upload expired and was cleaned up.
    if (!row || row.state === 'expired') throw forbidden('the upload URL has expired');
    if (row.state !== 'pending') throw new AppError('conflict', `upload "${id}" already received its bytes; request a new upload URL`);
    if (this.busy.has(id)) throw new AppError('conflict', `bytes for upload "${id}" are arriving on another request`);
    const source = getSourceRow(this.deps.db, claims.source_id);
    if (source?.status !== 'active') throw forbidden(`source is ${source?.status ?? 'deleted'}; uploads are not accepted`);
    this.observations.assertDiskFloor();
    const max = this.deps.config.limits.max_raw_bytes;
    if (declaredBytes !== undefined && declaredBytes > max) {
      throw new AppError('payload_too_large', `upload of ${declaredBytes} bytes exceeds the limit of ${max}`);
    }
    this.busy.add(id);
    let staged: StagedBlob | undefined;
    try {
      staged = await this.streamToTemp(body, max);
      if (staged.byteLength === 0) throw new AppError('bad_request', 'upload content is empty');
      assertBytesMatch(row.media_type, staged.head);
      // Synchronous from here: file and row change together with nothing interleaved.
      if (this.deps.now() >= row.expires_at_ms) throw forbidden('the upload URL expired while the bytes were arriving');
      // Renamed before the row says so: a crash in between leaves a stray file (removed at
      // start), never a received upload without its bytes.
      const { sha256, byteLength } = staged;
      renameSync(staged.tempPath, this.pathOf(id));
      staged = undefined;
      fsyncFileSync(this.dir);
      markReceived(this.deps.db, id, sha256, byteLength, this.deps.now());
      return { upload_id: id, media_type: row.media_type, sha256, byte_length: byteLength, expires_at_ms: row.expires_at_ms };
    } finally {
      if (staged) this.deps.blobs.discard(staged);
      this.busy.delete(id);
    }
  }

  /** Streams a body into a temp file of at most `max` bytes; payload_too_large past it, bad_request if the client breaks off. */
  private async streamToTemp(body: ReadableStream<Uint8Array> | null, max: number): Promise<StagedBlob> {
    const w = await this.deps.blobs.newWriter();
    try {
      if (body) {
        const limited = {
          limit: max,
          tooLarge: () => new AppError('payload_too_large', `upload content exceeds the limit of ${max} bytes`),
          unreadable: (e: Error) => new AppError('bad_request', `request body could not be read: ${e.message}`),
        };
        await pumpLimited(webChunks(body), limited, (chunk) => w.write(chunk));
      }
      return await w.finish();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }

  /**
   * Creates the observation for a received upload (file name and media type as signed).
   * not_found for an unknown upload or one of another source; gone once expired; conflict while
   * no bytes were PUT, or when the upload already made an observation (unless this is a replay
   * of that very request, answered like any idempotent replay); plus everything `ingest` refuses.
   * A refused request leaves the upload usable.
   */
  async ingest(source: SourceRow, uploadId: string, rest: Omit<UploadFields, 'file_name' | 'media_type'>): Promise<IngestResult> {
    const row = this.usable(source, uploadId);
    const fields = { ...rest, file_name: row.file_name, media_type: row.media_type };
    if (row.state === 'used') {
      const replay = this.observations.replayOf(source, fields, row.sha256!);
      if (replay) return replay;
      throw new AppError(
        'conflict',
        `upload "${uploadId}" was already used by observation ${row.observation_id}; each upload creates one observation`,
      );
    }
    this.busy.add(uploadId);
    try {
      const result = await this.observations.ingest(source, fields, this.linkForIngest(row), (o) => {
        if (!markUsed(this.deps.db, uploadId, o.observation_id)) throw new Error(`upload ${uploadId} changed state while in use`);
      });
      if (!result.replayed) rmSync(this.pathOf(uploadId), { force: true });
      return result;
    } finally {
      this.busy.delete(uploadId);
    }
  }

  private usable(source: SourceRow, uploadId: string): UploadRow {
    const row = getUploadRow(this.deps.db, uploadId);
    if (!row || row.source_id !== source.source_id) throw new AppError('not_found', `upload "${uploadId}" not found`);
    if (row.state === 'used') return row;
    if (row.state === 'expired' || this.deps.now() >= row.expires_at_ms) {
      throw new AppError('gone', `upload "${uploadId}" expired at ${row.expires_at_ms} before it was used`);
    }
    if (row.state === 'pending') throw new AppError('conflict', `upload "${uploadId}" has no bytes yet: PUT them to its upload_url first`);
    if (this.busy.has(uploadId)) throw new AppError('conflict', `upload "${uploadId}" is being used by another request`);
    return row;
  }

  /** A hard link of the upload's bytes in the temp dir for `ingest` to consume, leaving the original until it succeeds. */
  private linkForIngest(row: UploadRow): StagedBlob {
    const tempPath = join(this.deps.blobs.tmpDir, `${Date.now()}-${randomBytes(8).toString('hex')}.tmp`);
    try {
      linkSync(this.pathOf(row.upload_id), tempPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      throw new AppError('gone', `the bytes of upload "${row.upload_id}" are no longer on disk; upload them again`);
    }
    return { tempPath, sha256: row.sha256!, byteLength: row.byte_length!, head: this.deps.blobs.readHead(tempPath) };
  }

  /**
   * Removes what expired uploads left: unused uploads past their expiry lose their bytes and
   * become tombstones, tombstones go a day later, and files no received upload claims go now.
   */
  cleanup(now = this.deps.now()): { expired: number; tombstones: number; strays: number } {
    const { db } = this.deps;
    let expired = 0;
    for (;;) {
      const ids = expiredUnused(db, now, 500).filter((id) => !this.busy.has(id));
      if (!ids.length) break;
      db.transaction(() => markExpired(db, ids))();
      for (const id of ids) rmSync(this.pathOf(id), { force: true });
      expired += ids.length;
      if (ids.length < 500) break;
    }
    const tombstones = deleteTombstones(db, now - TOMBSTONE_MS);
    const keep = receivedIds(db);
    let strays = 0;
    for (const f of readdirSync(this.dir)) {
      if (keep.has(f) || this.busy.has(f)) continue;
      rmSync(join(this.dir, f), { force: true, recursive: true });
      strays++;
    }
    return { expired, tombstones, strays };
  }

  private pathOf(uploadId: string): string {
    return uploadPathOf(this.deps.blobs.dataDir, uploadId);
  }
}
