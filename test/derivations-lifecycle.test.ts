import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepOnce } from '../src/retention/sweep.js';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { content, derive, eventually, shaOf, upload } from './helpers/derivations.js';
import { allPages, createSource } from './helpers/fixtures.js';
import { makePng, makeWav } from './helpers/media.js';

const clock = testClock(Date.now());
let d: TestDaemon;
let token: string;
beforeAll(async () => {
  d = await startDaemon({}, { now: clock });
  token = await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot', retention_seconds: 60 });
});
afterAll(() => d?.close());

const obsSubject = (o: { observation_id: string }) => ({ type: 'observation', observation_id: o.observation_id });

describe('derivation errors', () => {
  const cases: Array<[string, unknown, number, string, RegExp?]> = [
    ['unknown asset', { profile: 'visual_preview', subject: { type: 'asset', asset_id: `ast_${'0'.repeat(64)}` } }, 404, 'not_found'],
    [
      'unknown observation',
      { profile: 'canonical_text', subject: { type: 'observation', observation_id: 'obs_01J00000000000000000000000' } },
      404,
      'not_found',
    ],
    [
      'unknown session input',
      { profile: 'canonical_text', subject: { type: 'session_input', session_id: 'demo', offset: 42 } },
      404,
      'not_found',
      /session input demo@42 not found/,
    ],
    ['unknown profile', { profile: 'summary', subject: { type: 'asset', asset_id: `ast_${'0'.repeat(64)}` } }, 400, 'validation_failed'],
    ['unknown subject type', { profile: 'canonical_text', subject: { type: 'file', path: '/etc/passwd' } }, 400, 'validation_failed'],
    // Any id form is looked up, never used as a path: an unknown one is 404, as in Kheish.
    ['malformed asset id', { profile: 'canonical_text', subject: { type: 'asset', asset_id: '../x' } }, 404, 'not_found'],
    [
      'Kheish-style observation id',
      { profile: 'canonical_text', subject: { type: 'observation', observation_id: 'observation-1' } },
      404,
      'not_found',
    ],
  ];
  for (const [name, body, status, code, detail] of cases) {
    it(`${name} -> ${status} ${code}`, async () => {
      const r = await d.req('/v1/derivations', { method: 'POST', json: body });
      expect(r.status).toBe(status);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      const p = await r.json();
      expect(p.code).toBe(code);
      if (detail) expect(p.detail).toMatch(detail);
    });
  }

  it('bad query flags and unknown ids', async () => {
    const r = await d.req('/v1/derivations?wait=maybe', { method: 'POST', json: {} });
    expect((await r.json()).code).toBe('validation_failed');
    expect((await d.req('/v1/derivations/der_01J00000000000000000000000')).status).toBe(404);
    expect((await d.req('/v1/derivations/nope')).status).toBe(404);
    expect((await d.req('/v1/derivations/derivation-1')).status).toBe(404);
  });

  it('a purged observation is 410 gone, and purge drops its derivations and their blobs', async () => {
    const obs = await upload(d, 'screen', token, makePng(40, 30, 501), 'purge-me');
    const prev = await derive(d, 'visual_preview', obsSubject(obs));
    const sha = shaOf(prev.body.result_asset_id);
    expect(d.daemon.services.blobs.has(sha)).toBe(true);
    clock.advance(61_000);
    await sweepOnce(d.daemon.deps);
    const r = await derive(d, 'visual_preview', obsSubject(obs));
    expect(r.status).toBe(410);
    expect(r.body.code).toBe('gone');
    expect((await d.req(`/v1/derivations/${prev.body.derivation_id}`)).status).toBe(404);
    expect(d.daemon.services.blobs.has(sha)).toBe(false);
  });
});

