import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepOnce } from '../src/retention/sweep.js';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { createSource, grepDir } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { byIds, getRun, materialize } from './helpers/runs.js';

/** A unique marker per field of one upload. */
function markersFor(tag: string) {
  const id = `${tag}${randomBytes(6).toString('hex')}`;
  return {
    bytes: `BYTESMARK${id}`,
    file: `FILEMARK${id}`,
    meta: `METAMARK${id}`,
    key: `KEYMARK${id}`,
    stream: `STREAMMARK${id}`,
    text: `TEXTMARK${id}`,
  };
}

let d: TestDaemon;
const clock = testClock();

beforeEach(async () => {
  d = await startDaemon({}, { now: clock });
});
afterEach(() => d.close());

/** Uploads one observation carrying a marker in every field, and materializes a queued run of it. */
async function plant(sourceId: string, token: string, tag: string) {
  const m = markersFor(tag);
  const body = {
    upload: {
      file_name: `${m.file}.png`,
      media_type: 'image/png',
      // A PNG decoder ignores bytes after IEND; the magic check sees a PNG.
      content_base64: Buffer.concat([makePng(2, 2, Math.floor(Math.random() * 1e6)), Buffer.from(m.bytes)]).toString('base64'),
    },
    idempotency_key: m.key,
    stream_id: m.stream,
    metadata: { note: m.meta },
    canonical_text: `screen says ${m.text}`,
  };
  const r = await d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token, json: body });
  expect(r.status, await r.clone().text()).toBe(201);
  const o = await r.json();
  const run = await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'always' }));
  expect(run.status).toBe(202);
  await d.daemon.services.materializations.flushJournal();
  const markers = Object.values(m);
  // Indexed for search before erasure, so the grep below also covers the FTS tables.
  expect(JSON.stringify(await (await d.req(`/v1/search?q=${m.text}`)).json())).toContain(o.observation_id);
  // Planted for real: before erasure every marker is somewhere in the data directory.
  const found = grepDir(d.dataDir, markers).join('\n');
  for (const marker of markers) expect(found).toContain(marker);
  return { observation: o, run: run.body, markers };
}

async function source(body: Record<string, unknown>): Promise<string> {
  return createSource(d, { display_name: 'Screen', kind: 'screen_snapshot', sensitivity: 'internal', ...body });
}

