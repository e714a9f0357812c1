/**
 * The daemon's REST API as the MCP tools see it: a fetch-like function plus the caller's bearer.
 * Both transports use it, so the tools enforce exactly the API's auth, validation and
 * read-permission rules: in the daemon it calls the app in process, under `observd mcp` it calls
 * a running daemon over HTTP.
 */
export type ApiFetch = (path: string, init: RequestInit) => Promise<Response>;

/** A non-2xx answer of the API, carrying its problem+json `code` and `detail`. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

export interface DaemonApi {
  /** JSON request; resolves to the parsed body; ApiProblem on a non-2xx answer. */
  json<T>(method: string, path: string, opts?: { query?: Record<string, string | number | undefined>; body?: unknown }): Promise<T>;
  /** Raw bytes of a GET (asset content); ApiProblem on a non-2xx answer. */
  bytes(path: string): Promise<{ bytes: Buffer; mediaType: string }>;
}

/** Wraps a fetch-like function and the caller's bearer token (if any) into the API the tools call. */
export function daemonApi(fetchFn: ApiFetch, token: string | undefined): DaemonApi {
  const headers = (extra: Record<string, string> = {}) => ({ ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra });
  const send = async (method: string, path: string, init: RequestInit) => {
    const res = await fetchFn(path, { method, ...init });
    if (!res.ok) throw await toProblem(res);
    return res;
  };
  return {
    async json(method, path, opts = {}) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) qs.set(k, String(v));
      const target = qs.size ? `${path}?${qs}` : path;
      const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
      const res = await send(method, target, {
        headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body,
      });
      return (res.status === 204 ? null : await res.json()) as never;
    },
    async bytes(path) {
      const res = await send('GET', path, { headers: headers() });
      return { bytes: Buffer.from(await res.arrayBuffer()), mediaType: res.headers.get('content-type') ?? 'application/octet-stream' };
    },
  };
}

async function toProblem(res: Response): Promise<ApiProblem> {
  const text = await res.text();
  try {
    const p = JSON.parse(text) as { code?: string; detail?: string };
    return new ApiProblem(res.status, p.code ?? `http_${res.status}`, p.detail ?? text);
  } catch {
    return new ApiProblem(res.status, `http_${res.status}`, text.slice(0, 500));
  }
}

/** The items of a list answer, whether a bare array or a paged envelope. */
export function listItems<T>(body: unknown): T[] {
  if (Array.isArray(body)) return body as T[];
  const b = body as { items?: T[]; data?: T[] };
  return b.items ?? b.data ?? [];
}
