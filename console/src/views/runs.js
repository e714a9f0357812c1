// Runs: the queue and finished runs; a run's composed input shown as untrusted evidence, its
// output and usage.
import { useEffect, useState } from 'preact/hooks';
import { api, followEvents, listPage } from '../api.js';
import { ErrorBox, Loading, fmtAgo, fmtTime, html, link, useAsync } from '../ui.js';

const STATUSES = ['', 'queued', 'running', 'completed', 'failed'];
/** Statuses of runs still waiting for, or held by, an agent runtime (Kheish's waiting states too). */
const PENDING = new Set(['queued', 'running', 'waiting_for_approval', 'waiting_for_user_question']);

function RunTable({ items }) {
  return html`<table class="table">
    <thead><tr><th>Run</th><th>Status</th><th>Session</th><th>Submitter</th><th>Observations</th><th>Created</th></tr></thead>
    <tbody>${items.map(
      (r) => html`<tr data-run=${r.run_id}>
        <td><a href=${link('runs', r.run_id)}><code>${r.run_id}</code></a></td>
        <td><span class=${`badge st-${r.status}`}>${r.status}</span></td>
        <td>${r.target_session_id ?? r.session_id}</td><td>${r.submitter ?? '—'}</td>
        <td>${(r.observation_ids || []).length}</td><td title=${fmtTime(r.created_at_ms ?? r.submitted_at_ms)}>${fmtAgo(r.created_at_ms ?? r.submitted_at_ms)}</td>
      </tr>`,
    )}</tbody></table>`;
}

function RunList({ params }) {
  const status = params.status || '';
  const [extra, setExtra] = useState({ items: [], next: undefined });
  const runs = useAsync(
    async (signal) => {
      setExtra({ items: [], next: undefined });
      return listPage('/v1/runs', { status, limit: 50 }, undefined, signal);
    },
    [status],
  );
  const [more, setMore] = useState({ loading: false, error: null });
  const next = extra.next === undefined ? runs.data?.next : extra.next;
  const loadMore = async () => {
    setMore({ loading: true, error: null });
    try {
      const page = await listPage('/v1/runs', { status, limit: 50 }, next);
      setExtra((e) => ({ items: e.items.concat(page.items), next: page.next }));
      setMore({ loading: false, error: null });
    } catch (error) {
      setMore({ loading: false, error });
    }
  };
  const items = (runs.data?.items || []).concat(extra.items);
  const queue = items.filter((r) => PENDING.has(r.status));
  const finished = items.filter((r) => !PENDING.has(r.status));
  // New and finished runs show up without a refresh.
  useEffect(() => followEvents({ types: 'run.queued,run.completed,run.failed' }, () => runs.reload()), []);
  return html`<section aria-label="runs">
    <div class="view-head"><h1>Runs</h1>
      <label>Status <select aria-label="run status" value=${status} onChange=${(e) => (location.hash = link('runs', null, { status: e.currentTarget.value }))}>
        ${STATUSES.map((s) => html`<option value=${s}>${s || 'all'}</option>`)}</select></label>
      <button type="button" onClick=${runs.reload}>Refresh</button>
    </div>
    ${runs.loading && !runs.data ? html`<${Loading} label="Loading runs…" />` : null}
    <${ErrorBox} error=${runs.error} retry=${runs.reload} />
    ${runs.data && !items.length ? html`<p class="empty">No runs${status ? ` with status ${status}` : ''}.</p>` : null}
    ${queue.length ? html`<h2>Queue</h2><${RunTable} items=${queue} />` : null}
    ${finished.length ? html`<h2>Finished</h2><${RunTable} items=${finished} />` : null}
    ${next ? html`<button type="button" onClick=${loadMore} disabled=${more.loading}>${more.loading ? 'Loading…' : 'More'}</button>` : null}
    <${ErrorBox} error=${more.error} />
  </section>`;
}

function RunDetail({ id }) {
  const run = useAsync((signal) => api('GET', `/v1/runs/${encodeURIComponent(id)}`, undefined, signal), [id]);
  if (run.loading && !run.data) return html`<${Loading} label="Loading the run…" />`;
  if (run.error) return html`<section><h1>Run</h1><${ErrorBox} error=${run.error} retry=${run.reload} /></section>`;
  const r = run.data;
  const input = r.input;
  return html`<section class="run" aria-label="run" data-run=${r.run_id}>
    <div class="view-head"><a href="#/runs">← Runs</a><h1><code>${r.run_id}</code></h1><span class=${`badge st-${r.status}`}>${r.status}</span>
      <button type="button" onClick=${run.reload}>Refresh</button></div>
    <dl class="facts card">
      <dt>Session</dt><dd>${r.target_session_id ?? r.session_id}</dd>
      <dt>Submitter</dt><dd>${r.submitter ?? '—'}</dd>
      <dt>Created</dt><dd>${fmtTime(r.created_at_ms ?? r.submitted_at_ms)}</dd>
      <dt>Finished</dt><dd>${fmtTime(r.finished_at_ms)}</dd>
      <dt>Observations</dt><dd>${(r.observation_ids || []).map((o) => html`<a href=${link('observations', o)}><code>${o}</code></a> `)}</dd>
      ${r.error ? html`<dt>Error</dt><dd class="error">${r.error}</dd>` : null}
    </dl>
    <section class="card"><h2>Composed input</h2>
      ${input === null ? html`<p class="muted">Hidden: this run involves sensitive observations and you are signed in read-only.</p>` : null}
      ${
        input
          ? html`<div class="evidence" data-testid="evidence">
            <p class="evidence-label">Untrusted evidence: captured content, shown as data. Nothing in it is an instruction.</p>
            <pre class="text">${input.evidence_text ?? input.header}</pre>
            ${input.attachments?.length ? html`<p class="muted">${input.attachments.length} raw attachment(s): ${input.attachments.map((a) => html`<code>${a.media_type}</code> `)}</p>` : null}
            ${input.footer ? html`<pre class="text small">${input.footer}</pre>` : null}
          </div>
          <h3>Request</h3><pre class="text" data-testid="request">${input.request?.content ?? JSON.stringify(input.request, null, 2)}</pre>`
          : input === undefined
            ? html`<p class="muted">Not included in this view.</p>`
            : null
      }
    </section>
    <section class="card"><h2>Output</h2>
      ${r.output ? html`<pre class="text" data-testid="output">${r.output}</pre>` : html`<p class="muted">${r.status === 'completed' ? 'Kept from this view.' : 'None yet.'}</p>`}
      ${r.usage ? html`<p class="muted" data-testid="usage">Usage: ${r.usage.input_tokens ?? '?'} in, ${r.usage.output_tokens ?? '?'} out, ${r.usage.total_tokens ?? '?'} total tokens</p>` : null}
    </section>
  </section>`;
}

export function RunsView({ id, params }) {
  return id ? html`<${RunDetail} id=${id} />` : html`<${RunList} params=${params} />`;
}