describe('erasure leaves no byte of an observation in the data directory', () => {
  it('DELETE /v1/observations/{id}: media, text, file name, metadata, key, stream id, run input and journal text are gone; the run is cancelled', async () => {
    const token = await source({ source_id: 'cam' });
    const keep = await plant('cam', token, 'keep');
    const gone = await plant('cam', token, 'gone');
    const r = await d.req(`/v1/observations/${gone.observation.observation_id}`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    expect(grepDir(d.dataDir, gone.markers)).toEqual([]);
    expect(JSON.stringify(await (await d.req(`/v1/search?q=${gone.markers[5]}`)).json())).not.toContain(gone.observation.observation_id);
    // The run that held it is cancelled, explicitly.
    expect((await getRun(d, gone.run.run_id)).body).toMatchObject({ status: 'failed', input: null });
    // Only what was erased: the other observation and its run are intact.
    expect(grepDir(d.dataDir, keep.markers).length).toBeGreaterThan(0);
    expect((await getRun(d, keep.run.run_id)).body.status).toBe('queued');
    const stillThere = await d.req(`/v1/observations/${keep.observation.observation_id}`);
    expect((await stillThere.json()).file_name).toContain('FILEMARK');
  });

  it('DELETE /v1/observation-sources/{id} erases every observation of the source', async () => {
    const token = await source({ source_id: 'doomed' });
    const a = await plant('doomed', token, 'srcA');
    const b = await plant('doomed', token, 'srcB');
    expect((await d.req('/v1/observation-sources/doomed', { method: 'DELETE' })).status).toBe(204);
    expect(grepDir(d.dataDir, [...a.markers, ...b.markers])).toEqual([]);
    expect((await getRun(d, a.run.run_id)).body).toMatchObject({ status: 'failed', input: null });
  });

  it('a retention purge with purge_raw_on_retention erases once the sweep has run; the purged row stays, scrubbed', async () => {
    const token = await source({ source_id: 'short', retention_seconds: 60, purge_raw_on_retention: true });
    const p = await plant('short', token, 'purge');
    clock.advance(61_000);
    const report = await sweepOnce(d.daemon.deps);
    expect(report.purged).toBe(1);
    expect(grepDir(d.dataDir, p.markers)).toEqual([]);
    const row = await (await d.req(`/v1/observations/${p.observation.observation_id}`)).json();
    expect(row).toMatchObject({ retention_state: 'purged', file_name: '', metadata: null, stream_id: null });
    // A retried upload with the same key is still recognised as the purged one (by the key's hash).
    const retry = await d.req('/v1/observation-sources/short/observations', {
      method: 'POST',
      token,
      json: {
        upload: { file_name: 'x.png', media_type: 'image/png', content_base64: makePng().toString('base64') },
        idempotency_key: p.markers[3],
      },
    });
    expect(retry.status).toBe(422);
    expect((await retry.json()).code).toBe('idempotency_conflict');
    expect(grepDir(d.dataDir, p.markers)).toEqual([]);
  });

  it('a quota eviction erases the evicted observation (its log checkpoint follows the answer within ERASURE_CHECKPOINT_MS)', async () => {
    const token = await source({
      source_id: 'tiny',
      max_active_observations: 1,
      quota_policy: 'evict_oldest',
      purge_raw_on_retention: true,
    });
    const p = await plant('tiny', token, 'evict');
    const next = await d.req('/v1/observation-sources/tiny/observations', {
      method: 'POST',
      token,
      json: {
        upload: { file_name: 'next.png', media_type: 'image/png', content_base64: makePng(3, 3).toString('base64') },
        idempotency_key: 'next',
      },
    });
    expect(next.status).toBe(201);
    // Blobs and rows are gone at once; the log is checkpointed (coalesced on the upload path) just after.
    await expect.poll(() => grepDir(d.dataDir, p.markers), { timeout: 10_000, interval: 100 }).toEqual([]);
    expect((await getRun(d, p.run.run_id)).body.status).toBe('failed');
  });

  it('a signed upload: its file name and bytes go with the observation it made', async () => {
    const token = await source({ source_id: 'signed' });
    const m = markersFor('signed');
    const minted = await d.req('/v1/observation-sources/signed/upload-urls', {
      method: 'POST',
      token,
      json: { media_type: 'image/png', file_name: `${m.file}.png` },
    });
    expect(minted.status, await minted.clone().text()).toBe(201);
    const { upload_id, upload_url } = await minted.json();
    const put = await fetch(upload_url, {
      method: 'PUT',
      body: Buffer.concat([makePng(4, 4), Buffer.from(m.bytes)]),
      headers: { 'content-type': 'image/png' },
    });
    expect(put.status, await put.clone().text()).toBeLessThan(300);
    const made = await d.req('/v1/observation-sources/signed/observations', {
      method: 'POST',
      token,
      json: { upload: { upload_id }, idempotency_key: m.key, stream_id: m.stream, metadata: { note: m.meta } },
    });
    expect(made.status, await made.clone().text()).toBe(201);
    const o = await made.json();
    expect((await d.req(`/v1/observations/${o.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(grepDir(d.dataDir, [m.file, m.bytes, m.key, m.stream, m.meta])).toEqual([]);
  });

  it('an observation from a URL: its origin URL goes on DELETE, and a purged row keeps none of it', async () => {
    await d.close();
    d = await startDaemon({ uploads: { url_fetch: { enabled: true, allow_http: true, allow_hosts: ['127.0.0.1'] } } }, { now: clock });
    const images = createServer((req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(makePng(3, 3, req.url!.length)));
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(images.address() as { port: number }).port}`;
      const token = await source({ source_id: 'fetched', retention_seconds: 60, purge_raw_on_retention: true });
      const fromUrl = async (tag: string) => {
        const m = markersFor(tag);
        const r = await d.req('/v1/observation-sources/fetched/observations', {
          method: 'POST',
          token,
          json: { upload: { url: `${base}/${m.file}/frame.png` }, idempotency_key: m.key },
        });
        expect(r.status, await r.clone().text()).toBe(201);
        const o = await r.json();
        expect(o.origin_url).toContain(m.file);
        expect(grepDir(d.dataDir, [m.file]).length).toBeGreaterThan(0);
        return { o, marker: m.file };
      };
      const deleted = await fromUrl('urldel');
      expect((await d.req(`/v1/observations/${deleted.o.observation_id}`, { method: 'DELETE' })).status).toBe(204);
      expect(grepDir(d.dataDir, [deleted.marker])).toEqual([]);

      const purged = await fromUrl('urlpurge');
      clock.advance(61_000);
      expect((await sweepOnce(d.daemon.deps)).purged).toBe(1);
      const row = await (await d.req(`/v1/observations/${purged.o.observation_id}`)).json();
      expect(row).toMatchObject({ retention_state: 'purged', origin_url: null });
      expect(grepDir(d.dataDir, [purged.marker])).toEqual([]);
    } finally {
      await new Promise((r) => images.close(r));
    }
  });
});
