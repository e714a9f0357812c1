// Shared pieces of the console: the htm binding, request state hooks, formatting, small widgets.
import { h } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { previewUrl } from './api.js';

export const html = htm.bind(h);

/**
 * Runs `fn(signal)` whenever `deps` change; returns `{loading, error, data, reload, set}`.
 * Every request in the console shows its loading and error state through this.
 */
export function useAsync(fn, deps) {
  const [state, setState] = useState({ loading: true, error: null, data: undefined });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const ctrl = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    fn(ctrl.signal).then(
      (data) => !ctrl.signal.aborted && setState({ loading: false, error: null, data }),
      (error) => !ctrl.signal.aborted && error?.name !== 'AbortError' && setState({ loading: false, error, data: undefined }),
    );
    return () => ctrl.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  const set = useCallback((data) => setState({ loading: false, error: null, data }), []);
  return { ...state, reload, set };
}

/** A write action's state: `run(fn)` shows busy, then the error (problem detail) or nothing. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (err) {
      setError(err);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(null) };
}

export function Loading({ label = 'Loading…' }) {
  return html`<p class="loading" role="status"><span class="spinner" aria-hidden="true"></span>${label}</p>`;
}

export function ErrorBox({ error, retry }) {
  if (!error) return null;
  const p = error.problem;
  return html`<div class="error" role="alert">
    <strong>${p?.title || 'Request failed'}</strong>${p?.status ? html` <span class="muted">(${p.status} ${p.code})</span>` : null}
    <div>${error.message}</div>
    ${p?.errors?.length ? html`<ul>${p.errors.map((e) => html`<li><code>${e.path}</code>: ${e.message}</li>`)}</ul>` : null}
    ${retry ? html`<button type="button" onClick=${retry}>Retry</button>` : null}
  </div>`;
}

export const fmtTime = (ms) => (ms === null || ms === undefined ? '—' : new Date(ms).toLocaleString());
export const fmtAgo = (ms, now = Date.now()) => {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.round((now - ms) / 1000);
  if (s < -5) return `in ${fmtDuration(-s * 1000)}`;
  if (s < 5) return 'just now';
  return `${fmtDuration(s * 1000)} ago`;
};
export function fmtDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.round(s / 60)}m`;
  if (s < 86400) return `${Math.round(s / 360) / 10}h`;
  return `${Math.round(s / 8640) / 10}d`;
}
export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

/** A usage bar: `value` of `max`, turning amber then red as it fills. */
export function Bar({ value, max, label }) {
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  const cls = ratio >= 0.95 ? 'bar full' : ratio >= 0.8 ? 'bar high' : 'bar';
  return html`<div class=${cls} role="meter" aria-valuemin="0" aria-valuemax=${max} aria-valuenow=${value} aria-label=${label} title=${label}>
    <div class="fill" style=${{ width: `${(ratio * 100).toFixed(1)}%` }}></div>
  </div>`;
}

export const isSensitive = (s) => s === 'sensitive' || s === 'restricted';

/** Whether raw media (and previews, derived from it) of an observation may be shown to this role. */
export const mediaVisible = (obs, role) => role === 'admin' || !isSensitive(obs.sensitivity);

/**
 * An observation's thumbnail: loaded only once it scrolls into view (the preview derivation,
 * fetched as a blob), never the full image.
 */
export function Thumb({ obs, role }) {
  const ref = useRef(null);
  const [src, setSrc] = useState(null);
  const [state, setState] = useState('idle');
  const [problem, setProblem] = useState('');
  useEffect(() => {
    if (!mediaVisible(obs, role)) {
      setState('hidden');
      return;
    }
    if (obs.retention_state === 'purged') {
      setState('purged');
      return;
    }
    // Requested while the tile is near the viewport; a tile scrolled past before its turn in the
    // queue gives its place up (and asks again if it comes back).
    let attempt = null;
    let done = false;
    const io = new IntersectionObserver(
      (entries) => {
        if (done) return;
        const visible = entries[entries.length - 1].isIntersecting;
        if (visible && !attempt) {
          const ctrl = (attempt = new AbortController());
          setState('loading');
          previewUrl(obs, role, ctrl.signal).then(
            (url) => {
              if (ctrl.signal.aborted) return;
              done = true;
              io.disconnect();
              setSrc(url);
              setState(url ? 'ready' : 'none');
            },
            (err) => {
              if (ctrl.signal.aborted) return;
              done = true;
              io.disconnect();
              setProblem(err?.message || '');
              setState('error');
            },
          );
        } else if (!visible && attempt) {
          attempt.abort();
          attempt = null;
          setState('idle');
        }
      },
      { rootMargin: '200px' },
    );
    io.observe(ref.current);
    return () => {
      io.disconnect();
      attempt?.abort();
    };
  }, [obs.asset_id, role]);
  const label = {
    hidden: 'sensitive: admin only',
    purged: 'purged',
    none: 'no preview yet',
    error: problem ? `preview failed: ${problem}` : 'preview failed',
    loading: '',
    idle: '',
  }[state];
  return html`<div class=${`thumb ${obs.kind === 'microphone_segment' ? 'audio' : ''}`} ref=${ref} data-state=${state} title=${problem || undefined}>
    ${src ? html`<img src=${src} alt=${`preview of ${obs.file_name}`} decoding="async" onLoad=${() => performance.mark('observd:thumb')} />` : html`<span class="thumb-note">${label}</span>`}
  </div>`;
}

/** A dialog asking to type a word before a destructive action. */
export function TypedConfirm({ word, action, onConfirm, onCancel, busy }) {
  const [typed, setTyped] = useState('');
  return html`<div class="confirm" role="dialog" aria-label=${`confirm ${action}`}>
    <p>This cannot be undone. Type <code>${word}</code> to ${action}.</p>
    <input aria-label="confirmation" value=${typed} onInput=${(e) => setTyped(e.currentTarget.value)} autofocus />
    <button type="button" class="danger" disabled=${typed !== word || busy} onClick=${onConfirm}>${busy ? 'Working…' : action}</button>
    <button type="button" onClick=${onCancel}>Cancel</button>
  </div>`;
}

/**
 * Renders a search snippet with its matches as <mark>, never as HTML. The daemon marks a match
 * only as «…» (MARK_OPEN/MARK_CLOSE in src/search/service.ts); anything else is the text itself.
 */
export function Snippet({ text }) {
  if (!text) return null;
  const parts = [];
  const re = /«([\s\S]*?)»/g;
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) parts.push(text.slice(last, m.index));
    parts.push(html`<mark>${m[1]}</mark>`);
    last = re.lastIndex;
  }
  if (last < text.length) parts.push(text.slice(last));
  return html`<p class="snippet">${parts}</p>`;
}

/** Builds a hash link: `link('timeline', null, {source: 'x'})`. */
export function link(name, id, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `#/${name}${id ? `/${encodeURIComponent(id)}` : ''}${s ? `?${s}` : ''}`;
}
