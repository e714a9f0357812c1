import { Readable, Transform } from 'node:stream';
import busboy from 'busboy';
import type { BlobStore, StagedBlob } from '../assets/blob-store.js';
import { AppError, diskFull, isDiskFull } from '../errors.js';
import { type MinRate, watchRate } from '../streams.js';
import { type BodySource, bodyRateOf, requestOf, tooLarge, tooSlow, unreadable, unreadIncoming } from './body.js';

export interface MultipartUpload {
  /** The raw text of the `observation` part, if sent. */
  observation?: string;
  staged: StagedBlob;
  fileName?: string;
  mimeType?: string;
}

/**
 * Streams a multipart body to disk: the `file` part goes straight into a staged temp blob
 * (never held whole in memory), the `observation` part is kept as text. payload_too_large past
 * `maxFileBytes` or `maxTotalBytes`; bad_request for a malformed body or missing `file` part;
 * request_timeout for a body arriving slower than its rate (`bodyRateOf`) after the grace.
 */
export async function readMultipartUpload(
  from: BodySource,
  blobs: BlobStore,
  limits: MultipartLimits,
  rate?: MinRate,
): Promise<MultipartUpload> {
  const minRate = bodyRateOf(from, rate);
  const req = requestOf(from);
  const bb = multipartParser(req.headers.get('content-type') ?? '', limits);
  const incoming = unreadIncoming(from);
  if (!incoming && !req.body) throw new AppError('bad_request', 'multipart body is empty');
  // The node request itself when there is one (no web stream in between), else the Request's body.
  const source: Readable = incoming ?? Readable.fromWeb(req.body as import('node:stream/web').ReadableStream);
  const counter = byteCounter(limits.maxTotalBytes);
  // Stops reading the body. The node request is paused, not destroyed (that would close the
  // connection before the answer): the server drains or closes it after answering.
  const stopSource = () => {
    source.unpipe(counter);
    if (incoming) incoming.pause();
    else source.destroy();
  };
  const stop = () => {
    stopSource();
    bb.destroy();
  };
  const parts = new MultipartParts();
  bb.on('field', (name, value, info) => parts.field(name, value, info.valueTruncated));
  bb.on('file', (name, stream, info) => {
    const file = parts.file(name, stream, () => stageFilePart(stream, info, blobs, limits.maxFileBytes));
    if (!file) return;
    // Over the file limit: answer now rather than reading (and discarding) the rest of the body.
    // Deferred: busboy is still inside its parser when it emits 'limit'.
    stream.once('limit', () => {
      parts.fail(tooLarge(limits.maxFileBytes));
      setImmediate(stop);
    });
    file.catch((e) => {
      // The file cannot be written (a full disk): stop reading the body, or busboy would wait
      // forever for this part to be consumed and the request would never be answered.
      parts.fail(e);
      setImmediate(stop);
    });
  });
  const done = whenParsed(bb, counter, source, parts, stop);
  const watchdog = minRate
    ? watchRate(
        minRate,
        () => counter.total,
        () => {
          parts.fail(tooSlow(minRate));
          stop();
        },
      )
    : undefined;
  source.pipe(counter).pipe(bb);
  await done.finally(() => watchdog?.stop());
  return parts.result(blobs);
}

/** The limits of one multipart upload. */
export interface MultipartLimits {
  maxFileBytes: number;
  maxFieldBytes: number;
  maxTotalBytes: number;
}

/** A busboy parser for one file part and a few fields; bad_request when the Content-Type has no valid boundary. */
function multipartParser(contentType: string, limits: MultipartLimits): busboy.Busboy {
  try {
    return busboy({
      headers: { 'content-type': contentType },
      // busboy marks a file truncated when it reaches `fileSize`; +1 so exactly maxFileBytes is allowed.
      limits: { files: 1, fileSize: limits.maxFileBytes + 1, fields: 4, fieldSize: limits.maxFieldBytes, parts: 5 },
    });
  } catch {
    throw new AppError('bad_request', 'multipart body has no valid boundary');
  }
}

/**
 * Resolves once busboy has parsed the whole body, or the body broke off, passed its total limit
 * or was malformed (the failure recorded in `parts`).
 */
