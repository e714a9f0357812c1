import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  fstatSync,
  existsSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  unlinkSync,
} from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CHUNK, decryptBuffer, decryptRange, encryptBuffer, HEADER, openFirstChunk, SEALED } from '../crypto/blob-cipher.js';
import { blobNameOf, type StoreKeys } from '../crypto/keys.js';

import { HEAD_BYTES, type StagedBlob, TempBlobWriter, tempPathIn, writeDurably } from './temp-writer.js';

export type { StagedBlob };

/**
 * The content-addressed blob directory: `blobs/ab/cd/<sha256>`, written and fsynced in `tmp/`
 * and renamed into place, so a blob path only ever holds complete, durable bytes. A blob renamed
 * but never referenced (a crash before its row committed) is an orphan, removed at the next start.
 */
export class BlobStore {
  readonly blobDir: string;
  readonly tmpDir: string;

  /** `keys` makes it an encrypted store: contents sealed with AES-256-GCM, names an HMAC of the hash. */
  constructor(
    readonly dataDir: string,
    readonly keys?: StoreKeys,
  ) {
    this.blobDir = join(dataDir, 'blobs');
    this.tmpDir = join(dataDir, 'tmp');
    mkdirSync(this.blobDir, { recursive: true });
    mkdirSync(this.tmpDir, { recursive: true });
  }

  /** The file name of the blob with this SHA-256: the hash itself, or its HMAC in an encrypted store. */
  nameOf(sha256: string): string {
    return this.keys ? blobNameOf(this.keys, sha256) : sha256;
  }

  /** Absolute path of the blob with this SHA-256 (which may not exist). */
  pathOf(sha256: string): string {
    const name = this.nameOf(sha256);
    return join(this.shardDirOf(name), name);
  }

  has(sha256: string): boolean {
    return existsSync(this.pathOf(sha256));
  }

  /** A blob's whole content (decrypted); ENOENT when it is not stored, an Error when it was altered. */
  async read(sha256: string): Promise<Buffer> {
    const bytes = await readFile(this.pathOf(sha256));
    return this.keys ? decryptBuffer(this.keys.blob, bytes) : bytes;
  }

  /** A blob's content as UTF-8 text. */
  async readText(sha256: string): Promise<string> {
    return (await this.read(sha256)).toString('utf8');
  }

  /**
   * Streams a blob's content, or bytes `start..end` (inclusive) of it, decrypting chunk by chunk
   * in an encrypted store so large media never sit whole in memory.
   */
  stream(sha256: string, range?: { start: number; end: number }): Readable {
    return this.streamFile(this.pathOf(sha256), range);
  }

  /** `stream` for a file of this store by path (a blob, or a signed upload's bytes). */
  streamFile(path: string, range?: { start: number; end: number }): Readable {
    const keys = this.keys;
    if (!keys) return createReadStream(path, range);
    return Readable.from(
      (async function* () {
        const fh = await open(path, 'r');
        try {
          const { size } = await fh.stat();
          yield* decryptRange(keys.blob, fh, size, range?.start ?? 0, range?.end ?? Number.MAX_SAFE_INTEGER);
        } finally {
          await fh.close();
        }
      })(),
      { objectMode: false, highWaterMark: CHUNK },
    );
  }

  /** The first `n` plaintext bytes of a staged (temp) file, for magic-number checks. */
  readHead(tempPath: string, n = HEAD_BYTES): Buffer {
    const fd = openSync(tempPath, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(this.keys ? Math.min(size, HEADER + SEALED) : n);
      const got = readSync(fd, buf, 0, buf.length, 0);
      if (!this.keys) return buf.subarray(0, got);
      return openFirstChunk(this.keys.blob, buf.subarray(0, got), size).subarray(0, n);
    } finally {
      closeSync(fd);
    }
  }

  /** Starts a streaming temp file. */
  newWriter(): Promise<TempBlobWriter> {
    return TempBlobWriter.create(this.tmpDir, this.keys?.blob);
  }

