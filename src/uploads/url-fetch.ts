import { lookup } from 'node:dns/promises';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AppError, diskFull, isDiskFull } from '../errors.js';
import { normalizeMediaType } from '../observations/media.js';
import { nodeChunks, pumpLimited, watchRate } from '../streams.js';
import type { AddressPolicy } from './address-policy.js';

/** One address a host name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to its addresses (the daemon uses the system resolver; tests inject their own). */
export type HostResolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system resolver (`getaddrinfo`, as every other connection of the process resolves). */
export const systemResolver: HostResolver = async (hostname) =>
  (await lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

/** How a URL may be fetched. */
export interface UrlFetchOptions {
  policy: AddressPolicy;
  resolve: HostResolver;
  /** Plain http as well as https. */
  allowHttp: boolean;
  maxRedirects: number;
  /** From the start of one hop's connection to its TCP connect. */
  connectTimeoutMs: number;
  /** The whole fetch, every redirect and the body included. */
  totalTimeoutMs: number;
  /** Largest body; refused from Content-Length before reading, and while streaming. */
  maxBytes: number;
  /** The slowest a body may arrive, on average, once `graceMs` have passed since its first hop. */
  minBytesPerSecond: number;
  rateGraceMs: number;
  userAgent: string;
  /** CA certificates trusted instead of Node's bundled ones (tests' self-signed servers); default: the bundle. */
  ca?: string;
}

/** What a finished fetch tells about the bytes written. */
export interface FetchedBody {
  /** The URL the bytes came from (after redirects). */
  finalUrl: URL;
  /** The server's Content-Type, normalized; undefined when absent or generic (octet-stream). */
  contentType?: string;
  byteLength: number;
}

const refused = (detail: string) => new AppError('fetch_refused', detail);
const failed = (detail: string) => new AppError('fetch_failed', detail);
const GENERIC_TYPES = new Set(['application/octet-stream', 'binary/octet-stream', 'application/binary']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Parses a URL a client asked observd to fetch; fetch_refused unless it is http(s) (http only
 * with `allowHttp`) without credentials.
 */
export function parseFetchUrl(raw: string, allowHttp: boolean): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refused('upload.url is not a valid absolute URL');
  }
  if (url.protocol !== 'https:' && !(allowHttp && url.protocol === 'http:')) {
    throw refused(
      allowHttp ? 'only http and https URLs can be fetched' : 'only https URLs can be fetched (uploads.url_fetch.allow_http is off)',
    );
  }
  if (url.username || url.password) throw refused('URLs with credentials (user:password@) are not fetched');
  return url;
}

/**
 * Fetches `raw` and hands its body to `write`, chunk by chunk. Each hop (at most `maxRedirects`
 * redirects) is checked again: scheme, credentials, and the address its host resolves to,
 * resolved once and pinned for the connection, so a second DNS answer cannot swap in another
 * address. fetch_refused for a URL or address the policy forbids and for too many redirects;
 * fetch_failed when the server cannot be reached, answers non-2xx, breaks off, or is too slow
 * (connect, total or minimum-rate limits); payload_too_large past `maxBytes`; insufficient_storage
 * when `write` finds the disk full;
 * unsupported_media_type when the server declares a type that is not media. No error
 * carries the body.
 */
export async function fetchInto(raw: string, o: UrlFetchOptions, write: (chunk: Buffer) => Promise<void>): Promise<FetchedBody> {
  const ac = new AbortController();
  const started = performance.now();
  const deadline = setTimeout(() => ac.abort(failed(`fetching the URL took longer than ${o.totalTimeoutMs} ms`)), o.totalTimeoutMs);
  try {
    let url = parseFetchUrl(raw, o.allowHttp);
    for (let hop = 0; ; hop++) {
      const address = await pinnedAddress(url, o, ac.signal);
      const res = await get(url, address, o, ac.signal);
      const location = res.headers.location;
      if (REDIRECTS.has(res.statusCode ?? 0) && location) {
        res.destroy();
        if (hop >= o.maxRedirects) throw refused(`the URL redirected more than ${o.maxRedirects} times`);
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          throw failed('the server redirected to an invalid URL');
        }
        url = parseFetchUrl(next.href, o.allowHttp);
        continue;
      }
      if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) {
        res.destroy();
        throw failed(`the server answered ${res.statusCode ?? 'nothing'}`);
      }
      return await readBody(res, url, o, started, write, ac.signal);
    }
  } catch (e) {
    throw ac.signal.aborted && ac.signal.reason instanceof AppError ? ac.signal.reason : e;
  } finally {
    clearTimeout(deadline);
  }
}

