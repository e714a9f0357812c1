import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { makePng, uploadBody } from './helpers/media.js';

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(() => d.close());

describe('smoke', () => {
  it('creates a source, uploads, lists and fetches content', async () => {
    const created = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: { source_id: 'screen-main', display_name: 'Main', kind: 'screen_snapshot' },
    });
    expect(created.status).toBe(201);
    const src = await created.json();
    expect(src.upload_token).toMatch(/^obt_/);
    const png = makePng(4, 4);
    const up = await d.req('/v1/observation-sources/screen-main/observations', {
      method: 'POST',
      token: src.upload_token,
      json: uploadBody(png, 'k1'),
    });
    expect(up.status).toBe(201);
    const obs = await up.json();
    const list = await (await d.req('/v1/observations?source_id=screen-main')).json();
    expect(list.map((o: { observation_id: string }) => o.observation_id)).toEqual([obs.observation_id]);
    const content = await d.req(`/v1/assets/${obs.asset_id}/content`);
    expect(content.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await content.arrayBuffer()).equals(png)).toBe(true);
  });
});

describe('metrics', () => {
  it('exposes HTTP instruments and store gauges in the Prometheus format', async () => {
    // Its own daemon and data: this test does not depend on what another test left behind.
    const m = await startDaemon();
    try {
      const src = await (
        await m.req('/v1/observation-sources', { method: 'POST', json: { source_id: 'cam', display_name: 'Cam', kind: 'webcam_snapshot' } })
      ).json();
      const up = await m.req('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: src.upload_token,
        json: uploadBody(makePng(3, 3), 'm1'),
      });
      expect(up.status).toBe(201);
      const res = await m.req('/metrics');
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/^observd_sources 1$/m);
      expect(text).toMatch(/^observd_active_observations 1$/m);
      expect(text).toMatch(/^observd_assets 1$/m);
      expect(text).toMatch(/^observd_runs_queued 0$/m);
      expect(text).toMatch(
        /^observd_http_requests_total\{method="POST",route="\/v1\/observation-sources\/:source_id\/observations",status="201"\} 1$/m,
      );
    } finally {
      await m.close();
    }
  });
});
