import type { Readable } from 'node:stream';

/** A stream read one chunk at a time: `read` answers like a web reader's, `cancel` stops the stream. */
export interface ChunkReader {
  read(): Promise<{ done?: boolean; value?: Uint8Array }>;
  cancel(): unknown;
}

/** A web stream's chunks; `cancel` cancels it, and a read waiting meanwhile ends as done. */
export function webChunks(body: ReadableStream<Uint8Array>): ChunkReader {
  const reader = body.getReader();
  return { read: () => reader.read(), cancel: () => reader.cancel().catch(() => {}) };
}

/** A node stream's chunks; `cancel` destroys it, and a read waiting meanwhile fails. */
export function nodeChunks(stream: Readable): ChunkReader {
  const chunks = stream[Symbol.asyncIterator]();
  return { read: () => chunks.next(), cancel: () => stream.destroy() };
}

/** How `pumpLimited` reads: at most `limit` bytes, and the errors it throws. */
export interface LimitedRead {
  limit: number;
  /** Thrown past `limit`. */
  tooLarge: () => Error;
  /** Maps a read that fails (the other side broke off); without it the error is thrown as is. */
  unreadable?: (e: Error) => Error;
}

/**
 * Hands a stream's chunks to `sink` in order until it ends, never more than `limit` bytes in all:
 * the chunk that would pass it is not handed over, the stream is cancelled and `tooLarge()`
 * thrown. A failed read throws `unreadable(error)`; an error of `sink` is thrown as is, the
 * stream left unread. Resolves with the number of bytes handed over.
 */
export async function pumpLimited(chunks: ChunkReader, o: LimitedRead, sink: (chunk: Buffer) => unknown): Promise<number> {
  let size = 0;
  for (;;) {
    const { done, value } = await chunks.read().catch((e: Error) => {
      throw o.unreadable ? o.unreadable(e) : e;
    });
    if (done || !value) return size;
    if (size + value.byteLength > o.limit) {
      await chunks.cancel();
      throw o.tooLarge();
    }
    size += value.byteLength;
    const written = sink(Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    if (written instanceof Promise) await written;
  }
}

/** The slowest a stream may arrive once `graceMs` have passed (bytes per second, on average). */
export interface MinRate {
  bytesPerSecond: number;
  graceMs: number;
}

/**
 * Calls `cancel` once a stream has `received()` fewer bytes than `rate` allows, on average
 * since `since`, after its grace period: a peer that holds a scarce resource (a memory budget,
 * a temp file, a connection) while dribbling its bytes loses it.
 */
export function watchRate(rate: MinRate, received: () => number, cancel: () => void, since = performance.now()) {
  let tripped = false;
  const timer = setInterval(
    () => {
      const elapsed = performance.now() - since;
      if (elapsed < rate.graceMs || received() >= (rate.bytesPerSecond * elapsed) / 1000) return;
      tripped = true;
      clearInterval(timer);
      cancel();
    },
    Math.min(1000, rate.graceMs),
  );
  return { tripped: () => tripped, stop: () => clearInterval(timer) };
}
