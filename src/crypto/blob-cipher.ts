import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/**
 * The format of an encrypted blob: `OBSDENC1`, an 8-byte random file nonce, then the content in
 * chunks of CHUNK plaintext bytes, each sealed with AES-256-GCM (16-byte tag appended). A chunk's
 * nonce is the file nonce and its 4-byte index; its additional data is the index and a "last"
 * flag, so chunks cannot be reordered, dropped or the file truncated without the tag failing.
 * Every chunk but the last holds exactly CHUNK bytes; the last holds 0..CHUNK.
 */
export const MAGIC = Buffer.from('OBSDENC1');
export const HEADER = MAGIC.length + 8;
export const CHUNK = 64 * 1024;
const TAG = 16;
export const SEALED = CHUNK + TAG;

function nonceOf(fileNonce: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  fileNonce.copy(n, 0);
  n.writeUInt32BE(index, 8);
  return n;
}

function aadOf(index: number, last: boolean): Buffer {
  const a = Buffer.alloc(5);
  a.writeUInt32BE(index, 0);
  a[4] = last ? 1 : 0;
  return a;
}

/** Seals one chunk. */
function seal(key: Buffer, fileNonce: Buffer, index: number, last: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-gcm', key, nonceOf(fileNonce, index));
  c.setAAD(aadOf(index, last));
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

/** Opens one chunk; throws when it was altered. */
function open(key: Buffer, fileNonce: Buffer, index: number, last: boolean, sealed: Buffer): Buffer {
  if (sealed.length < TAG) throw new Error('encrypted blob is truncated');
  const d = createDecipheriv('aes-256-gcm', key, nonceOf(fileNonce, index));
  d.setAAD(aadOf(index, last));
  d.setAuthTag(sealed.subarray(sealed.length - TAG));
  return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG)), d.final()]);
}

/** Encrypts a stream of plaintext into sealed bytes; `push` and `end` return what to write next. */
export class BlobEncryptor {
  private nonce = randomBytes(8);
  private pending: Buffer[] = [];
  private pendingLen = 0;
  private index = 0;
  private started = false;

  constructor(private key: Buffer) {}

  private header(): Buffer[] {
    if (this.started) return [];
    this.started = true;
    return [MAGIC, this.nonce];
  }

  /** Takes plaintext; returns the sealed bytes of every chunk now known not to be the last. */
  push(plain: Buffer): Buffer {
    const out = this.header();
    this.pending.push(plain);
    this.pendingLen += plain.length;
    // A full chunk is sealed only once more bytes follow it: the last chunk carries the flag.
    if (this.pendingLen <= CHUNK) return Buffer.concat(out);
    // Joined once and walked, not re-joined per chunk: a large push stays linear.
    const all = Buffer.concat(this.pending);
    let off = 0;
    while (all.length - off > CHUNK) {
      out.push(seal(this.key, this.nonce, this.index++, false, all.subarray(off, off + CHUNK)));
      off += CHUNK;
    }
    this.pending = [all.subarray(off)];
    this.pendingLen = all.length - off;
    return Buffer.concat(out);
  }

  /** Seals the last chunk. */
  end(): Buffer {
    const out = this.header();
    out.push(seal(this.key, this.nonce, this.index++, true, Buffer.concat(this.pending)));
    this.pending = [];
    this.pendingLen = 0;
    return Buffer.concat(out);
  }
}

/** Encrypts a whole buffer. */
export function encryptBuffer(key: Buffer, plain: Buffer): Buffer {
  const e = new BlobEncryptor(key);
  return Buffer.concat([e.push(plain), e.end()]);
}

/** The plaintext length of a sealed file of `size` bytes; throws when the size cannot be one. */
export function plainLengthOf(size: number): number {
  const body = size - HEADER;
  if (body < TAG) throw new Error('encrypted blob is truncated');
  const chunks = Math.ceil(body / SEALED);
  const plain = body - chunks * TAG;
  if (plain < 0 || (body % SEALED !== 0 && body % SEALED < TAG)) throw new Error('encrypted blob has an impossible size');
  return plain;
}

/** Decrypts a whole sealed buffer; throws when anything was altered. */
export function decryptBuffer(key: Buffer, sealed: Buffer): Buffer {
  if (!sealed.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an encrypted observd blob');
  plainLengthOf(sealed.length);
  const nonce = sealed.subarray(MAGIC.length, HEADER);
  const n = Math.ceil((sealed.length - HEADER) / SEALED);
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const from = HEADER + i * SEALED;
    out.push(open(key, nonce, i, i === n - 1, sealed.subarray(from, Math.min(from + SEALED, sealed.length))));
  }
  return Buffer.concat(out);
}

/**
 * Reads plaintext bytes `start..end` (inclusive) of an open sealed file of `size` bytes,
 * decrypting only the chunks that hold them; yields them in pieces of at most one chunk.
 */
export async function* decryptRange(key: Buffer, fh: FileHandle, size: number, start: number, end: number): AsyncGenerator<Buffer> {
  const header = Buffer.alloc(HEADER);
  await fh.read(header, 0, HEADER, 0);
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an encrypted observd blob');
  const nonce = header.subarray(MAGIC.length);
  const plainLen = plainLengthOf(size);
  if (plainLen === 0 || end < start) {
    // Still authenticate the (empty) last chunk, so a forged empty file is refused.
    const sealed = Buffer.alloc(size - HEADER);
    await fh.read(sealed, 0, sealed.length, HEADER);
    open(key, nonce, 0, true, sealed);
    return;
  }
  const n = Math.ceil((size - HEADER) / SEALED);
  const last = Math.min(end, plainLen - 1);
  const buf = Buffer.alloc(SEALED);
  for (let i = Math.floor(start / CHUNK); i <= Math.floor(last / CHUNK); i++) {
    const from = HEADER + i * SEALED;
    const len = Math.min(SEALED, size - from);
    const { bytesRead } = await fh.read(buf, 0, len, from);
    if (bytesRead !== len) throw new Error('encrypted blob is truncated');
    const plain = open(key, nonce, i, i === n - 1, buf.subarray(0, len));
    const base = i * CHUNK;
    yield plain.subarray(Math.max(0, start - base), Math.min(plain.length, last - base + 1));
  }
}

/** The plaintext of the first chunk, from the header and first sealed chunk of a file of `size` bytes. */
export function openFirstChunk(key: Buffer, start: Buffer, size: number): Buffer {
  if (!start.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not an encrypted observd blob');
  plainLengthOf(size);
  const n = Math.ceil((size - HEADER) / SEALED);
  return open(key, start.subarray(MAGIC.length, HEADER), 0, n === 1, start.subarray(HEADER, HEADER + SEALED));
}
