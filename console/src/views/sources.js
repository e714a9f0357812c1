// Sources: every source with its live counters against its quotas, its token and its capture
// agent's health; create (token shown once), pause/resume/disable, rotate, revoke, delete.
import { useEffect, useState } from 'preact/hooks';
import { SOURCE_KINDS } from '../../../src/sources/kinds.ts';
import { api, listPage, pageOf } from '../api.js';
import { Bar, ErrorBox, Loading, TypedConfirm, fmtAgo, fmtBytes, fmtTime, html, link, useAction, useAsync } from '../ui.js';

async function listAll(path, params, signal) {
  const items = [];
  let cursor;
  do {
    const page = await listPage(path, params, cursor, signal);
    items.push(...page.items);
    cursor = page.next;
  } while (cursor && items.length < 5000);
  return items;
}

/** Capture agents and alerts. */
async function loadAgents(signal) {
  // Kheish answers these as bare arrays, never paged.
  const [agents, alerts] = await Promise.all(
    ['/v1/capture-agents', '/v1/capture-alerts'].map((p) => api('GET', p, undefined, signal).then((b) => pageOf(b).items)),
  );
  return { agents, alerts };
}

/** A token shown once: copy button and the warning that it cannot be shown again. */
export function TokenOnce({ sourceId, token, onDone }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token);
      setCopied(true);
    } catch {
      const el = document.getElementById('token-once-value');
      el?.select();
      setCopied(document.execCommand?.('copy') ?? false);
    }
  };
  return html`<div class="token-once" role="alert" data-testid="new-token">
    <p><strong>Upload token for <code>${sourceId}</code></strong>: copy it now. It is shown only this once; the daemon keeps only its hash.
      Anyone holding it can upload to this source.</p>
    <div class="row">
      <input id="token-once-value" readonly value=${token} aria-label="new upload token" onFocus=${(e) => e.currentTarget.select()} />
      <button type="button" onClick=${copy}>${copied ? 'Copied' : 'Copy'}</button>
      <button type="button" onClick=${onDone}>I saved it</button>
    </div>
  </div>`;
}

function CreateSource({ onCreated }) {
  const [form, setForm] = useState({ source_id: '', display_name: '', kind: 'screen_snapshot', sensitivity: 'sensitive' });
  const act = useAction();
  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });
  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      const body = { display_name: form.display_name, kind: form.kind, sensitivity: form.sensitivity };
      if (form.source_id.trim()) body.source_id = form.source_id.trim();
      const view = await api('POST', '/v1/observation-sources', body);
      setForm({ ...form, source_id: '', display_name: '' });
      onCreated(view);
    });
  };
  return html`<form class="card create" onSubmit=${submit} aria-label="create source">
    <h2>New source</h2>
    <div class="grid-form">
      <label>Source id <input name="source_id" placeholder="generated when empty" value=${form.source_id} onInput=${set('source_id')} /></label>
      <label>Display name <input name="display_name" required value=${form.display_name} onInput=${set('display_name')} /></label>
      <label>Kind <select name="kind" value=${form.kind} onChange=${set('kind')}>${SOURCE_KINDS.map((k) => html`<option value=${k}>${k}</option>`)}</select></label>
      <label>Sensitivity <select name="sensitivity" value=${form.sensitivity} onChange=${set('sensitivity')}>
        <option value="sensitive">sensitive (raw media for admins only)</option>
        <option value="standard">standard</option>
      </select></label>
    </div>
    <button type="submit" disabled=${act.busy}>${act.busy ? 'Creating…' : 'Create source'}</button>
    <${ErrorBox} error=${act.error} />
  </form>`;
}