  /** Stages a whole buffer as a durable temp file. */
  async stage(bytes: Buffer): Promise<StagedBlob> {
    const tempPath = tempPathIn(this.tmpDir);
    // Hashed while the file is being written (the write runs on libuv's pool).
    const writing = writeDurably(tempPath, this.keys ? encryptBuffer(this.keys.blob, bytes) : bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    try {
      await writing;
    } catch (e) {
      rmSync(tempPath, { force: true });
      throw e;
    }
    return { tempPath, sha256, byteLength: bytes.length, head: Buffer.from(bytes.subarray(0, HEAD_BYTES)) };
  }

  /**
   * Moves a staged blob to its content address (synchronously, so no purge can interleave);
   * when identical bytes are already stored the temp file is simply dropped.
   */
  publishSync(staged: StagedBlob): void {
    this.moveIntoPlace(staged);
  }

  /**
   * Like `publishSync`, but pins the blob (so no purge can erase it until `unpin`) and creates
   * a missing shard directory off the event loop.
   */
  async publishPinned(staged: StagedBlob): Promise<void> {
    this.pin(staged.sha256);
    await this.ensureShardDir(staged.sha256);
    this.moveIntoPlace(staged);
  }

  /** Creates a blob's shard directory off the event loop (once per directory per run). */
  private async ensureShardDir(sha256: string): Promise<void> {
    const dir = this.shardDirOf(this.nameOf(sha256));
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    this.knownDirs.add(dir);
  }

  /** The shard directory of a blob file name. */
  private shardDirOf(name: string): string {
    return join(this.blobDir, name.slice(0, 2), name.slice(2, 4));
  }

  /**
   * Renames a staged (already fsynced) file to its content address; false when the bytes were
   * already there. The rename and any new shard directory become durable with the next journal
   * commit, which the WAL sync that precedes every upload's answer forces on journalling
   * filesystems (ext4, xfs): each upload costs one fsync of its bytes, like the minimal durable
   * write, plus its share of one WAL sync.
   */
  private moveIntoPlace(staged: StagedBlob): boolean {
    const dest = this.pathOf(staged.sha256);
    if (existsSync(dest)) {
      rmSync(staged.tempPath, { force: true });
      return false;
    }
    const dir = this.shardDirOf(this.nameOf(staged.sha256));
    if (!this.knownDirs.has(dir)) {
      mkdirSync(dir, { recursive: true });
      this.knownDirs.add(dir);
    }
    renameSync(staged.tempPath, dest);
    return true;
  }

  private pins = new Map<string, number>();
  /** Shard directories known to exist (they are never removed while the daemon runs). */
  private knownDirs = new Set<string>();

  /** Keeps a blob from being erased while a write that references it has not committed yet. */
  pin(sha256: string): void {
    this.pins.set(sha256, (this.pins.get(sha256) ?? 0) + 1);
  }

  unpin(sha256: string): void {
    const n = (this.pins.get(sha256) ?? 0) - 1;
    if (n > 0) this.pins.set(sha256, n);
    else this.pins.delete(sha256);
  }

  isPinned(sha256: string): boolean {
    return this.pins.has(sha256);
  }

  /** Drops a staged blob that will not be published. */
  discard(staged: StagedBlob): void {
    rmSync(staged.tempPath, { force: true });
  }

  /** Erases a blob unless pinned; missing is fine. */
  removeSync(sha256: string): void {
    // A pinned blob is about to be referenced by a commit in flight; that commit re-creates its row.
    if (this.pins.has(sha256)) return;
    try {
      unlinkSync(this.pathOf(sha256));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /** Removes every temp file and every blob file whose name `isKnown` does not claim; returns what was removed. Run at start only. */
  sweepStrays(isKnown: (name: string) => boolean): { temps: number; orphans: number } {
    let temps = 0;
    for (const f of readdirSync(this.tmpDir)) {
      rmSync(join(this.tmpDir, f), { force: true, recursive: true });
      temps++;
    }
    let orphans = 0;
    // Anything that is not `ab/cd/<known name starting abcd>` (a file) is foreign to the store.
    const drop = (p: string) => {
      rmSync(p, { force: true, recursive: true });
      orphans++;
    };
    for (const a of readdirSync(this.blobDir)) {
      const da = join(this.blobDir, a);
      if (!lstatSync(da).isDirectory()) {
        drop(da);
        continue;
      }
      for (const b of readdirSync(da)) {
        const db = join(da, b);
        if (!lstatSync(db).isDirectory()) {
          drop(db);
          continue;
        }
        for (const f of readdirSync(db)) {
          const p = join(db, f);
          if (f.slice(0, 2) !== a || f.slice(2, 4) !== b || !lstatSync(p).isFile() || !isKnown(f)) drop(p);
        }
      }
    }
    return { temps, orphans };
  }

  /** Lists every stored blob file name (the hashes, in a plain store; for consistency checks). */
  listAll(): string[] {
    const out: string[] = [];
    for (const a of readdirSync(this.blobDir)) {
      for (const b of readdirSync(join(this.blobDir, a))) out.push(...readdirSync(join(this.blobDir, a, b)));
    }
    return out;
  }
}

/** Blocking fsync of a file (or directory) by path. */
export function fsyncFileSync(path: string) {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