/** The one address this hop connects to; fetch_refused when the policy forbids it, fetch_failed when the name does not resolve. */
async function pinnedAddress(url: URL, o: UrlFetchOptions, signal: AbortSignal): Promise<ResolvedAddress> {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const literal = isIP(host);
  if (literal) {
    if (!o.policy.allowsAddress(host)) throw forbiddenAddress();
    return { address: host, family: literal === 6 ? 6 : 4 };
  }
  let addresses: ResolvedAddress[];
  try {
    // A resolver that hangs must not outlive the total deadline.
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    addresses = await Promise.race([o.resolve(host), aborted]);
  } catch {
    if (signal.aborted) throw signal.reason;
    throw failed(`the host "${host}" could not be resolved`);
  }
  if (addresses.length === 0) throw failed(`the host "${host}" could not be resolved`);
  // Every answer must pass: a name that also points inside is refused, whichever answer comes first.
  if (!o.policy.allowsHost(host) && addresses.some((a) => !o.policy.allowsAddress(a.address))) throw forbiddenAddress();
  return addresses[0];
}

// The address is not named: a client must not learn how internal names resolve.
const forbiddenAddress = () =>
  refused(
    'the URL leads to an address observd does not fetch from (loopback, private, link-local, metadata or reserved) and the allow-list does not name it',
  );

/** One GET to `address`, with Host, SNI and certificate checks for the URL's host name. */
function get(url: URL, address: ResolvedAddress, o: UrlFetchOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const pinned: LookupFunction = (_hostname, options, cb) => {
    if (options.all) (cb as unknown as (e: null, a: ResolvedAddress[]) => void)(null, [address]);
    else cb(null, address.address, address.family);
  };
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'GET',
      agent: false,
      lookup: pinned,
      signal,
      ...(o.ca && url.protocol === 'https:' ? { ca: o.ca } : {}),
      headers: { accept: 'image/*, audio/*;q=0.9, */*;q=0.1', 'accept-encoding': 'identity', 'user-agent': o.userAgent },
    });
    req.once('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => req.destroy(failed(`could not connect within ${o.connectTimeoutMs} ms`)), o.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    req.once('response', resolve);
    req.once('error', (e) =>
      reject(e instanceof AppError ? e : failed(`the URL could not be fetched (${(e as NodeJS.ErrnoException).code ?? e.name})`)),
    );
    req.end();
  });
}

async function readBody(
  res: IncomingMessage,
  url: URL,
  o: UrlFetchOptions,
  started: number,
  write: (chunk: Buffer) => Promise<void>,
  signal: AbortSignal,
): Promise<FetchedBody> {
  const tooLarge = () => new AppError('payload_too_large', `the fetched content is larger than the limit of ${o.maxBytes} bytes`);
  const declared = res.headers['content-length'];
  if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > o.maxBytes) {
    res.destroy();
    throw tooLarge();
  }
  const rawType = res.headers['content-type'];
  const type = rawType ? normalizeMediaType(rawType) : undefined;
  if (type && !GENERIC_TYPES.has(type) && !/^(image|audio)\//.test(type)) {
    res.destroy();
    throw new AppError('unsupported_media_type', `the server sent ${type}, not an image or audio file`);
  }
  let size = 0;
  const rate = { bytesPerSecond: o.minBytesPerSecond, graceMs: o.rateGraceMs };
  const watchdog = watchRate(
    rate,
    () => size,
    () => res.destroy(),
    started,
  );
  try {
    await pumpLimited(nodeChunks(res), { limit: o.maxBytes, tooLarge }, (chunk) => {
      size += chunk.length;
      return write(chunk);
    });
    // A response cut short before its declared length ends without an error on some paths.
    if (!res.complete) throw failed('the server broke off the response');
  } catch (e) {
    res.destroy();
    // Our side could not store the bytes (a full disk): 507 like any upload's, not the server's fault.
    if (isDiskFull(e)) throw e instanceof AppError ? e : diskFull();
    if (watchdog.tripped()) throw failed(`the content arrived slower than ${o.minBytesPerSecond} bytes/s`);
    if (signal.aborted) throw signal.reason;
    throw e instanceof AppError ? e : failed('the server broke off the response');
  } finally {
    watchdog.stop();
  }
  if (watchdog.tripped()) throw failed(`the content arrived slower than ${o.minBytesPerSecond} bytes/s`);
  return { finalUrl: url, contentType: type && !GENERIC_TYPES.has(type) ? type : undefined, byteLength: size };
}
