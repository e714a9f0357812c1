import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { sha256, upload as uploadView } from './helpers/fixtures.js';
import { makeJpegBytes, makePng, makeWav } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const ADMIN = 'admin-token-0123456789abcdef';
const READER = 'reader-token-0123456789abcdef';
const UPLOAD = 'upload-token-0123456789abcdef';

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
  // observd's former levels are still accepted and mapped onto Kheish's two (public/internal → standard, restricted → sensitive).
  for (const [id, kind, sensitivity, seen] of [
    ['pub', 'screen_snapshot', 'standard', 'standard'],
    ['int', 'screen_snapshot', 'internal', 'standard'],
    ['sens', 'screen_snapshot', undefined, 'sensitive'], // the default
    ['restr', 'webcam_snapshot', 'restricted', 'sensitive'],
    ['mic', 'microphone_segment', 'public', 'standard'],
  ] as const) {
    const res = await d.req('/v1/observation-sources', {
      method: 'POST',
      token: ADMIN,
      json: { source_id: id, display_name: id, kind, upload_token: UPLOAD, ...(sensitivity ? { sensitivity } : {}) },
    });
    expect(res.status).toBe(201);
    expect((await res.json()).sensitivity).toBe(seen);
  }
});
afterAll(() => d.close());

const upload = (sourceId: string, bytes: Buffer, key: string, extra: Record<string, unknown> = {}, mediaType = 'image/png') =>
  uploadView(d, sourceId, UPLOAD, bytes, key, mediaType, extra) as Promise<Record<string, any>>;

describe('GET /v1/assets/{id}', () => {
  it('returns the asset metadata', async () => {
    const png = makePng(3, 3, 1);
    const before = Date.now();
    const obs = await upload('pub', png, 'meta');
    const res = await d.req(`/v1/assets/${obs.asset_id}`, { token: READER });
    expect(res.status).toBe(200);
    const meta = await res.json();
    expect(meta).toMatchObject({ asset_id: `ast_${sha256(png)}`, sha256: sha256(png), media_type: 'image/png', byte_length: png.length });
    expect(meta.created_at_ms).toBeGreaterThanOrEqual(before);
    expect(meta.created_at_ms).toBeLessThanOrEqual(Date.now());
  });

  it('404 for an unknown asset, whatever the form of its id', async () => {
    await expectProblem(await d.req(`/v1/assets/ast_${'a'.repeat(64)}`, { token: ADMIN }), 404, 'not_found');
    await expectProblem(await d.req(`/v1/assets/ast_${'a'.repeat(64)}/content`, { token: ADMIN }), 404, 'not_found');
    for (const bad of [
      'nope',
      'asset-1',
      `ast_${'A'.repeat(64)}`,
      `ast_${'a'.repeat(63)}`,
      `ast_${'g'.repeat(64)}`,
      '..%2F..%2Fetc%2Fpasswd',
    ]) {
      await expectProblem(await d.req(`/v1/assets/${bad}/content`, { token: ADMIN }), 404, 'not_found');
      await expectProblem(await d.req(`/v1/assets/${bad}`, { token: ADMIN }), 404, 'not_found');
    }
  });

  it('needs a token when one is configured', async () => {
    const obs = await upload('pub', makePng(1, 1, 2), 'auth');
    await expectProblem(await d.req(`/v1/assets/${obs.asset_id}`), 401, 'unauthorized');
    await expectProblem(await d.req(`/v1/assets/${obs.asset_id}/content`), 401, 'unauthorized');
    // An upload token is not a read token.
    await expectProblem(await d.req(`/v1/assets/${obs.asset_id}/content`, { token: UPLOAD }), 401, 'unauthorized');
  });
});