function SourceActions({ source, onChanged, onToken }) {
  const act = useAction();
  const [mode, setMode] = useState(null);
  const [grace, setGrace] = useState('300000');
  const id = encodeURIComponent(source.source_id);
  const patch = (status) => act.run(async () => onChanged(await api('PATCH', `/v1/observation-sources/${id}`, { status })));
  const rotate = () =>
    act.run(async () => {
      const view = await api('POST', `/v1/observation-sources/${id}/rotate-token`, { grace_period_ms: Number(grace) });
      setMode(null);
      onChanged(view);
      if (view.upload_token) onToken(source.source_id, view.upload_token);
    });
  const revoke = () =>
    act.run(async () => {
      onChanged(await api('POST', `/v1/observation-sources/${id}/revoke-token`, {}));
      setMode(null);
    });
  const remove = () =>
    act.run(async () => {
      await api('DELETE', `/v1/observation-sources/${id}`);
      setMode(null);
      onChanged(null);
    });
  return html`<div class="actions" data-write="true">
    ${
      source.status === 'active'
        ? html`<button type="button" onClick=${() => patch('paused')} disabled=${act.busy}>Pause</button>`
        : html`<button type="button" onClick=${() => patch('active')} disabled=${act.busy}>Resume</button>`
    }
    ${source.status !== 'disabled' ? html`<button type="button" onClick=${() => patch('disabled')} disabled=${act.busy}>Disable</button>` : null}
    <button type="button" onClick=${() => setMode(mode === 'rotate' ? null : 'rotate')}>Rotate token</button>
    <button type="button" onClick=${() => setMode(mode === 'revoke' ? null : 'revoke')}>Revoke token</button>
    <button type="button" class="danger" onClick=${() => setMode(mode === 'delete' ? null : 'delete')}>Delete</button>
    ${
      mode === 'rotate'
        ? html`<div class="confirm" role="dialog" aria-label="rotate token">
          <label>Old token stays valid for
            <select value=${grace} onChange=${(e) => setGrace(e.currentTarget.value)} aria-label="grace period">
              <option value="0">no grace (now)</option><option value="60000">1 minute</option><option value="300000">5 minutes</option>
              <option value="3600000">1 hour</option><option value="86400000">1 day</option>
            </select></label>
          <button type="button" onClick=${rotate} disabled=${act.busy}>${act.busy ? 'Rotating…' : 'Rotate'}</button>
          <button type="button" onClick=${() => setMode(null)}>Cancel</button>
        </div>`
        : null
    }
    ${
      mode === 'revoke'
        ? html`<div class="confirm" role="dialog" aria-label="revoke token">
          <p>Uploads with the current token (and any in grace) will be refused until the token is rotated.</p>
          <button type="button" class="danger" onClick=${revoke} disabled=${act.busy}>Revoke</button>
          <button type="button" onClick=${() => setMode(null)}>Cancel</button>
        </div>`
        : null
    }
    ${
      mode === 'delete'
        ? html`<${TypedConfirm} word=${source.source_id} action="delete this source and everything it stored" busy=${act.busy} onConfirm=${remove} onCancel=${() => setMode(null)} />`
        : null
    }
    ${act.busy && mode === 'delete' ? html`<p class="progress" role="status">Deleting the source, its observations and their media…</p>` : null}
    <${ErrorBox} error=${act.error} />
  </div>`;
}

function AgentHealth({ agents, sourceId }) {
  if (!agents) return html`<span class="muted">…</span>`;
  const mine = agents.agents.filter((a) => (a.source_ids || []).includes(sourceId));
  if (!mine.length) return html`<span class="muted">no agent</span>`;
  return mine.map((a) => {
    const alert = agents.alerts.find((x) => x.machine_id === a.machine_id);
    return html`<div class=${`agent ${a.heartbeat_state}`} title=${alert ? alert.message : ''}>
      <span class="dot"></span>${a.machine_id}: ${a.heartbeat_state}
      ${a.last_heartbeat_at_ms ? html` <span class="muted">(${fmtAgo(a.last_heartbeat_at_ms)})</span>` : null}
      ${alert ? html` <span class="badge warn">${alert.kind}</span>` : null}
    </div>`;
  });
}

