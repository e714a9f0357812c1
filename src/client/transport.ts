import { ObservdError, isRetryable } from './errors.js';

export interface TransportOptions {
  /** The daemon's root, e.g. `http://127.0.0.1:4000`. */
  baseUrl: string;
  /** Admin or read-only token for control-plane calls. */
  token?: string;
  /** Attempts after the first for retryable failures (default 4). */
  retries?: number;
  /** First backoff; doubles each attempt, with jitter, capped at `maxBackoffMs` (defaults 250 / 10 000). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Per-attempt timeout (default 60 000 ms). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  userAgent?: string;
}

/** How a call may be retried: `safe` (reads, and writes made idempotent by a key) or `never`. */
export type RetryPolicy = 'safe' | 'never';

export interface CallOptions {
  method?: string;
  query?: Record<string, string | number | boolean | undefined | null>;
  json?: unknown;
  /** A body builder, called again for every attempt (a streamed file must be reopened). */
  body?: () => Promise<BodyInit> | BodyInit;
  headers?: Record<string, string>;
  /** Overrides the client token (upload tokens, heartbeat tokens). */
  bearer?: string | null;
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** Full URL instead of baseUrl + path (signed upload URLs). */
  url?: string;
}

/** HTTP with problem+json errors and retries with exponential backoff (honouring Retry-After). */
export class Transport {
  private readonly fetchFn: typeof fetch;

  constructor(readonly opts: TransportOptions) {
    // The global fetch bound to its global: a browser throws "Illegal invocation" when it is called as a method of another object.
    this.fetchFn = opts.fetch ?? fetch.bind(globalThis);
  }

  /** URL of a path on the daemon with a query string (undefined and null values left out). */
  url(path: string, query: CallOptions['query'] = {}): string {
    const u = new URL(path.replace(/^\//, ''), this.opts.baseUrl.replace(/\/?$/, '/'));
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
    return u.toString();
  }

  /** Performs a call; throws ObservdError for a non-2xx answer once retries are used up. */
  async raw(path: string, o: CallOptions = {}): Promise<Response> {
    const method = o.method ?? 'GET';
    const policy: RetryPolicy = o.retry ?? (method === 'GET' || method === 'PUT' || method === 'DELETE' ? 'safe' : 'never');
    const retries = policy === 'safe' ? (this.opts.retries ?? 4) : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const headers = new Headers(o.headers);
        const bearer = o.bearer === undefined ? this.opts.token : o.bearer;
        if (bearer) headers.set('authorization', `Bearer ${bearer}`);
        if (this.opts.userAgent) headers.set('user-agent', this.opts.userAgent);
        let body: BodyInit | undefined;
        if (o.json !== undefined) {
          headers.set('content-type', 'application/json');
          body = JSON.stringify(o.json);
        } else if (o.body) body = await o.body();
        const signals = [AbortSignal.timeout(this.opts.timeoutMs ?? 60_000), ...(o.signal ? [o.signal] : [])];
        let res: Response;
        try {
          res = await this.fetchFn(o.url ?? this.url(path, o.query), {
            method,
            headers,
            body,
            signal: AbortSignal.any(signals),
            ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
          } as RequestInit);
        } catch (e) {
          if (o.signal?.aborted) throw e;
          throw new ObservdError(0, undefined, `request to ${path} failed: ${(e as Error).message}`, undefined, e);
        }
        if (res.ok) return res;
        throw await ObservdError.fromResponse(res);
      } catch (e) {
        if (attempt >= retries || !isRetryable(e) || o.signal?.aborted) throw e;
        const backoff = Math.min(this.opts.maxBackoffMs ?? 10_000, (this.opts.backoffMs ?? 250) * 2 ** attempt);
        const wait = Math.max((e as ObservdError).retryAfterMs ?? 0, backoff * (0.5 + Math.random() / 2));
        await new Promise<void>((r) => {
          // The caller's signal may be long-lived (a watcher's): a listener left behind per retry would pile up.
          const onAbort = () => (clearTimeout(t), r());
          const t = setTimeout(() => (o.signal?.removeEventListener('abort', onAbort), r()), wait);
          o.signal?.addEventListener('abort', onAbort, { once: true });
        });
        if (o.signal?.aborted) throw e;
      }
    }
  }

  /** A call whose answer is JSON (undefined for 204). */
  async json<T>(path: string, o: CallOptions = {}): Promise<T> {
    const res = await this.raw(path, o);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }
}
