// Audit: the trail, newest first, filtered by source and event.
import { useState } from 'preact/hooks';
import { AUDIT_EVENTS } from '../../../src/audit/events.ts';
import { listPage } from '../api.js';
import { ErrorBox, Loading, fmtTime, html, link, useAsync } from '../ui.js';

const SKIP = new Set(['audit_id', 'at_ms', 'recorded_at_ms', 'event', 'source_id', 'observation_id']);

function details(rec) {
  const rest = Object.entries(rec).filter(([k, v]) => !SKIP.has(k) && v !== null && v !== undefined);
  const flat = [];
  for (const [k, v] of rest) {
    if (k === 'detail' && v && typeof v === 'object') for (const [dk, dv] of Object.entries(v)) flat.push([dk, dv]);
    else flat.push([k, v]);
  }
  return flat.map(
    ([k, v]) => html`<span class="kv"><span class="muted">${k}</span> ${typeof v === 'object' ? JSON.stringify(v) : String(v)}</span>`,
  );
}

export function AuditView({ params }) {
  const [form, setForm] = useState({ source: params.source || '', event: params.event || '' });
  const filters = { source_id: params.source, event: params.event, limit: 100 };
  const [extra, setExtra] = useState({ items: [], next: undefined });
  const first = useAsync(
    (signal) => {
      setExtra({ items: [], next: undefined });
      return listPage('/v1/observation-audit', filters, undefined, signal);
    },
    [params.source, params.event],
  );
  const [more, setMore] = useState({ loading: false, error: null });
  const next = extra.next === undefined ? first.data?.next : extra.next;
  const items = (first.data?.items || []).concat(extra.items);
  const loadMore = async () => {
    setMore({ loading: true, error: null });
    try {
      const page = await listPage('/v1/observation-audit', filters, next);
      setExtra((e) => ({ items: e.items.concat(page.items), next: page.next }));
      setMore({ loading: false, error: null });
    } catch (error) {
      setMore({ loading: false, error });
    }
  };
  const submit = (e) => {
    e.preventDefault();
    location.hash = link('audit', null, { source: form.source.trim(), event: form.event.trim() });
  };
  return html`<section aria-label="audit">
    <div class="view-head"><h1>Audit</h1></div>
    <form class="filters" onSubmit=${submit}>
      <label>Source id <input aria-label="source id" value=${form.source} onInput=${(e) => setForm({ ...form, source: e.currentTarget.value })} /></label>
      <label>Event <input aria-label="event" list="audit-events" value=${form.event} onInput=${(e) => setForm({ ...form, event: e.currentTarget.value })} /></label>
      <datalist id="audit-events">${AUDIT_EVENTS.map((ev) => html`<option value=${ev} />`)}</datalist>
      <button type="submit">Filter</button>
    </form>
    ${first.loading ? html`<${Loading} label="Loading the audit trail…" />` : null}
    <${ErrorBox} error=${first.error} retry=${first.reload} />
    ${first.data && !items.length ? html`<p class="empty">No audit records match.</p>` : null}
    ${
      items.length
        ? html`<table class="table audit">
          <thead><tr><th>When</th><th>Event</th><th>Source</th><th>Observation</th><th>Details</th></tr></thead>
          <tbody>${items.map(
            (r) => html`<tr data-event=${r.event}>
              <td>${fmtTime(r.recorded_at_ms ?? r.at_ms)}</td><td><code>${r.event}</code></td>
              <td>${r.source_id ? html`<a href=${link('audit', null, { source: r.source_id })}>${r.source_id}</a>` : '—'}</td>
              <td>${r.observation_id ? html`<a href=${link('observations', r.observation_id)}><code>${r.observation_id}</code></a>` : '—'}</td>
              <td><div class="details">${details(r)}</div></td>
            </tr>`,
          )}</tbody></table>`
        : null
    }
    ${next ? html`<button type="button" onClick=${loadMore} disabled=${more.loading}>${more.loading ? 'Loading…' : 'Older records'}</button>` : null}
    <${ErrorBox} error=${more.error} />
  </section>`;
}
