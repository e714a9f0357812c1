import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';

export interface BrowserGuardOptions {
  /** Host names (`name` matches any port, `name:port` only that port) served besides loopback names. */
  allowedHosts: string[];
  /** Origins (`scheme://host[:port]`) whose pages may change state and get CORS answers. */
  allowedOrigins: string[];
  /**
   * Paths whose routes admit body types themselves: raw bytes (signed upload PUTs), or the
   * upload-token routes, whose admission authenticates first and audits the refusal.
   */
  ownBodyAdmission: (path: string) => boolean;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CORS_HEADERS = 'authorization, content-type, idempotency-key, last-event-id';
const CORS_METHODS = 'GET, HEAD, POST, PATCH, PUT, DELETE';

/**
 * Keeps web pages from driving the daemon, before any route runs (so it covers every route,
 * present and future):
 * - a `Host` that is neither a loopback name with the port the connection arrived on, the
 *   local IP address itself, nor an allowed host is refused (misdirected_request): a
 *   DNS-rebinding page cannot read anything;
 * - a state-changing request whose `Origin` is not the daemon's own origin or an allowed one,
 *   or whose `Sec-Fetch-Site` says cross-site, is refused (forbidden);
 * - a body must be JSON or multipart (unsupported_media_type), so a cross-site "simple request"
 *   (`text/plain`, form-urlencoded) is never parsed (routes with their own body admission, such
 *   as `uploadAdmission`, refuse other types themselves);
 * - CORS headers are sent only to allowed origins, never `*`.
 * Clients that send no `Origin` and no `Sec-Fetch-Site` (curl, SDKs, capture agents) pass.
 */
export function browserGuard(opts: BrowserGuardOptions): MiddlewareHandler {
  const hosts = opts.allowedHosts.map((h) => parseHost(h.toLowerCase())).filter((h) => h !== undefined);
  const origins = new Set(opts.allowedOrigins.map((o) => o.toLowerCase().replace(/\/+$/, '')));

  return async (c, next) => {
    const socket = (c.env as { incoming?: { socket?: { localPort?: number; localAddress?: string } } } | undefined)?.incoming?.socket;
    // A request built in process (`app.request`, MCP's calls to the API) may carry no Host header:
    // its URL's host is the one it was addressed to (Node's parser requires Host of HTTP/1.1 clients).
    const hostHeader = (c.req.header('host') ?? new URL(c.req.url).host).toLowerCase();
    const host = parseHost(hostHeader);
    if (!host || !hostAllowed(host, hosts, socket?.localPort, socket?.localAddress)) {
      throw new AppError('misdirected_request', `this daemon does not serve the host ${JSON.stringify(hostHeader)}`);
    }

    const rawOrigin = c.req.header('origin');
    const origin = rawOrigin?.toLowerCase();
    const listed = rawOrigin !== undefined && origins.has(rawOrigin.toLowerCase());
    if (c.req.method === 'OPTIONS') {
      // A CORS preflight: answered for allowed origins only; anything else gets no CORS headers.
      if (!listed) throw new AppError('forbidden', 'cross-origin requests are not allowed from this origin');
      return c.body(null, 204, {
        'access-control-allow-origin': rawOrigin,
        'access-control-allow-methods': CORS_METHODS,
        'access-control-allow-headers': CORS_HEADERS,
        'access-control-max-age': '600',
        vary: 'Origin',
      });
    }

    if (!SAFE_METHODS.has(c.req.method)) {
      // Our own origin is the Host the request came to (over TLS when a proxy terminates it).
      const own = origin === `http://${hostHeader}` || origin === `https://${hostHeader}`;
      const site = c.req.header('sec-fetch-site')?.toLowerCase();
      if (!listed && origin !== undefined && !own) {
        throw new AppError('forbidden', `state-changing requests from the origin ${JSON.stringify(origin)} are not allowed`);
      }
      if (!listed && site !== undefined && site !== 'same-origin' && site !== 'none') {
        throw new AppError('forbidden', `state-changing ${site} requests are not allowed`);
      }
      if (hasBody(c.req.raw) && !opts.ownBodyAdmission(c.req.path)) {
        const type = (c.req.header('content-type') ?? '').toLowerCase();
        if (!isJsonType(type) && !type.trim().startsWith('multipart/form-data')) {
          throw new AppError(
            'unsupported_media_type',
            'send the body as application/json (or multipart/form-data where a route takes files)',
          );
        }
      }
    }

    await next();
    if (listed) {
      c.res.headers.set('access-control-allow-origin', rawOrigin);
      c.res.headers.append('vary', 'Origin');
    }
  };
}

/** True for a JSON media type (`application/json…` or `application/*+json…`), as the upload routes take it. */
export function isJsonType(type: string): boolean {
  const t = type.trim().toLowerCase();
  return t.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(t);
}

/** True when a request carries a body (a non-zero Content-Length or any Transfer-Encoding). */
function hasBody(req: Request): boolean {
  const len = req.headers.get('content-length');
  return (len !== null && len !== '0') || req.headers.has('transfer-encoding');
}

interface HostName {
  name: string;
  port?: number;
}

/** `name[:port]` or `[v6][:port]`; undefined when malformed. */
export function parseHost(value: string): HostName | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  return { name: m[1], port: m[2] === undefined ? undefined : Number(m[2]) };
}

/** `localhost`, any 127.x.x.x, `[::1]`. */
export function isLoopbackName(name: string): boolean {
  return name === 'localhost' || /^127(?:\.\d{1,3}){3}$/.test(name) || name === '[::1]';
}

function hostAllowed(host: HostName, allowed: HostName[], localPort?: number, localAddress?: string): boolean {
  if (allowed.some((a) => a.name === host.name && (a.port === undefined || a.port === (host.port ?? 80)))) return true;
  // The port the browser connected to is in Host; it must be ours (80 when omitted).
  const portOk = localPort === undefined || (host.port ?? 80) === localPort;
  if (!portOk) return false;
  if (isLoopbackName(host.name)) return true;
  // An IP literal equal to the address the connection arrived on is the daemon itself, not a
  // rebound name (a non-loopback bind, which needs an admin token).
  if (localAddress === undefined) return false;
  const local = localAddress.replace(/^::ffff:/, '');
  return host.name === local || host.name === `[${local}]`;
}
