import { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { AppError } from '../errors.js';
import { type MinRate, pumpLimited, watchRate, webChunks } from '../streams.js';
import type { AppEnv } from './auth.js';
import type { MemoryBudget } from './memory-budget.js';

/** payload_too_large for a body over `limit`. */
export const tooLarge = (limit: number) => new AppError('payload_too_large', `request body exceeds the limit of ${limit} bytes`);

/** The declared Content-Length, if any; bad_request when it is not a number. */
export function declaredLength(req: Request): number | undefined {
  const v = req.headers.get('content-length');
  if (v === null) return undefined;
  if (!/^\d{1,16}$/.test(v)) throw new AppError('bad_request', 'Content-Length is not a number');
  return Number(v);
}

/** Where a body is read from: a hono context (its node request directly, when served by node) or a web Request. */
export type BodySource = Context | Request;

/**
 * The node request behind a context served by @hono/node-server, while nothing has started
 * reading its body: reading it directly skips the web ReadableStream the Request would wrap
 * around it (a stream object, a promise and a copy per chunk). Undefined otherwise (in-process
 * `app.fetch`, as the MCP route does), and callers fall back to the Request's body.
 */
export function unreadIncoming(from: BodySource): IncomingMessage | undefined {
  if (from instanceof Request) return undefined;
  const incoming = (from.env as { incoming?: unknown } | undefined)?.incoming;
  if (!(incoming instanceof IncomingMessage) || incoming.readableDidRead || incoming.listenerCount('data') > 0) return undefined;
  return incoming;
}

/** The web Request of a body source. */
export const requestOf = (from: BodySource): Request => (from instanceof Request ? from : from.req.raw);

/**
 * The pace a body must keep: `minRate` when given, else the one `createApp` sets on every request
 * (`bodyRate`); none for a bare Request (in-process calls).
 */
export function bodyRateOf(from: BodySource, minRate?: MinRate): MinRate | undefined {
  if (minRate || from instanceof Request) return minRate;
  return (from as Context<AppEnv>).get('bodyRate');
}

/**
 * Reads a whole body, refusing a declared or actual size over `limit` (payload_too_large)
 * without buffering past it; a body arriving slower than its rate (`bodyRateOf`) after the grace
 * is cut (request_timeout). A body cut short is left unread: the server drains (or closes) it
 * after the answer.
 */
export async function readLimitedBytes(from: BodySource, limit: number, rate?: MinRate): Promise<Buffer> {
  const minRate = bodyRateOf(from, rate);
  const req = requestOf(from);
  const declared = declaredLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
  const incoming = unreadIncoming(from);
  const collector = new Collector(limit, declared);
  if (incoming) return readIncoming(incoming, collector, minRate);
  if (!req.body) return Buffer.alloc(0);
  const chunks = webChunks(req.body);
  const watchdog = minRate
    ? watchRate(
        minRate,
        () => collector.size,
        () => void chunks.cancel(),
      )
    : undefined;
  try {
    // A read that fails is the client going away mid-body: its mistake, not an internal error.
    await pumpLimited(chunks, { limit, tooLarge: () => tooLarge(limit), unreadable: (e) => unreadable(e.message) }, (chunk) =>
      collector.add(chunk),
    );
  } catch (e) {
    throw minRate && watchdog?.tripped() ? tooSlow(minRate) : e;
  } finally {
    watchdog?.stop();
  }
  // A body the watchdog cut short reads as done: it is still too slow, not complete.
  if (minRate && watchdog?.tripped()) throw tooSlow(minRate);
  return collector.bytes();
}

/** bad_request for a body the client broke off; `tooSlow`: request_timeout for one under the minimum rate. */
export const unreadable = (why: string) => new AppError('bad_request', `request body could not be read: ${why}`);
export const tooSlow = (rate: MinRate) =>
  new AppError('request_timeout', `request body arrived slower than ${rate.bytesPerSecond} bytes/s; send it faster`);

/** Gathers a body's chunks up to a limit; with a declared length, straight into one buffer (no chunk list plus a copy). */
class Collector {
  size = 0;
  private out: Buffer | undefined;
  private chunks: Buffer[] = [];
  constructor(
    readonly limit: number,
    declared: number | undefined,
  ) {
    this.out = declared !== undefined ? Buffer.allocUnsafe(declared) : undefined;
  }

  /** Adds a chunk; false (and nothing added) when it would pass the limit. */
  add(chunk: Buffer): boolean {
    if (this.size + chunk.length > this.limit) return false;
    if (this.out && this.size + chunk.length <= this.out.length) chunk.copy(this.out, this.size);
    else {
      if (this.out) this.chunks.push(this.out.subarray(0, this.size));
      this.out = undefined;
      // A web chunk's buffer is not ours to keep: copy it.
      this.chunks.push(Buffer.from(chunk));
    }
    this.size += chunk.length;
    return true;
  }

  bytes(): Buffer {
    return this.out ? this.out.subarray(0, this.size) : Buffer.concat(this.chunks, this.size);
  }
}

/** `readLimitedBytes` over the node request itself: 'data' events into the collector, the same limit and rate cut. */
function readIncoming(incoming: IncomingMessage, collector: Collector, minRate?: MinRate): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    let settled = false;
    const watchdog = minRate
      ? watchRate(
          minRate,
          () => collector.size,
          () => fail(tooSlow(minRate)),
        )
      : undefined;
    const cleanup = () => {
      settled = true;
      watchdog?.stop();
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    // Stops reading: the rest is left to the server, which drains or closes it after the answer.
    const fail = (e: AppError) => {
      if (settled) return;
      cleanup();
      incoming.pause();
      reject(e);
    };
    const onData = (chunk: Buffer) => {
      if (!settled && !collector.add(chunk)) fail(tooLarge(collector.limit));
    };
    const onEnd = () => {
      if (settled) return;
      cleanup();
      resolve(collector.bytes());
    };
    const onError = (e: Error) => fail(unreadable(e.message));
    const onClose = () => fail(unreadable('the connection closed before the body ended'));
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

/**
 * Reserves memory for a JSON body of at most `limit` bytes before it is read: about three times
 * its size (the bytes, their decoded string, the parsed values). Waits, with the body unread,
 * while other requests hold the budget; payload_too_large at once for an oversized declaration.
 * Returns the release function.
 */
export async function reserveJsonBody(req: Request, limit: number, budget: MemoryBudget): Promise<() => void> {
  const declared = declaredLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge(limit);
  return budget.acquire(3 * (declared ?? limit));
}
