// Observation: the full image (or the audio with its waveform and transcript), canonical text,
// metadata, derivations with their status and a button to run one, retention, delete.
import { useEffect, useState } from 'preact/hooks';
import { api, assetText, assetUrl, listPage, previewUrl } from '../api.js';
import {
  ErrorBox,
  Loading,
  TypedConfirm,
  fmtAgo,
  fmtBytes,
  fmtTime,
  html,
  isSensitive,
  link,
  mediaVisible,
  useAction,
  useAsync,
} from '../ui.js';

const PROFILES = ['canonical_text', 'visual_preview'];
const settled = (d) => d.status === 'completed' || d.status === 'failed';

function Media({ obs, role }) {
  const full = useAsync(
    (signal) => (mediaVisible(obs, role) && obs.retention_state !== 'purged' ? assetUrl(obs.asset_id, signal) : Promise.resolve(null)),
    [obs.asset_id],
  );
  const wave = useAsync(
    (signal) =>
      obs.kind === 'microphone_segment' && mediaVisible(obs, role) && obs.retention_state !== 'purged'
        ? previewUrl(obs, role, signal)
        : Promise.resolve(null),
    [obs.asset_id],
  );
  if (!mediaVisible(obs, role)) {
    return html`<div class="media hidden-media" data-testid="media-hidden">Raw media of <strong>${obs.sensitivity}</strong> sources is shown to admins only.</div>`;
  }
  if (obs.retention_state === 'purged')
    return html`<div class="media hidden-media">The media was purged ${fmtAgo(obs.purged_at_ms)}.</div>`;
  if (full.error) return html`<${ErrorBox} error=${full.error} retry=${full.reload} />`;
  if (full.loading) return html`<${Loading} label="Loading the media…" />`;
  if (obs.kind === 'microphone_segment') {
    return html`<div class="media audio">
      ${wave.data ? html`<img class="waveform" src=${wave.data} alt="waveform" />` : wave.loading ? html`<${Loading} label="Drawing the waveform…" />` : null}
      ${wave.error ? html`<${ErrorBox} error=${wave.error} />` : null}
      <audio controls src=${full.data} preload="metadata" data-testid="audio"></audio>
    </div>`;
  }
  return html`<div class="media"><img class="full" src=${full.data} alt=${obs.file_name} data-testid="full-image" /></div>`;
}

function CanonicalText({ obs, role }) {
  // The daemon serves the text of sensitive sources to the admin token only, like the media.
  const readable = mediaVisible(obs, role) && obs.canonical_text_asset_id;
  const text = useAsync(
    (signal) => (readable ? assetText(obs.canonical_text_asset_id, signal) : Promise.resolve(null)),
    [obs.canonical_text_asset_id],
  );
  const title = obs.kind === 'microphone_segment' ? 'Transcript' : 'Canonical text';
  if (!mediaVisible(obs, role)) {
    return html`<section class="card"><h2>${title}</h2><p class="muted">The text of <strong>${obs.sensitivity}</strong> sources is shown to admins only.</p></section>`;
  }
  return html`<section class="card"><h2>${title}</h2>
    ${!obs.canonical_text_asset_id ? html`<p class="muted">None yet. Run the canonical_text derivation to read it from the media.</p>` : null}
    ${text.loading && obs.canonical_text_asset_id ? html`<${Loading} />` : null}
    <${ErrorBox} error=${text.error} retry=${text.reload} />
    ${text.data !== null && text.data !== undefined ? html`<pre class="text" data-testid="canonical-text">${text.data}</pre>` : null}
  </section>`;
}

function DerivationResult({ d }) {
  const res = useAsync(
    (signal) => {
      if (!d.result_asset_id) return Promise.resolve(null);
      return d.profile === 'canonical_text'
        ? assetText(d.result_asset_id, signal).then((t) => ({ text: t }))
        : assetUrl(d.result_asset_id, signal).then((u) => ({ url: u }));
    },
    [d.result_asset_id],
  );
  if (res.error) return html`<${ErrorBox} error=${res.error} />`;
  if (!res.data) return null;
  return res.data.text !== undefined
    ? html`<pre class="text small">${res.data.text}</pre>`
    : html`<img class="preview" src=${res.data.url} alt=${`${d.profile} result`} />`;
}