function SourceRow({ source, role, agents, onChanged, onToken }) {
  const tokenState =
    source.upload_token_revoked_at_ms || source.upload_token_active === false ? 'revoked' : `v${source.upload_token_version ?? 1}`;
  const last = source.last_observed_at_ms ?? null;
  return html`<article class="card source" data-source=${source.source_id}>
    <header>
      <h3><a href=${link('timeline', null, { source: source.source_id })}>${source.display_name}</a> <code class="muted">${source.source_id}</code></h3>
      <span class=${`badge status-${source.status}`}>${source.status}</span>
      <span class=${`badge sens-${source.sensitivity}`}>${source.sensitivity}</span>
      <span class="badge">${source.kind}</span>
    </header>
    <div class="meters">
      <div><span>Observations ${source.active_observation_count} / ${source.max_active_observations}</span>
        <${Bar} value=${source.active_observation_count} max=${source.max_active_observations} label="observations against quota" /></div>
      <div><span>Bytes ${fmtBytes(source.active_byte_length)} / ${fmtBytes(source.max_active_bytes)}</span>
        <${Bar} value=${source.active_byte_length} max=${source.max_active_bytes} label="bytes against quota" /></div>
    </div>
    <dl class="facts">
      <dt>Last upload</dt><dd title=${fmtTime(last)}>${last ? fmtAgo(last) : '—'}</dd>
      <dt>Token</dt><dd data-testid="token-state">${tokenState}${source.last_token_rotated_at_ms ? html` <span class="muted">rotated ${fmtAgo(source.last_token_rotated_at_ms)}</span>` : null}</dd>
      <dt>Retention</dt><dd>${Math.round(source.retention_seconds / 3600)} h, ${source.quota_policy || 'evict_oldest'}</dd>
      <dt>Agent</dt><dd><${AgentHealth} agents=${agents} sourceId=${source.source_id} /></dd>
    </dl>
    ${role === 'admin' ? html`<${SourceActions} source=${source} onChanged=${onChanged} onToken=${onToken} />` : null}
  </article>`;
}

export function SourcesView({ role }) {
  const [query, setQuery] = useState('');
  const sources = useAsync((signal) => listAll('/v1/observation-sources', query ? { query } : {}, signal), [query]);
  const agents = useAsync((signal) => loadAgents(signal), []);
  const [token, setToken] = useState(null);
  // Live counters: refresh while the view is open.
  useEffect(() => {
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') sources.reload();
    }, 5000);
    return () => clearInterval(t);
  }, []);
  const list = sources.data || [];
  return html`<section aria-label="sources">
    <div class="view-head">
      <h1>Sources</h1>
      <input type="search" placeholder="Filter by id or name" aria-label="filter sources" value=${query} onInput=${(e) => setQuery(e.currentTarget.value)} />
      ${sources.loading && sources.data ? html`<span class="muted">refreshing…</span>` : null}
    </div>
    ${token ? html`<${TokenOnce} sourceId=${token.sourceId} token=${token.value} onDone=${() => setToken(null)} />` : null}
    ${
      role === 'admin'
        ? html`<${CreateSource} onCreated=${(view) => {
            if (view.upload_token) setToken({ sourceId: view.source_id, value: view.upload_token });
            sources.reload();
          }} />`
        : null
    }
    ${agents.error ? html`<${ErrorBox} error=${agents.error} />` : null}
    ${agents.data?.alerts?.length ? html`<div class="alerts" role="alert">${agents.data.alerts.map((a) => html`<p class="warn">${a.message}</p>`)}</div>` : null}
    ${sources.error ? html`<${ErrorBox} error=${sources.error} retry=${sources.reload} />` : null}
    ${sources.loading && !sources.data ? html`<${Loading} label="Loading sources…" />` : null}
    ${sources.data && !list.length ? html`<p class="empty">No sources yet.${role === 'admin' ? ' Create one above.' : ''}</p>` : null}
    <div class="sources">
      ${list.map(
        (s) => html`<${SourceRow} key=${s.source_id} source=${s} role=${role} agents=${agents.data}
          onToken=${(sourceId, value) => setToken({ sourceId, value })}
          onChanged=${(view) => {
            if (view === null) sources.set(list.filter((x) => x.source_id !== s.source_id));
            else {
              const { upload_token: _shownOnce, ...rest } = view;
              sources.set(list.map((x) => (x.source_id === s.source_id ? { ...x, ...rest } : x)));
            }
          }} />`,
      )}
    </div>
  </section>`;
}