describe('GET /v1/assets/{id}/content', () => {
  it('serves the bytes with the right Content-Type, Content-Length and ETag', async () => {
    const cases: Array<[string, Buffer, string]> = [
      ['pub', makePng(7, 5, 3), 'image/png'],
      ['pub', makeJpegBytes(4), 'image/jpeg'],
      ['mic', makeWav(0.05), 'audio/wav'],
    ];
    for (const [src, bytes, type] of cases) {
      const obs = await upload(src, bytes, `content-${type}`, {}, type);
      const res = await d.req(`/v1/assets/${obs.asset_id}/content`, { token: READER });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('content-length')).toBe(String(bytes.length));
      expect(res.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
  });

  it('serves canonical text as text/plain', async () => {
    const obs = await upload('pub', makePng(1, 1, 5), 'text', { canonical_text: 'héllo wörld ✓' });
    const res = await d.req(`/v1/assets/${obs.canonical_text_asset_id}/content`, { token: READER });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; charset=utf-8$/i);
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength('héllo wörld ✓')));
    expect(await res.text()).toBe('héllo wörld ✓');
    const meta = await (await d.req(`/v1/assets/${obs.canonical_text_asset_id}`, { token: READER })).json();
    expect(meta).toMatchObject({ sha256: sha256('héllo wörld ✓'), byte_length: Buffer.byteLength('héllo wörld ✓') });
  });

  it('answers If-None-Match with 304 and no body', async () => {
    const png = makePng(2, 2, 6);
    const obs = await upload('pub', png, 'etag');
    const etag = `"${sha256(png)}"`;
    const url = `/v1/assets/${obs.asset_id}/content`;
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await d.req(url, { token: READER, headers: { 'if-none-match': inm } });
      expect({ inm, status: res.status }).toEqual({ inm, status: 304 });
      expect(res.headers.get('etag')).toBe(etag);
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    }
    for (const inm of ['"other"', `"${sha256('x')}"`, `${etag.slice(0, -2)}"`]) {
      const res = await d.req(url, { token: READER, headers: { 'if-none-match': inm } });
      expect({ inm, status: res.status }).toEqual({ inm, status: 200 });
      expect(Buffer.from(await res.arrayBuffer()).equals(png)).toBe(true);
    }
  });

  it('HEAD gives the headers without a body and without leaking a file descriptor', async () => {
    // Big enough that a stream opened on it would not be read to its end (and closed) by itself.
    const png = Buffer.concat([makePng(4, 4, 40), Buffer.alloc(1024 * 1024, 1)]);
    const obs = await upload('pub', png, 'head');
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 40; i++) {
      const res = await d.req(`/v1/assets/${obs.asset_id}/content`, { method: 'HEAD', token: READER });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBe(String(png.length));
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('etag')).toBe(`"${sha256(png)}"`);
      expect((await res.arrayBuffer()).byteLength).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(fds() - before).toBeLessThan(20);
  });

  it('read-only token: 403 for content of sensitive sources, 200 for standard ones', async () => {
    const pub = await upload('pub', makePng(2, 2, 10), 'ro-pub', { canonical_text: 'public words' });
    const int = await upload('int', makePng(2, 2, 11), 'ro-int');
    const sens = await upload('sens', makePng(2, 2, 12), 'ro-sens', { canonical_text: 'secret words' });
    const restr = await upload('restr', makePng(2, 2, 13), 'ro-restr');
    expect(sens.sensitivity).toBe('sensitive');

    for (const o of [pub, int]) {
      const res = await d.req(`/v1/assets/${o.asset_id}/content`, { token: READER });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    expect(await (await d.req(`/v1/assets/${pub.canonical_text_asset_id}/content`, { token: READER })).text()).toBe('public words');
    for (const id of [sens.asset_id, sens.canonical_text_asset_id, restr.asset_id]) {
      await expectProblem(await d.req(`/v1/assets/${id}/content`, { token: READER }), 403, 'forbidden');
      // Metadata stays readable; the admin token reads the bytes.
      expect((await d.req(`/v1/assets/${id}`, { token: READER })).status).toBe(200);
      const admin = await d.req(`/v1/assets/${id}/content`, { token: ADMIN });
      expect(admin.status).toBe(200);
      await admin.arrayBuffer();
    }
    expect(await (await d.req(`/v1/assets/${sens.canonical_text_asset_id}/content`, { token: ADMIN })).text()).toBe('secret words');
  });

  it('bytes shared by a public and a sensitive source are protected while the sensitive one holds them', async () => {
    const png = makePng(3, 3, 20);
    const pub = await upload('pub', png, 'shared-pub');
    const sens = await upload('sens', png, 'shared-sens');
    expect(pub.asset_id).toBe(sens.asset_id);
    await expectProblem(await d.req(`/v1/assets/${pub.asset_id}/content`, { token: READER }), 403, 'forbidden');
    expect((await d.req(`/v1/observations/${sens.observation_id}`, { method: 'DELETE', token: ADMIN })).status).toBe(204);
    const res = await d.req(`/v1/assets/${pub.asset_id}/content`, { token: READER });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(png)).toBe(true);
  });

  it('the read-only token cannot delete observations', async () => {
    const o = await upload('pub', makePng(1, 1, 30), 'ro-del');
    await expectProblem(await d.req(`/v1/observations/${o.observation_id}`, { method: 'DELETE', token: READER }), 403, 'forbidden');
    expect((await d.req(`/v1/observations/${o.observation_id}`, { token: READER })).status).toBe(200);
  });
});