function whenParsed(bb: busboy.Busboy, counter: Transform, source: Readable, parts: MultipartParts, stop: () => void): Promise<void> {
  return new Promise<void>((resolve) => {
    bb.on('filesLimit', () => parts.fail(new AppError('bad_request', 'send exactly one file part')));
    bb.on('partsLimit', () => parts.fail(new AppError('bad_request', 'too many multipart parts')));
    bb.on('fieldsLimit', () => parts.fail(new AppError('bad_request', 'too many multipart fields')));
    bb.on('error', (e) => {
      parts.fail(e instanceof AppError ? e : new AppError('bad_request', `malformed multipart body: ${(e as Error).message}`));
      resolve();
    });
    bb.on('close', () => resolve());
    counter.on('error', (e) => {
      parts.fail(e);
      stop();
      resolve();
    });
    source.on('error', (e) => {
      parts.fail(unreadable(e.message));
      // Ends the file part too (with an error), so its temp file is removed instead of left open.
      bb.destroy();
      resolve();
    });
  });
}

/** A pass-through that counts the body's bytes (`total`) and errors with payload_too_large past `max`. */
function byteCounter(max: number): Transform & { total: number } {
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      counter.total += chunk.length;
      cb(counter.total > max ? tooLarge(max) : null, chunk);
    },
  }) as Transform & { total: number };
  counter.total = 0;
  return counter;
}

type StagedFile = Omit<MultipartUpload, 'observation'>;

/** Writes the file part into a staged temp blob; payload_too_large when busboy cut it at the file limit. The temp file is removed on failure. */
async function stageFilePart(stream: Readable, info: busboy.FileInfo, blobs: BlobStore, maxFileBytes: number): Promise<StagedFile> {
  const w = await blobs.newWriter();
  try {
    for await (const chunk of stream) await w.write(chunk as Buffer);
    if ((stream as unknown as { truncated?: boolean }).truncated) throw tooLarge(maxFileBytes);
    return { staged: await w.finish(), fileName: info.filename, mimeType: info.mimeType };
  } catch (e) {
    await w.abort();
    throw e;
  }
}

/** What a multipart body has yielded so far (the `observation` text, the file part) and the first failure. */
class MultipartParts {
  private observation: string | undefined;
  private filePart: Promise<StagedFile> | undefined;
  private failure: unknown;

  fail(e: unknown): void {
    this.failure ??= e;
  }

  /** Keeps the one `observation` field; any other field, a second one or a truncated one is a failure. */
  field(name: string, value: string, truncated: boolean): void {
    if (truncated) this.fail(new AppError('payload_too_large', `multipart field "${name}" is too large`));
    else if (name === 'observation' && this.observation !== undefined)
      this.fail(new AppError('bad_request', 'send one "observation" part'));
    else if (name === 'observation') this.observation = value;
    else this.fail(new AppError('bad_request', `unexpected multipart field "${name}"`));
  }

  /** Stages the one part named `file` (returned); any other file part is skipped and a failure. */
  file(name: string, stream: Readable, stage: () => Promise<StagedFile>): Promise<StagedFile> | undefined {
    // A part cut short errors this stream, possibly before its reader is attached; the failure
    // reaches us through busboy's 'error' and that reader, so an unheard one must not crash.
    stream.on('error', () => {});
    if (name !== 'file' || this.filePart) {
      stream.resume();
      this.fail(new AppError('bad_request', `unexpected multipart file part "${name}"; send one part named "file"`));
      return undefined;
    }
    this.filePart = stage();
    return this.filePart;
  }

  /** The upload once the body is read; the first failure (as an AppError, the staged file discarded) otherwise. */
  async result(blobs: BlobStore): Promise<MultipartUpload> {
    const file = await this.filePart?.catch((e) => (this.fail(e), undefined));
    if (this.failure) {
      if (file) blobs.discard(file.staged);
      if (isDiskFull(this.failure)) throw diskFull();
      throw this.failure instanceof AppError ? this.failure : new AppError('bad_request', 'malformed multipart body');
    }
    if (!file) throw new AppError('bad_request', 'multipart upload needs a part named "file"');
    return { ...file, observation: this.observation };
  }
}
