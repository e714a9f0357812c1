// The console's only door to the daemon: same-origin requests (through the typed client) with the bearer token from
// sessionStorage (never in a URL), JSON bodies with a JSON content type, problem+json errors
// turned into ApiError, one adapter for both list shapes, media as blob: URLs, and the event
// stream read with fetch() (EventSource cannot send an Authorization header).

import { ObservdError, createClient } from '../../src/client/index.ts';

const TOKEN_KEY = 'observd.console.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** A failed request: the problem+json detail when the daemon sent one. */
export class ApiError extends Error {
  constructor(status, problem, fallback) {
    super(problem?.detail || problem?.title || fallback || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || (status === 0 ? 'network' : `http_${status}`);
    this.problem = problem || null;
  }
}

function headers(extra) {
  const h = new Headers(extra);
  const token = getToken();
  if (token) h.set('authorization', `Bearer ${token}`);
  return h;
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// Requests go through the typed client (`observd/client`) with retries off: the console shows
// a failure to the user instead of repeating a write behind their back.
let client = null;
let clientToken = null;
function transport() {
  const token = getToken();
  if (!client || clientToken !== token) {
    // fetch is passed bound: a browser refuses `window.fetch` called as another object's method.
    client = createClient({ baseUrl: location.origin, token: token || undefined, retries: 0, fetch: (input, init) => fetch(input, init) });
    clientToken = token;
  }
  return client.http;
}

async function send(method, path, body, signal) {
  try {
    return await transport().raw(path, {
      method,
      signal,
      retry: 'never',
      headers: { accept: 'application/json, application/problem+json' },
      ...(body !== undefined ? { json: body } : {}),
    });
  } catch (err) {
    if (err?.name === 'AbortError' || signal?.aborted) throw err;
    if (!(err instanceof ObservdError)) throw err;
    if (err.status === 0) throw new ApiError(0, null, `the daemon cannot be reached (${err.message})`);
    // A token that stopped working (changed or revoked config): back to the sign-in form.
    if (err.status === 401 && getToken()) dispatchEvent(new CustomEvent('observd:unauthorized'));
    throw new ApiError(err.status, err.problem ?? null, `${method} ${path.split('?')[0]} answered ${err.status}`);
  }
}

/** GET/POST/PATCH/DELETE a JSON route; resolves with the parsed body (null for 204). */
export async function api(method, path, body, signal) {
  const res = await send(method, path, body, signal);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/**
 * One page of a list in either shape the daemon may answer: a bare array (the list convention)
 * or `{items, pagination: {next_cursor, has_more, total_count}}` (`page=true` / `cursor`).
 */
export function pageOf(body) {
  if (Array.isArray(body)) return { items: body, next: null, total: null };
  if (body && Array.isArray(body.items)) {
    const p = body.pagination || {};
    return { items: body.items, next: p.has_more === false ? null : p.next_cursor || null, total: p.total_count ?? null };
  }
  throw new ApiError(200, null, 'the daemon answered a list in an unknown shape');
}

/** Fetches one page of a list route; `cursor` continues a previous page. */
export async function listPage(path, params = {}, cursor, signal) {
  const q = { ...params, ...(cursor ? { cursor } : { page: 'true' }) };
  return pageOf(await api('GET', path + qs(q), undefined, signal));
}

/** Who the console talks as: `admin`, `readonly`, or throws unauthorized for a bad token. */
export async function detectRole() {
  // A write with an empty body: the read-only token is refused (403) by auth before the body is
  // read; the admin token gets past auth and the empty body is refused (400). Nothing changes.
  // Sent beside a plain read, which tells a bad token (401) from an unreachable daemon.
  const probe = api('POST', '/v1/derivations', {}).then(
    () => 'admin',
    (err) => (err.status === 403 ? 'readonly' : err.status === 401 ? Promise.reject(err) : 'admin'),
  );
  const [, role] = await Promise.all([api('GET', `/v1/observation-sources${qs({ limit: 1 })}`), probe]);
  return role;
}

// ---- media as blob: URLs (a token never goes into a URL, so <img src> cannot carry it) ----

const blobCache = new Map();
const BLOB_CACHE_MAX = 400;

/** A blob: URL of an asset's bytes, cached by asset id (assets are content-addressed, so immutable). */
export async function assetUrl(assetId, signal) {
  const hit = blobCache.get(assetId);
  if (hit) {
    blobCache.delete(assetId);
    blobCache.set(assetId, hit);
    return hit;
  }
  const res = await send('GET', `/v1/assets/${encodeURIComponent(assetId)}/content`, undefined, signal);
  const url = URL.createObjectURL(await res.blob());
  blobCache.set(assetId, url);
  if (blobCache.size > BLOB_CACHE_MAX) {
    const [oldId, oldUrl] = blobCache.entries().next().value;
    blobCache.delete(oldId);
    URL.revokeObjectURL(oldUrl);
  }
  return url;
}

/** An asset's bytes as text (canonical text, transcripts). */
export async function assetText(assetId, signal) {
  const res = await send('GET', `/v1/assets/${encodeURIComponent(assetId)}/content`, undefined, signal);
  return res.text();
}

// ---- thumbnails: the visual_preview derivation of an observation's asset ----

const previewIds = new Map();
const queue = [];
let active = 0;
const MAX_PARALLEL = 4;

function runQueue() {
  while (active < MAX_PARALLEL && queue.length) {
    const job = queue.shift();
    if (job.signal?.aborted) {
      job.reject(new DOMException('aborted', 'AbortError'));
      continue;
    }
    active++;
    job
      .fn()
      .then(job.resolve, job.reject)
      .finally(() => {
        active--;
        runQueue();
      });
  }
}

/** Runs `fn` with at most a few others at once, so a long timeline does not flood the daemon. */
function limited(fn, signal) {
  return new Promise((resolve, reject) => {
    queue.push({ fn, resolve, reject, signal });
    runQueue();
  });
}

/**
 * The blob: URL of an observation's preview. An admin asks for the derivation (cached by the
 * daemon, computed on first use); a read-only caller can only find one that already exists.
 */
export function previewUrl(obs, role, signal) {
  return limited(async () => {
    let resultId = previewIds.get(obs.asset_id);
    if (!resultId) {
      if (role === 'admin') {
        const view = await api(
          'POST',
          '/v1/derivations',
          { profile: 'visual_preview', subject: { type: 'asset', asset_id: obs.asset_id } },
          signal,
        );
        if (view.status === 'failed') throw new ApiError(200, null, view.error || 'preview failed');
        resultId = view.result_asset_id;
      } else {
        // Asked for either of the asset or of the observation: look for both.
        for (const query of [obs.asset_id, obs.observation_id]) {
          if (resultId || !query) continue;
          const page = await listPage('/v1/derivations', { profile: 'visual_preview', query, limit: 5 }, undefined, signal);
          resultId = page.items.find((d) => d.status === 'completed' && d.result_asset_id)?.result_asset_id;
        }
      }
      if (!resultId) return null;
      previewIds.set(obs.asset_id, resultId);
    }
    return assetUrl(resultId, signal);
  }, signal);
}

// ---- Server-Sent Events over fetch() ----

/**
 * Follows `/v1/events` with fetch() so the bearer header goes along; reconnects with
 * Last-Event-ID after a drop. Returns a function that stops it.
 */
export function followEvents(params, onEvent, onState = () => {}) {
  const ctrl = new AbortController();
  let lastId = null;
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      try {
        const h = headers({ accept: 'text/event-stream' });
        if (lastId) h.set('last-event-id', lastId);
        const res = await fetch(`/v1/events${qs(params)}`, { headers: h, signal: ctrl.signal });
        if (!res.ok || !res.body) throw new ApiError(res.status, await res.json().catch(() => null));
        onState('live');
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let cut;
          while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(buf.slice(cut).match(/^\r?\n\r?\n/)[0].length + cut);
            const ev = { type: 'message', data: '' };
            const data = [];
            for (const line of block.split(/\r?\n/)) {
              if (!line || line.startsWith(':')) continue;
              const i = line.indexOf(':');
              const field = i < 0 ? line : line.slice(0, i);
              const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
              if (field === 'event') ev.type = val;
              else if (field === 'data') data.push(val);
              else if (field === 'id') ev.id = val;
            }
            if (!data.length) continue;
            if (ev.id) lastId = ev.id;
            try {
              onEvent(ev.type, JSON.parse(data.join('\n')));
            } catch {
              /* a malformed event is skipped */
            }
          }
        }
      } catch (err) {
        if (stopped || err?.name === 'AbortError') return;
        onState('reconnecting', err);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 2000));
    }
  };
  loop();
  return () => {
    stopped = true;
    ctrl.abort();
  };
}
