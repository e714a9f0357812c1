import { createHash, randomBytes } from 'node:crypto';
import { close as fsClose, fsync as fsFsync, open as fsOpen, write as fsWrite, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BlobEncryptor } from '../crypto/blob-cipher.js';

/** Bytes written to a temp file, fsynced, and described by their hash; not yet visible in the store. */
export interface StagedBlob {
  tempPath: string;
  sha256: string;
  byteLength: number;
  /** The first bytes, for magic-number checks. */
  head: Buffer;
}

/** Bytes of a staged blob kept in memory for magic-number checks. */
export const HEAD_BYTES = 64;
/** Bytes a streaming temp file gathers before writing them with one `writev`. */
const WRITE_BATCH_BYTES = 256 * 1024;

/** The chunks left after a (possibly partial) `writev` wrote `written` bytes of them. */
function dropWritten(chunks: Buffer[], written: number): Buffer[] {
  let i = 0;
  while (i < chunks.length && written >= chunks[i].length) written -= chunks[i++].length;
  const rest = chunks.slice(i);
  if (rest.length && written > 0) rest[0] = rest[0].subarray(written);
  return rest;
}

/** A fresh, unique temp file path in `dir`. */
export function tempPathIn(dir: string): string {
  return join(dir, `${Date.now()}-${randomBytes(8).toString('hex')}.tmp`);
}

/**
 * Writes a new file (`wx`) and fsyncs it before closing: open, write, fsync, close on libuv's
 * pool through the callback API on a plain descriptor, which costs less per upload than a
 * promise FileHandle (no handle object, no promise per step).
 */
export function writeDurably(path: string, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    fsOpen(path, 'wx', 0o666, (err, fd) => {
      if (err) return reject(err);
      const done = (e: Error | null) => fsClose(fd, (ce) => (e || ce ? reject(e ?? ce) : resolve()));
      const writeFrom = (off: number) =>
        fsWrite(fd, bytes, off, bytes.length - off, null, (we, n) => {
          if (we) return done(we);
          if (off + n < bytes.length) return writeFrom(off + n);
          fsFsync(fd, done);
        });
      if (bytes.length === 0) fsFsync(fd, done);
      else writeFrom(0);
    });
  });
}

/**
 * A streaming writer for one temp file that hashes the plaintext as it writes (sealed, in an
 * encrypted store, so plaintext never reaches the disk); `finish` fsyncs, `abort` removes.
 */
export class TempBlobWriter {
  private hash = createHash('sha256');
  private size = 0;
  private head: Buffer[] = [];
  private headLen = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private constructor(
    readonly tempPath: string,
    private fh: FileHandle,
    private encryptor: BlobEncryptor | undefined,
  ) {}

  static async create(tmpDir: string, blobKey?: Buffer): Promise<TempBlobWriter> {
    const path = tempPathIn(tmpDir);
    return new TempBlobWriter(path, await open(path, 'wx'), blobKey ? new BlobEncryptor(blobKey) : undefined);
  }

  get byteLength(): number {
    return this.size;
  }

  /**
   * Hashes a chunk (sealed, in an encrypted store) and queues it; the queue is written with one
   * `writev` once it holds `WRITE_BATCH_BYTES` (or at `finish`), so a multipart file costs a few
   * trips to libuv's pool instead of one per socket chunk. The chunks are held, not copied:
   * callers hand over buffers they do not reuse (socket and busboy chunks are fresh, as is what
   * the encryptor returns).
   */
  async write(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.size += chunk.length;
    if (this.headLen < HEAD_BYTES) {
      this.head.push(Buffer.from(chunk.subarray(0, HEAD_BYTES - this.headLen)));
      this.headLen += Math.min(chunk.length, HEAD_BYTES - this.headLen);
    }
    this.queue(this.encryptor ? this.encryptor.push(chunk) : chunk);
    if (this.pendingBytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  private queue(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
  }

  private async flush(): Promise<void> {
    let chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    while (chunks.length) {
      const { bytesWritten } = await this.fh.writev(chunks);
      chunks = dropWritten(chunks, bytesWritten);
    }
  }

  async finish(): Promise<StagedBlob> {
    if (this.encryptor) this.queue(this.encryptor.end());
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
    return { tempPath: this.tempPath, sha256: this.hash.digest('hex'), byteLength: this.size, head: Buffer.concat(this.head) };
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
    rmSync(this.tempPath, { force: true });
  }
}