describe('erasure', () => {
  it('deleting the subject observation erases its derivations and their result blobs', async () => {
    const obs = await upload(d, 'screen', token, makePng(50, 20, 601), 'delete-me');
    const byObs = await derive(d, 'visual_preview', obsSubject(obs));
    const byAsset = await derive(d, 'visual_preview', { type: 'asset', asset_id: obs.asset_id });
    const sha = shaOf(byObs.body.result_asset_id);
    expect(d.daemon.services.blobs.has(sha)).toBe(true);
    expect((await d.req(`/v1/observations/${obs.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await d.req(`/v1/derivations/${byObs.body.derivation_id}`)).status).toBe(404);
    // The asset's only holder went, so derivations of the asset go with it.
    expect((await d.req(`/v1/derivations/${byAsset.body.derivation_id}`)).status).toBe(404);
    expect(d.daemon.services.blobs.has(sha)).toBe(false);
    expect(d.daemon.services.blobs.has(obs.sha256)).toBe(false);
    expect((await d.req(`/v1/assets/${byObs.body.result_asset_id}`)).status).toBe(404);
  });

  it('a result blob shared with another holder survives', async () => {
    const png = makePng(30, 30, 701);
    const a = await upload(d, 'screen', token, png, 'shared-a');
    const b = await upload(d, 'screen', token, png, 'shared-b');
    const ra = await derive(d, 'visual_preview', obsSubject(a));
    const rb = await derive(d, 'visual_preview', obsSubject(b));
    expect(rb.body.result_asset_id).toBe(ra.body.result_asset_id);
    await d.req(`/v1/observations/${a.observation_id}`, { method: 'DELETE' });
    expect((await d.req(`/v1/derivations/${ra.body.derivation_id}`)).status).toBe(404);
    expect((await content(d, rb.body.result_asset_id)).length).toBeGreaterThan(0);
  });

  it('deleting a source takes its observations derivations along', async () => {
    const t = await createSource(d, { source_id: 'doomed', display_name: 'Doomed', kind: 'microphone_segment' });
    const obs = await upload(d, 'doomed', t, makeWav(1), 'w1', 'audio/wav');
    const r = await derive(d, 'visual_preview', obsSubject(obs));
    expect((await d.req('/v1/observation-sources/doomed', { method: 'DELETE' })).status).toBe(204);
    expect((await d.req(`/v1/derivations/${r.body.derivation_id}`)).status).toBe(404);
    expect(d.daemon.services.blobs.has(shaOf(r.body.result_asset_id))).toBe(false);
  });
});

describe('listing', () => {
  it('filters by substring and walks with a cursor', async () => {
    const obs = await upload(d, 'screen', token, makePng(10, 10, 801), 'list-1');
    await derive(d, 'visual_preview', obsSubject(obs));
    await derive(d, 'canonical_text', obsSubject(obs), '?wait=false');
    const pages = await allPages<{ derivation_id: string }>(d.url, '/v1/derivations?limit=1');
    const seen = pages.flatMap((p) => p.items.map((x) => x.derivation_id));
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    const byObs = await (await d.req(`/v1/derivations?query=${obs.observation_id}`)).json();
    expect(byObs.map((x: { profile: string }) => x.profile).sort()).toEqual(['canonical_text', 'visual_preview']);
    const previews = await (await d.req(`/v1/derivations?query=${obs.observation_id}&profile=visual_preview`)).json();
    expect(previews).toHaveLength(1);
    expect((await d.req('/v1/derivations?cursor=garbage')).status).toBe(400);
  });

  it('is in /openapi.json', async () => {
    const doc = await (await d.req('/openapi.json')).json();
    expect(Object.keys(doc.paths['/v1/derivations']).sort()).toEqual(['get', 'post']);
    expect(doc.paths['/v1/derivations/{derivation_id}'].get).toBeDefined();
  });
});

describe('durable queue', () => {
  it('resumes pending and processing jobs after a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'observd-resume-'));
    let p = await startDaemon({ derivations: { paused: true } }, { dataDir });
    try {
      const t = await createSource(p, { source_id: 'screen', display_name: 'S', kind: 'screen_snapshot', auto_derive: ['visual_preview'] });
      const a = await upload(p, 'screen', t, makePng(20, 20, 1), 'a');
      const b = await upload(p, 'screen', t, makePng(20, 20, 2), 'b');
      const queued = await derive(p, 'visual_preview', { type: 'asset', asset_id: a.asset_id }, '?wait=false');
      expect(queued.status).toBe(202);
      expect(queued.body).toMatchObject({ status: 'pending', result_asset_id: '', cache_status: 'miss' });
      // As if the daemon died mid-job.
      p.daemon.services.db.prepare(`UPDATE derivations SET status = 'processing' WHERE subject_observation_id = ?`).run(b.observation_id);
      expect((await (await p.req(`/v1/observations/${a.observation_id}`)).json()).processing_status).toBe('pending');
      await p.close();

      p = await startDaemon({}, { dataDir });
      const done = await eventually(async () => {
        const r = await (await p.req(`/v1/derivations/${queued.body.derivation_id}`)).json();
        return r.status === 'completed' && r;
      });
      expect(done.result_asset_id).toMatch(/^ast_/);
      for (const o of [a, b]) {
        await eventually(
          async () => (await (await p.req(`/v1/observations/${o.observation_id}`)).json()).processing_status === 'completed',
        );
      }
      const unsettled = await (await p.req('/v1/derivations?status=pending')).json();
      expect(unsettled).toEqual([]);
    } finally {
      await p.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('answers 202 with the pending record when the wait times out', async () => {
    const slow = await startDaemon({ derivations: { paused: true, wait_timeout_ms: 50 } });
    try {
      const t = await createSource(slow, { source_id: 'screen', display_name: 'S', kind: 'screen_snapshot' });
      const obs = await upload(slow, 'screen', t, makePng(5, 5, 3), 'x');
      const r = await derive(slow, 'visual_preview', obsSubject(obs));
      expect(r.status).toBe(202);
      expect(r.body.status).toBe('pending');
    } finally {
      await slow.close();
    }
  });
});

describe('auth', () => {
  const admin = 'admin-token-0123456789';
  const reader = 'reader-token-0123456789';
  let a: TestDaemon;
  beforeAll(async () => {
    a = await startDaemon({ admin_token: admin, readonly_token: reader });
  });
  afterAll(() => a?.close());

  it('POST needs the admin token; reads take the read-only token; sensitive results stay admin-only', async () => {
    const t = await createSource(a, { source_id: 'screen', display_name: 'S', kind: 'screen_snapshot' }, admin);
    const obs = await upload(a, 'screen', t, makePng(6, 6, 4), 'x');
    expect((await derive(a, 'visual_preview', obsSubject(obs))).status).toBe(401);
    expect((await derive(a, 'visual_preview', obsSubject(obs), '', reader)).status).toBe(403);
    const r = await derive(a, 'visual_preview', obsSubject(obs), '', admin);
    expect(r.status).toBe(200);
    expect((await a.req(`/v1/derivations/${r.body.derivation_id}`, { token: reader })).status).toBe(200);
    expect((await a.req('/v1/derivations', { token: reader })).status).toBe(200);
    // The preview of a sensitive screen is as sensitive as the screen.
    expect((await a.req(`/v1/assets/${r.body.result_asset_id}/content`, { token: reader })).status).toBe(403);
    expect((await a.req(`/v1/assets/${r.body.result_asset_id}/content`, { token: admin })).status).toBe(200);
  });
});
