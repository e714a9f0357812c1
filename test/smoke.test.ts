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
    expect(list.data.map((o: { observation_id: string }) => o.observation_id)).toEqual([obs.observation_id]);
    const content = await d.req(`/v1/assets/${obs.asset_id}/content`);
    expect(content.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await content.arrayBuffer()).equals(png)).toBe(true);
  });
});
