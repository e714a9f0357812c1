// Timeline: a source's (or stream's) observations newest first, as thumbnails; infinite scroll on
// the list cursor, live updates from the event stream, a time-range picker, keyboard navigation.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, followEvents, listPage } from '../api.js';
import { ErrorBox, Loading, Thumb, fmtTime, html, link, useAsync } from '../ui.js';

const PAGE = 60;
const PRESETS = [
  ['', 'All time'],
  ['900000', 'Last 15 minutes'],
  ['3600000', 'Last hour'],
  ['86400000', 'Last 24 hours'],
  ['604800000', 'Last 7 days'],
];

const toLocalInput = (ms) => {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const fromLocalInput = (v) => (v ? String(new Date(v).getTime()) : '');

function go(params) {
  location.hash = link('timeline', null, params);
}

function Filters({ params, sources, streams }) {
  const [after, setAfter] = useState(toLocalInput(params.after));
  const [before, setBefore] = useState(toLocalInput(params.before));
  const [stream, setStream] = useState(params.stream || '');
  useEffect(() => {
    setAfter(toLocalInput(params.after));
    setBefore(toLocalInput(params.before));
    setStream(params.stream || '');
  }, [params.after, params.before, params.stream]);
  const apply = (e) => {
    e.preventDefault();
    go({ ...params, stream: params.source ? stream : '', after: fromLocalInput(after), before: fromLocalInput(before) });
  };
  return html`<form class="filters" onSubmit=${apply} aria-label="timeline filters">
    <label>Source <select aria-label="source" value=${params.source || ''} onChange=${(e) => go({ ...params, source: e.currentTarget.value, stream: '' })}>
      <option value="">All sources</option>
      ${(sources || []).map((s) => html`<option value=${s.source_id}>${s.display_name} (${s.source_id})</option>`)}
      ${params.source && !(sources || []).some((s) => s.source_id === params.source) ? html`<option value=${params.source}>${params.source}</option>` : null}
    </select></label>
    <datalist id="timeline-streams">${streams.map((x) => html`<option value=${x} />`)}</datalist>
    <label>Stream <input aria-label="stream" list="timeline-streams" value=${stream} disabled=${!params.source} placeholder=${params.source ? 'any' : 'pick a source'} onInput=${(e) => setStream(e.currentTarget.value)} /></label>
    <label>Range <select aria-label="time range preset" onChange=${(e) => {
      const span = e.currentTarget.value;
      go({ ...params, after: span ? String(Date.now() - Number(span)) : '', before: '' });
    }}>${PRESETS.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select></label>
    <label>From <input type="datetime-local" aria-label="from" value=${after} onInput=${(e) => setAfter(e.currentTarget.value)} /></label>
    <label>To <input type="datetime-local" aria-label="to" value=${before} onInput=${(e) => setBefore(e.currentTarget.value)} /></label>
    <button type="submit">Apply</button>
  </form>`;
}

function matches(obs, params) {
  if (params.source && obs.source_id !== params.source) return false;
  if (params.stream && obs.stream_id !== params.stream) return false;
  if (params.after && obs.captured_at_ms < Number(params.after)) return false;
  if (params.before && obs.captured_at_ms > Number(params.before)) return false;
  return true;
}

export function TimelineView({ role, params }) {
  const sources = useAsync((signal) => listPage('/v1/observation-sources', { limit: 1000 }, undefined, signal).then((p) => p.items), []);
  const [state, setState] = useState({ items: [], next: null, total: null, loading: true, error: null, done: false });
  const [live, setLive] = useState('connecting');
  const [focus, setFocus] = useState(0);
  const gridRef = useRef(null);
  const sentinel = useRef(null);
  const loadingRef = useRef(false);
  const query = {
    source_id: params.source,
    stream_id: params.source ? params.stream : undefined,
    after_ms: params.after,
    before_ms: params.before,
    order: 'desc',
    limit: PAGE,
  };
  const key = JSON.stringify(query);

  const loadMore = async (cursor, signal, reset) => {
    loadingRef.current = true;
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const page = await listPage('/v1/observations', query, cursor, signal);
      setState((s) => {
        const base = reset ? [] : s.items;
        const seen = new Set(base.map((o) => o.observation_id));
        return {
          items: base.concat(page.items.filter((o) => !seen.has(o.observation_id))),
          next: page.next,
          total: page.total ?? s.total,
          loading: false,
          error: null,
          done: !page.next,
        };
      });
      if (reset) {
        // The figure the browser test reports: from navigation to the first page on screen.
        requestAnimationFrame(() => performance.mark('observd:timeline-first-page'));
      }
    } catch (error) {
      if (error?.name !== 'AbortError') setState((s) => ({ ...s, loading: false, error }));
    } finally {
      loadingRef.current = false;
    }
  };

  // First page whenever the filters change.
  useEffect(() => {
    const ctrl = new AbortController();
    setState({ items: [], next: null, total: null, loading: true, error: null, done: false });
    setFocus(0);
    loadMore(undefined, ctrl.signal, true);
    return () => ctrl.abort();
  }, [key]);

  // Infinite scroll: the next page when the sentinel under the grid comes into view.
  useEffect(() => {
    const el = sentinel.current;
    if (!el) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting) && !loadingRef.current && state.next) loadMore(state.next);
      },
      { rootMargin: '600px' },
    );
    io.observe(el);
    return () => io.disconnect();
  }, [state.next, key]);

  // Live updates: new observations go on top as they arrive.
  useEffect(() => {
    const stop = followEvents(
      { types: 'observation.created,observation.deleted,observation.purged', source_id: params.source },
      async (type, ev) => {
        const id = ev.data?.observation_id;
        if (!id) return;
        if (type === 'observation.created') {
          if (!matches({ ...ev.data, source_id: ev.source_id ?? ev.data.source_id }, params)) return;
          try {
            const obs = await api('GET', `/v1/observations/${encodeURIComponent(id)}`);
            setState((s) =>
              s.items.some((o) => o.observation_id === id)
                ? s
                : {
                    ...s,
                    items: [{ ...obs, _live: true }, ...s.items].sort(
                      (a, b) => b.captured_at_ms - a.captured_at_ms || (a.observation_id < b.observation_id ? 1 : -1),
                    ),
                    total: s.total === null ? null : s.total + 1,
                  },
            );
          } catch {
            /* deleted again before we read it */
          }
        } else {
          setState((s) => ({
            ...s,
            items: s.items.filter((o) => o.observation_id !== id),
            total: s.total === null ? null : Math.max(0, s.total - 1),
          }));
        }
      },
      (st) => setLive(st),
    );
    return stop;
  }, [params.source, params.stream, params.after, params.before]);

  const onKey = (e) => {
    const tiles = gridRef.current?.querySelectorAll('.tile');
    if (!tiles?.length) return;
    const firstTop = tiles[0].offsetTop;
    let cols = 0;
    while (cols < tiles.length && tiles[cols].offsetTop === firstTop) cols++;
    const moves = {
      ArrowRight: 1,
      l: 1,
      ArrowLeft: -1,
      h: -1,
      ArrowDown: cols,
      j: cols,
      ArrowUp: -cols,
      k: -cols,
      PageDown: cols * 4,
      PageUp: -cols * 4,
    };
    let next = focus;
    if (e.key in moves) next = focus + moves[e.key];
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = tiles.length - 1;
    else return;
    e.preventDefault();
    next = Math.max(0, Math.min(tiles.length - 1, next));
    setFocus(next);
    tiles[next].focus();
    tiles[next].scrollIntoView({ block: 'nearest' });
  };

  const source = (sources.data || []).find((s) => s.source_id === params.source);
  return html`<section aria-label="timeline">
    <div class="view-head">
      <h1>Timeline${source ? html`: ${source.display_name}` : ''}</h1>
      <span class=${`live ${live}`} role="status" data-testid="live">${live === 'live' ? '● live' : live === 'reconnecting' ? 'reconnecting…' : 'connecting…'}</span>
      ${state.total !== null ? html`<span class="muted" data-testid="total">${state.total} observations</span>` : null}
    </div>
    <${Filters} params=${params} sources=${sources.data} streams=${[
      ...new Set(
        state.items
          .slice(0, 600)
          .map((o) => o.stream_id)
          .filter(Boolean),
      ),
    ].slice(0, 50)} />
    ${sources.error ? html`<${ErrorBox} error=${sources.error} />` : null}
    <p class="hint muted">Arrow keys (or h j k l) move, Enter opens, Home/End jump.</p>
    <div class="grid" ref=${gridRef} role="list" onKeyDown=${onKey} aria-label="observations, newest first">
      ${state.items.map(
        (
          o,
          i,
        ) => html`<a key=${o.observation_id} role="listitem" class=${`tile${o._live ? ' new' : ''}`} href=${link('observations', o.observation_id)}
            data-id=${o.observation_id} tabindex=${i === focus ? 0 : -1} onFocus=${() => setFocus(i)}>
          <${Thumb} obs=${o} role=${role} />
          <span class="tile-meta"><time>${fmtTime(o.captured_at_ms)}</time>
            ${o.stream_id ? html`<span class="muted">${o.stream_id}${o.seq_no !== null && o.seq_no !== undefined ? ` #${o.seq_no}` : ''}</span>` : null}
            ${!params.source ? html`<span class="muted">${o.source_id}</span>` : null}
          </span>
        </a>`,
      )}
    </div>
    ${state.error ? html`<${ErrorBox} error=${state.error} retry=${() => loadMore(state.next || undefined, undefined, !state.items.length)} />` : null}
    ${state.loading ? html`<${Loading} label=${state.items.length ? 'Loading more…' : 'Loading observations…'} />` : null}
    ${!state.loading && !state.error && !state.items.length ? html`<p class="empty">No observations${params.after || params.before ? ' in this time range' : ''}.</p>` : null}
    ${state.done && state.items.length ? html`<p class="muted end">End of the timeline.</p>` : null}
    <div ref=${sentinel} class="sentinel" aria-hidden="true"></div>
  </section>`;
}
