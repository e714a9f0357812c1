import type { StagedBlob } from '../assets/blob-store.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { normalizeMediaType, sniffMediaType } from '../observations/media.js';
import { findByIdempotencyKey } from '../observations/repo.js';
import type { UploadFields } from '../observations/schemas.js';
import type { IngestResult, ObservationService } from '../observations/service.js';
import type { SourceRow } from '../sources/repo.js';
import { VERSION } from '../version.js';
import { AddressPolicy } from './address-policy.js';
import { fetchInto, parseFetchUrl, systemResolver, type HostResolver, type UrlFetchOptions } from './url-fetch.js';

/** `upload` of a request that names a URL for observd to fetch. */
export interface UrlUploadRef {
  url: string;
  file_name?: string;
  media_type?: string;
}

const EXTENSIONS: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'audio/wav': 'wav', 'audio/webm': 'webm' };

/**
 * Observations from a URL: fetch it under the SSRF policy (`uploads.url_fetch`) into a staged
 * blob, then hand the bytes to `ObservationService.ingest` like any upload's. A request whose
 * idempotency key is already used is answered from the store without fetching again.
 */
export class UrlImportService {
  private options: UrlFetchOptions;
  private slots: Slots;

  constructor(
    private deps: Deps,
    private observations: ObservationService,
    resolve: HostResolver = systemResolver,
    ca?: string,
  ) {
    const c = deps.config.uploads.url_fetch;
    this.options = {
      policy: new AddressPolicy(c.allow_hosts),
      resolve,
      allowHttp: c.allow_http,
      maxRedirects: c.max_redirects,
      connectTimeoutMs: c.connect_timeout_ms,
      totalTimeoutMs: c.total_timeout_ms,
      maxBytes: deps.config.limits.max_raw_bytes,
      minBytesPerSecond: c.min_bytes_per_s,
      rateGraceMs: c.rate_grace_ms,
      userAgent: `observd/${VERSION}`,
      ca,
    };
    this.slots = new Slots(c.max_concurrent);
  }

  /**
   * Creates an observation from the content at `upload.url`: `stage`, then
   * `ObservationService.ingest` (which refuses what it refuses for any upload).
   */
  async ingest(source: SourceRow, upload: UrlUploadRef, rest: Omit<UploadFields, 'file_name' | 'media_type'>): Promise<IngestResult> {
    const staged = await this.stage(source, upload, rest);
    if ('replay' in staged) return staged.replay;
    return this.observations.ingest(source, staged.fields, staged.blob);
  }

  /**
   * Fetches `upload.url` into a staged blob and completes the upload fields (file name from the
   * URL's path, media type from the bytes, `origin_url`); or, when the idempotency key is already
   * used, the stored answer without fetching. fetch_refused when URL fetching is off or the
   * URL/address is not allowed; fetch_failed, payload_too_large, unsupported_media_type (the bytes
   * are no media observd knows) and media_mismatch (the server declared another type than the
   * bytes) from the fetch; idempotency_conflict on a replay of another request. A refusal leaves
   * nothing staged (the upload route's admission records it in the audit trail, as for any upload).
   */
  private async stage(
    source: SourceRow,
    upload: UrlUploadRef,
    rest: Omit<UploadFields, 'file_name' | 'media_type'>,
  ): Promise<{ fields: UploadFields; blob: StagedBlob } | { replay: IngestResult }> {
    let staged: StagedBlob | undefined;
    try {
      if (!this.deps.config.uploads.url_fetch.enabled) {
        throw new AppError('fetch_refused', 'creating observations from a URL is disabled (uploads.url_fetch.enabled)');
      }
      const url = parseFetchUrl(upload.url, this.options.allowHttp);
      const origin_url = originOf(url);
      const file_name = upload.file_name ?? fileNameOf(url);
      const replay = this.replay(source, upload, { ...rest, origin_url }, file_name);
      if (replay) return { replay };
      const release = await this.slots.acquire();
      let contentType: string | undefined;
      const writer = await this.deps.blobs.newWriter().catch((e) => (release(), Promise.reject(e)));
      try {
        contentType = (await fetchInto(upload.url, this.options, (chunk) => writer.write(chunk))).contentType;
        staged = await writer.finish();
      } catch (e) {
        await writer.abort();
        throw e;
      } finally {
        release();
      }
      const seen = sniffMediaType(staged.head);
      if (!seen)
        throw new AppError(
          'unsupported_media_type',
          'the fetched content is not an image or audio format observd accepts (PNG, JPEG, WAV, WebM)',
        );
      if (contentType && contentType !== seen) {
        throw new AppError('media_mismatch', `the server declared ${contentType} but the fetched bytes are ${seen}`);
      }
      const fields = { ...rest, origin_url, file_name: file_name ?? `download.${EXTENSIONS[seen]}`, media_type: upload.media_type ?? seen };
      return { fields, blob: staged };
    } catch (e) {
      if (staged) this.deps.blobs.discard(staged);
      throw e;
    }
  }

  /** The stored answer when the idempotency key is already used (idempotency_conflict if for another request). */
  private replay(source: SourceRow, upload: UrlUploadRef, rest: Omit<UploadFields, 'file_name' | 'media_type'>, fileName?: string) {
    const existing = findByIdempotencyKey(this.deps.db, source.source_id, rest.idempotency_key);
    if (!existing) return undefined;
    const media_type = upload.media_type ? normalizeMediaType(upload.media_type) : existing.media_type;
    const fields = { ...rest, file_name: fileName ?? existing.file_name, media_type };
    return this.observations.replayOf(source, fields, existing.sha256);
  }
}

/** What an observation records of its URL: scheme, host, port and path; never credentials, query or fragment. */
export function originOf(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

/** The last path segment of the URL, decoded and made safe as a file name; undefined when there is none. */
export function fileNameOf(url: URL): string | undefined {
  const last = url.pathname.split('/').pop() ?? '';
  let name: string;
  try {
    name = decodeURIComponent(last);
  } catch {
    name = last;
  }
  name = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_').slice(0, 255);
  return name && name !== '.' && name !== '..' ? name : undefined;
}

/** A counting semaphore: at most `size` holders; the rest wait in order. */
class Slots {
  private used = 0;
  private waiting: Array<() => void> = [];

  constructor(private size: number) {}

  async acquire(): Promise<() => void> {
    if (this.used < this.size) this.used++;
    else await new Promise<void>((grant) => this.waiting.push(grant));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    };
  }
}