function Derivations({ obs, role }) {
  const list = useAsync(
    async (signal) => {
      const [a, b] = await Promise.all([
        listPage('/v1/derivations', { query: obs.observation_id, limit: 50 }, undefined, signal),
        listPage('/v1/derivations', { query: obs.asset_id, limit: 50 }, undefined, signal),
      ]);
      const byId = new Map([...a.items, ...b.items].map((d) => [d.derivation_id, d]));
      return [...byId.values()];
    },
    [obs.observation_id],
  );
  const [running, setRunning] = useState({});
  const act = useAction();
  // Re-render every second while a derivation runs, so its elapsed time moves.
  const anyRunning = Object.values(running).some(Boolean);
  const [, tick] = useState(0);
  useEffect(() => {
    if (!anyRunning) return undefined;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [anyRunning]);
  const run = (profile) =>
    act.run(async () => {
      const existing = (list.data || []).find((d) => d.profile === profile && d.subject?.type === 'observation');
      const q =
        existing?.status === 'failed' ? '?wait=false&retry_failed=true' : existing ? '?wait=false&force_refresh=true' : '?wait=false';
      let view = await api('POST', `/v1/derivations${q}`, {
        profile,
        subject: { type: 'observation', observation_id: obs.observation_id },
      });
      const started = Date.now();
      setRunning((r) => ({ ...r, [profile]: { status: view.status, started } }));
      while (!settled(view)) {
        await new Promise((r) => setTimeout(r, 400));
        view = await api('GET', `/v1/derivations/${encodeURIComponent(view.derivation_id)}`);
        setRunning((r) => ({ ...r, [profile]: { status: view.status, started } }));
      }
      setRunning((r) => ({ ...r, [profile]: undefined }));
      list.reload();
    });
  return html`<section class="card" aria-label="derivations"><h2>Derivations</h2>
    ${list.loading && !list.data ? html`<${Loading} />` : null}
    <${ErrorBox} error=${list.error} retry=${list.reload} />
    ${list.data && !list.data.length ? html`<p class="muted">None yet.</p>` : null}
    <ul class="derivations">
      ${(list.data || []).map(
        (d) => html`<li data-profile=${d.profile}>
          <strong>${d.profile}</strong> <span class=${`badge st-${d.status}`}>${d.status}</span>
          <span class="muted"> of ${d.subject?.type} · ${fmtAgo(d.updated_at_ms)}${d.backend ? ` · ${d.backend.kind}${d.backend.model ? ` ${d.backend.model}` : ''}` : ''}</span>
          ${d.error ? html`<div class="error">${d.error}</div>` : null}
          ${mediaVisible(obs, role) ? html`<${DerivationResult} d=${d} />` : null}
        </li>`,
      )}
    </ul>
    ${
      role === 'admin'
        ? html`<div class="actions" data-write="true">
          ${PROFILES.map((p) => {
            const r = running[p];
            return html`<button type="button" disabled=${!!r || obs.retention_state === 'purged'} onClick=${() => run(p)}>
              ${r ? `${p}: ${r.status}…` : `Run ${p}`}</button>`;
          })}
          ${Object.entries(running)
            .filter(([, r]) => r)
            .map(
              ([p, r]) =>
                html`<p class="progress" role="status"><span class="spinner"></span>${p} ${r.status}, ${Math.round((Date.now() - r.started) / 1000)} s</p>`,
            )}
        </div>`
        : null
    }
    <${ErrorBox} error=${act.error} />
  </section>`;
}

export function ObservationView({ role, id }) {
  const obs = useAsync((signal) => api('GET', `/v1/observations/${encodeURIComponent(id)}`, undefined, signal), [id]);
  const [deleting, setDeleting] = useState(false);
  const act = useAction();
  if (obs.loading && !obs.data) return html`<${Loading} label="Loading the observation…" />`;
  if (obs.error) return html`<section><h1>Observation</h1><${ErrorBox} error=${obs.error} retry=${obs.reload} /></section>`;
  const o = obs.data;
  const remove = () =>
    act.run(async () => {
      await api('DELETE', `/v1/observations/${encodeURIComponent(o.observation_id)}`);
      location.hash = link('timeline', null, { source: o.source_id });
    });
  return html`<section class="observation" aria-label="observation" data-id=${o.observation_id}>
    <div class="view-head">
      <a href=${link('timeline', null, { source: o.source_id, stream: o.stream_id || '' })}>← Timeline</a>
      <h1>${o.file_name}</h1>
      <span class=${`badge sens-${o.sensitivity}`}>${o.sensitivity}</span>
      <span class=${`badge ret-${o.retention_state}`} data-testid="retention">${o.retention_state}</span>
    </div>
    <div class="obs-layout">
      <div class="obs-main">
        <${Media} obs=${o} role=${role} />
        <${CanonicalText} obs=${o} role=${role} />
      </div>
      <aside class="obs-side">
        <section class="card"><h2>Details</h2>
          <dl class="facts">
            <dt>Id</dt><dd><code>${o.observation_id}</code></dd>
            <dt>Source</dt><dd><a href=${link('timeline', null, { source: o.source_id })}>${o.source_id}</a> (${o.kind})</dd>
            <dt>Stream</dt><dd>${o.stream_id ?? '—'}${o.seq_no !== null && o.seq_no !== undefined ? ` #${o.seq_no}` : ''}</dd>
            <dt>Captured</dt><dd>${fmtTime(o.captured_at_ms)}</dd>
            <dt>Received</dt><dd>${fmtTime(o.received_at_ms)}</dd>
            <dt>Media</dt><dd>${o.media_type}, ${fmtBytes(o.byte_length)}</dd>
            <dt>SHA-256</dt><dd><code class="wrap">${o.sha256}</code></dd>
            ${o.latitude !== null && o.latitude !== undefined ? html`<dt>Location</dt><dd>${o.latitude}, ${o.longitude}</dd>` : null}
            ${o.processing_status ? html`<dt>Processing</dt><dd>${o.processing_status}</dd>` : null}
          </dl>
        </section>
        <section class="card"><h2>Retention</h2>
          <dl class="facts">
            <dt>State</dt><dd>${o.retention_state}</dd>
            ${o.retention_state === 'purged' ? html`<dt>Purged</dt><dd>${fmtTime(o.purged_at_ms)}</dd>` : html`<dt>Expires</dt><dd title=${fmtTime(o.expires_at_ms)} data-testid="expires">${o.expires_at_ms ? `${fmtAgo(o.expires_at_ms)} (${fmtTime(o.expires_at_ms)})` : '—'}</dd>`}
          </dl>
        </section>
        <section class="card"><h2>Metadata</h2>
          ${o.metadata ? html`<pre class="text small">${JSON.stringify(o.metadata, null, 2)}</pre>` : html`<p class="muted">None.</p>`}
        </section>
        <${Derivations} obs=${o} role=${role} />
        ${
          role === 'admin'
            ? html`<section class="card" data-write="true"><h2>Delete</h2>
              <p class="muted">Erases the observation, its text and every blob nothing else references.</p>
              ${
                deleting
                  ? html`<${TypedConfirm} word="delete" action="delete this observation" busy=${act.busy} onConfirm=${remove} onCancel=${() => setDeleting(false)} />`
                  : html`<button type="button" class="danger" onClick=${() => setDeleting(true)}>Delete observation</button>`
              }
              ${act.busy ? html`<p class="progress" role="status">Deleting…</p>` : null}
              <${ErrorBox} error=${act.error} />
            </section>`
            : null
        }
        ${role !== 'admin' && isSensitive(o.sensitivity) ? html`<p class="muted">Signed in read-only.</p>` : null}
      </aside>
    </div>
  </section>`;
}
