// Search: the full-text search API with its filters; hits as thumbnails with the matched words
// marked, linking to the observation.
import { useEffect, useState } from 'preact/hooks';
import { SOURCE_KINDS } from '../../../src/sources/kinds.ts';
import { listPage } from '../api.js';
import { ErrorBox, Loading, Snippet, Thumb, fmtTime, html, link, useAsync } from '../ui.js';

const KINDS = ['', ...SOURCE_KINDS];
const toMs = (v) => (v ? String(new Date(v).getTime()) : '');

export function SearchView({ role, params }) {
  const sources = useAsync((signal) => listPage('/v1/observation-sources', { limit: 1000 }, undefined, signal).then((p) => p.items), []);
  const [form, setForm] = useState({ q: params.q || '', source: params.source || '', kind: params.kind || '', after: '', before: '' });
  const [res, setRes] = useState({ hits: [], next: null, loading: false, error: null, total: null, searched: false });
  const filters = { q: params.q, source_id: params.source, kind: params.kind, after_ms: params.after, before_ms: params.before, limit: 30 };

  const load = async (cursor) => {
    setRes((r) => ({ ...r, loading: true, error: null }));
    try {
      const page = await listPage('/v1/search', filters, cursor);
      setRes((r) => ({
        hits: (cursor ? r.hits : []).concat(page.items),
        next: page.next,
        total: page.total,
        loading: false,
        error: null,
        searched: true,
      }));
    } catch (error) {
      setRes((r) => ({ ...r, loading: false, error, searched: true }));
    }
  };
  useEffect(() => {
    if (params.q) load();
    else setRes({ hits: [], next: null, loading: false, error: null, total: null, searched: false });
  }, [params.q, params.source, params.kind, params.after, params.before]);

  const submit = (e) => {
    e.preventDefault();
    location.hash = link('search', null, {
      q: form.q.trim(),
      source: form.source,
      kind: form.kind,
      after: toMs(form.after),
      before: toMs(form.before),
    });
  };
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  return html`<section aria-label="search">
    <div class="view-head"><h1>Search</h1></div>
    <form class="filters" role="search" onSubmit=${submit}>
      <label class="grow">Words <input type="search" name="q" aria-label="search words" value=${form.q} onInput=${set('q')} placeholder='words, "a phrase", prefix*, -excluded' autofocus /></label>
      <label>Source <select aria-label="source" value=${form.source} onChange=${set('source')}>
        <option value="">All</option>${(sources.data || []).map((s) => html`<option value=${s.source_id}>${s.display_name}</option>`)}</select></label>
      <label>Kind <select aria-label="kind" value=${form.kind} onChange=${set('kind')}>${KINDS.map((k) => html`<option value=${k}>${k || 'Any'}</option>`)}</select></label>
      <label>From <input type="datetime-local" aria-label="from" value=${form.after} onInput=${set('after')} /></label>
      <label>To <input type="datetime-local" aria-label="to" value=${form.before} onInput=${set('before')} /></label>
      <button type="submit">Search</button>
    </form>
    <${ErrorBox} error=${res.error} retry=${() => load()} />
    ${res.loading && !res.hits.length ? html`<${Loading} label="Searching…" />` : null}
    ${res.searched && !res.loading && !res.error && !res.hits.length ? html`<p class="empty">No matches.</p>` : null}
    ${res.total !== null && res.total !== undefined ? html`<p class="muted">${res.total} matches</p>` : null}
    <ol class="hits">
      ${res.hits.map((hit) => {
        const o = hit.observation;
        return html`<li class="hit" data-id=${o.observation_id}>
          <a href=${link('observations', o.observation_id)} class="hit-link">
            <${Thumb} obs=${o} role=${role} />
            <div>
              <${Snippet} text=${hit.snippet} />
              <p class="muted">${o.source_id}${o.stream_id ? ` · ${o.stream_id}` : ''} · ${fmtTime(o.captured_at_ms)}${typeof hit.score === 'number' ? ` · score ${hit.score.toFixed(3)}` : ''}</p>
            </div>
          </a>
        </li>`;
      })}
    </ol>
    ${res.next ? html`<button type="button" onClick=${() => load(res.next)} disabled=${res.loading}>${res.loading ? 'Loading…' : 'More results'}</button>` : null}
  </section>`;
}
