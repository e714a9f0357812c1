import { readdirSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../src/config/schema.js';
import type { HostResolver } from '../src/uploads/url-fetch.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody, sha256 } from './helpers/fixtures.js';
import { makeJpegBytes, makePng, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const TOKEN = 'url-import-test-token-01';
const MAX_RAW = 16 * 1024;
const PNG = makePng(4, 4, 7);
const JPEG = makeJpegBytes(3);
const SECRET = 'SECRET-UPSTREAM-BODY-do-not-echo';

/** A fake image host on loopback: what it serves, and how often each path was asked for. */
let origin: Server;
let base: string;
let port: number;
const hits = new Map<string, number>();
const openResponses = new Set<ServerResponse>();
const held = { now: 0, max: 0 };

function serveFake() {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const send = (type: string | undefined, body: Buffer | string) => {
      if (type) res.setHeader('content-type', type);
      res.end(body);
    };
    const redirect = /^\/r\/(\d+)$/.exec(path);
    if (redirect) {
      const n = Number(redirect[1]);
      res.writeHead(302, { location: n > 1 ? `/r/${n - 1}` : '/shot.png' }).end();
      return;
    }
    if (path === '/held.png') {
      // Answers after a pause, counting how many requests it holds at once.
      held.now++;
      held.max = Math.max(held.max, held.now);
      setTimeout(() => {
        held.now--;
        send('image/png', makePng(2, 2, Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n'))));
      }, 50);
      return;
    }
    switch (path) {
      case '/shot.png':
      case '/images/frame%201.png':
        return send('image/png', PNG);
      case '/photo.jpg':
        return send('image/jpeg', JPEG);
      case '/blob':
        return send(undefined, PNG);
      case '/octet':
        return send('application/octet-stream', PNG);
      case '/':
        return send('image/png', PNG);
      case '/liar-jpeg':
        return send('image/png', JPEG);
      case '/liar-html':
        return send('image/png', `<html>${SECRET}</html>`);
      case '/page':
        return send('text/html; charset=utf-8', `<html>${SECRET}</html>`);
      case '/missing':
        res.statusCode = 404;
        return send('text/plain', SECRET);
      case '/big':
        return send('image/png', Buffer.concat([PNG, Buffer.alloc(MAX_RAW)]));
      case '/big-chunked': {
        res.setHeader('content-type', 'image/png');
        res.write(PNG);
        res.write(Buffer.alloc(MAX_RAW));
        return res.end();
      }
      case '/slow': {
        // The first bytes of a PNG, then nothing: a body that never completes.
        res.setHeader('content-type', 'image/png');
        res.write(PNG.subarray(0, 8));
        openResponses.add(res);
        return;
      }
      case '/to-private':
        return void res.writeHead(302, { location: 'http://10.0.0.7/shot.png' }).end();
      case '/to-metadata':
        return void res.writeHead(301, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      case '/to-internal-name':
        return void res.writeHead(307, { location: `http://internal.test:${port}/shot.png` }).end();
      default:
        res.statusCode = 404;
        return send('text/plain', 'no');
    }
  });
}

/** The test's DNS: names mapped to addresses without touching the system resolver. */
const NAMES: Record<string, string[]> = {
  'images.test': ['127.0.0.1'],
  'internal.test': ['10.1.2.3'],
  'mapped.test': ['::ffff:127.0.0.1'],
  'nat64.test': ['64:ff9b::a9fe:a9fe'],
  'mixed.test': ['93.184.216.34', '192.168.1.10'],
};
const resolveHost: HostResolver = async (name) => {
  if (name === 'hangs.test') return new Promise(() => {});
  const found = NAMES[name];
  if (!found) throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const fetchConfig = (extra: Record<string, unknown> = {}): ConfigInput => ({
  limits: { max_raw_bytes: MAX_RAW },
  uploads: { url_fetch: { enabled: true, allow_http: true, allow_hosts: ['127.0.0.1/32', 'images.test'], ...extra } },
});

let d: TestDaemon;
/** URL fetching on, http allowed, but no allow-list: loopback and private addresses are refused. */
let strict: TestDaemon;

beforeAll(async () => {
  origin = serveFake();
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  port = (origin.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  d = await startDaemon(fetchConfig(), { resolveHost });
  strict = await startDaemon(fetchConfig({ allow_hosts: [] }), { resolveHost });
  for (const t of [d, strict]) {
    await createSource(t, sourceBody('cam', TOKEN));
    await createSource(t, sourceBody('mic', TOKEN, { kind: 'microphone_segment' }));
    await createSource(t, sourceBody('tight', TOKEN, { quota_policy: 'reject', max_active_observations: 1 }));
  }
});
afterAll(async () => {
  for (const r of openResponses) r.destroy();
  await Promise.all([d?.close(), strict?.close()]);
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
});

const fromUrl = (t: TestDaemon, url: string, key: string, source = 'cam', upload: Record<string, unknown> = {}) =>
  t.req(`/v1/observation-sources/${source}/observations`, {
    method: 'POST',
    token: TOKEN,
    json: { upload: { url, ...upload }, idempotency_key: key },
  });

async function observationsOf(t: TestDaemon, source: string) {
  return (await (await t.req(`/v1/observations?source_id=${source}&include_purged=true`)).json()) as Array<Record<string, unknown>>;
}
const tempFiles = (t: TestDaemon) => readdirSync(join(t.dataDir, 'tmp'));

describe('creating an observation from a URL', () => {
  it('fetches the bytes and stores them like any upload, recording where they came from (no query string)', async () => {
    const r = await fromUrl(d, `${base}/shot.png?X-Amz-Signature=abc#frag`, 'json-1');
    expect(r.status, await r.clone().text()).toBe(201);
    const o = await r.json();
    expect(o).toMatchObject({
      source_id: 'cam',
      file_name: 'shot.png',
      media_type: 'image/png',
      sha256: sha256(PNG),
      byte_length: PNG.length,
      origin_url: `${base}/shot.png`,
    });
    const content = await d.req(`/v1/assets/${o.asset_id}/content`);
    expect(Buffer.from(await content.arrayBuffer()).equals(PNG)).toBe(true);
    expect((await (await d.req(`/v1/observations/${o.observation_id}`)).json()).origin_url).toBe(`${base}/shot.png`);
  });

  it('shares the asset with an upload of the same bytes (content addressing)', async () => {
    const direct = await d.req('/v1/observation-sources/cam/observations', {
      method: 'POST',
      token: TOKEN,
      json: uploadBody(PNG, 'direct-same'),
    });
    const fetched = await fromUrl(d, `${base}/shot.png`, 'json-same');
    const [a, b] = [await direct.json(), await fetched.json()];
    expect(b.asset_id).toBe(a.asset_id);
    expect(a.origin_url).toBeNull();
  });

  it('replays a repeated request from the store without fetching again; another URL under the key is a conflict', async () => {
    const first = await fromUrl(d, `${base}/photo.jpg`, 'replay-1');
    expect(first.status).toBe(201);
    const before = hits.get('/photo.jpg');
    const again = await fromUrl(d, `${base}/photo.jpg`, 'replay-1');
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await again.json()).observation_id).toBe((await first.json()).observation_id);
    expect(hits.get('/photo.jpg')).toBe(before);
    await expectProblem(await fromUrl(d, `${base}/shot.png`, 'replay-1'), 422, 'idempotency_conflict');
  });

  it('infers the media type from the bytes and the file name from the path when the server does not say', async () => {
    for (const [path, key, name] of [
      ['/blob', 'sniff-1', 'blob'],
      ['/octet', 'sniff-2', 'octet'],
      ['/images/frame%201.png', 'sniff-3', 'frame 1.png'],
      ['/', 'sniff-4', 'download.png'],
    ]) {
      const r = await fromUrl(d, base + path, key);
      expect(r.status, await r.clone().text()).toBe(201);
      expect(await r.json()).toMatchObject({ media_type: 'image/png', file_name: name });
    }
    const named = await fromUrl(d, `${base}/blob`, 'sniff-5', 'cam', { file_name: 'mine.png', media_type: 'image/png' });
    expect(await named.json()).toMatchObject({ media_type: 'image/png', file_name: 'mine.png' });
  });

  it('follows up to max_redirects redirects, and reaches a host the allow-list names through the pinned address', async () => {
    const r = await fromUrl(d, `${base}/r/3`, 'redirect-3');
    expect(r.status, await r.clone().text()).toBe(201);
    expect((await r.json()).origin_url).toBe(`${base}/r/3`);
    // images.test exists only in the injected resolver: the connection can only have gone to its answer.
    const named = await fromUrl(d, `http://images.test:${port}/shot.png`, 'pinned-name');
    expect(named.status, await named.clone().text()).toBe(201);
  });

  it('goes through quotas and kind checks like any upload', async () => {
    expect((await fromUrl(d, `${base}/shot.png`, 'quota-1', 'tight')).status).toBe(201);
    await expectProblem(await fromUrl(d, `${base}/photo.jpg`, 'quota-2', 'tight'), 507, 'quota_exceeded');
    await expectProblem(await fromUrl(d, `${base}/shot.png`, 'kind-1', 'mic'), 415, 'unsupported_media_type');
    await expectProblem(await fromUrl(d, `${base}/photo.jpg`, 'declared-1', 'cam', { media_type: 'image/png' }), 400, 'media_mismatch');
    expect(await observationsOf(d, 'tight')).toHaveLength(1);
    expect(await observationsOf(d, 'mic')).toHaveLength(0);
  });

  it('works per item in a batch, beside base64 items', async () => {
    const r = await d.req('/v1/observation-sources/cam/observations/batch', {
      method: 'POST',
      token: TOKEN,
      json: {
        items: [
          { upload: { url: `${base}/photo.jpg?v=2` }, idempotency_key: 'batch-url-1' },
          uploadBody(makePng(2, 2, 99), 'batch-b64-1'),
          { upload: { url: `${base}/missing` }, idempotency_key: 'batch-url-2' },
          { upload: { url: `${base}/photo.jpg?v=2` }, idempotency_key: 'batch-url-1' },
        ],
      },
    });
    expect(r.status).toBe(200);
    const { results } = await r.json();
    expect(results.map((x: { status: number }) => x.status)).toEqual([201, 201, 422, 200]);
    expect(results[0].observation).toMatchObject({ media_type: 'image/jpeg', file_name: 'photo.jpg', origin_url: `${base}/photo.jpg` });
    expect(results[2].error.code).toBe('fetch_failed');
    expect(JSON.stringify(results[2])).not.toContain(SECRET);
  });

  it('rejects a body naming url with content_base64, or url with upload_id', async () => {
    for (const upload of [
      { url: `${base}/shot.png`, content_base64: PNG.toString('base64') },
      { url: `${base}/shot.png`, upload_id: 'upl_01HZZZZZZZZZZZZZZZZZZZZZZZ' },
      { url: 'not a url' },
    ]) {
      const r = await d.req('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: TOKEN,
        json: { upload, idempotency_key: 'shape' },
      });
      await expectProblem(r, 400, 'validation_failed');
    }
  });
});

describe('URL fetch refusals (each stores nothing and never echoes the fetched body)', () => {
  const cases: Array<{ name: string; daemon: () => TestDaemon; url: () => string; status: number; code: string }> = [
    {
      name: 'a loopback URL without the allow-list',
      daemon: () => strict,
      url: () => `${base}/shot.png`,
      status: 403,
      code: 'fetch_refused',
    },
    {
      name: 'a short-form loopback (127.1) without the allow-list',
      daemon: () => strict,
      url: () => `http://127.1:${port}/shot.png`,
      status: 403,
      code: 'fetch_refused',
    },
    {
      name: 'a decimal-integer loopback host',
      daemon: () => strict,
      url: () => `http://2130706433:${port}/shot.png`,
      status: 403,
      code: 'fetch_refused',
    },
    { name: 'IPv6 loopback', daemon: () => d, url: () => `http://[::1]:${port}/shot.png`, status: 403, code: 'fetch_refused' },
    {
      name: 'IPv4-mapped IPv6 loopback',
      daemon: () => strict,
      url: () => `http://[::ffff:127.0.0.1]:${port}/`,
      status: 403,
      code: 'fetch_refused',
    },
    {
      name: 'IPv4-mapped loopback in hex',
      daemon: () => strict,
      url: () => `http://[::ffff:7f00:1]:${port}/`,
      status: 403,
      code: 'fetch_refused',
    },
    {
      name: 'NAT64 of the metadata address',
      daemon: () => d,
      url: () => 'http://[64:ff9b::a9fe:a9fe]/',
      status: 403,
      code: 'fetch_refused',
    },
    {
      name: 'the metadata address',
      daemon: () => d,
      url: () => 'http://169.254.169.254/latest/meta-data/',
      status: 403,
      code: 'fetch_refused',
    },
    { name: 'a private address', daemon: () => d, url: () => 'http://192.168.0.1/x.png', status: 403, code: 'fetch_refused' },
    { name: 'CGNAT', daemon: () => d, url: () => 'http://100.64.0.1/x.png', status: 403, code: 'fetch_refused' },
    { name: '0.0.0.0', daemon: () => d, url: () => `http://0.0.0.0:${port}/shot.png`, status: 403, code: 'fetch_refused' },
    { name: 'broadcast', daemon: () => d, url: () => 'http://255.255.255.255/x.png', status: 403, code: 'fetch_refused' },
    { name: 'multicast', daemon: () => d, url: () => 'http://224.0.0.1/x.png', status: 403, code: 'fetch_refused' },
    { name: 'a ULA IPv6 address', daemon: () => d, url: () => 'http://[fd00::1]/x.png', status: 403, code: 'fetch_refused' },
    { name: 'an IPv6 link-local address', daemon: () => d, url: () => 'http://[fe80::1]/x.png', status: 403, code: 'fetch_refused' },
    {
      name: 'a name resolving to a private address',
      daemon: () => d,
      url: () => `http://internal.test:${port}/shot.png`,
      status: 403,
      code: 'fetch_refused',
    },
    {
      name: 'a name resolving to an IPv4-mapped loopback',
      daemon: () => strict,
      url: () => `http://mapped.test:${port}/shot.png`,
      status: 403,
      code: 'fetch_refused',
    },
    { name: 'a name resolving to NAT64 metadata', daemon: () => d, url: () => 'http://nat64.test/', status: 403, code: 'fetch_refused' },
    {
      name: 'a name with one public and one private answer',
      daemon: () => d,
      url: () => 'http://mixed.test/x.png',
      status: 403,
      code: 'fetch_refused',
    },
    { name: 'a redirect to a private address', daemon: () => d, url: () => `${base}/to-private`, status: 403, code: 'fetch_refused' },
    { name: 'a redirect to the metadata address', daemon: () => d, url: () => `${base}/to-metadata`, status: 403, code: 'fetch_refused' },
    {
      name: 'a redirect to a name resolving inside',
      daemon: () => d,
      url: () => `${base}/to-internal-name`,
      status: 403,
      code: 'fetch_refused',
    },
    { name: 'too many redirects', daemon: () => d, url: () => `${base}/r/4`, status: 403, code: 'fetch_refused' },
    {
      name: 'credentials in the URL',
      daemon: () => d,
      url: () => `http://user:pw@127.0.0.1:${port}/shot.png`,
      status: 403,
      code: 'fetch_refused',
    },
    { name: 'a non-http scheme', daemon: () => d, url: () => 'file:///etc/passwd', status: 403, code: 'fetch_refused' },
    { name: 'an oversized body (Content-Length)', daemon: () => d, url: () => `${base}/big`, status: 413, code: 'payload_too_large' },
    { name: 'an oversized body (chunked)', daemon: () => d, url: () => `${base}/big-chunked`, status: 413, code: 'payload_too_large' },
    { name: 'a content type that is not media', daemon: () => d, url: () => `${base}/page`, status: 415, code: 'unsupported_media_type' },
    { name: 'HTML served as image/png', daemon: () => d, url: () => `${base}/liar-html`, status: 415, code: 'unsupported_media_type' },
    { name: 'JPEG served as image/png', daemon: () => d, url: () => `${base}/liar-jpeg`, status: 400, code: 'media_mismatch' },
    { name: 'a 404', daemon: () => d, url: () => `${base}/missing`, status: 422, code: 'fetch_failed' },
    { name: 'a name that does not resolve', daemon: () => d, url: () => 'http://nowhere.test/x.png', status: 422, code: 'fetch_failed' },
  ];

  it.each(cases)('refuses $name', async ({ daemon, url, status, code }) => {
    const t = daemon();
    const key = `refused-${Math.random()}`;
    const r = await fromUrl(t, url(), key, 'cam');
    const body = await expectProblem(r, status, code);
    expect(JSON.stringify(body)).not.toContain(SECRET);
    const stored = (await observationsOf(t, 'cam')).filter((o) => o.idempotency_key === key);
    expect(stored).toHaveLength(0);
  });

  it('records the refusals in the audit trail with their reason', async () => {
    const reasons = async () => {
      const audit = await (await d.req('/v1/observation-audit?source_id=cam&event=upload_rejected&limit=1000')).json();
      return new Set(audit.map((e: { detail: { code: string } }) => e.detail.code));
    };
    await expect
      .poll(async () => [...(await reasons())])
      .toEqual(expect.arrayContaining(['fetch_refused', 'fetch_failed', 'payload_too_large']));
  });

  it('leaves no temp file behind after the refusals', async () => {
    expect(tempFiles(d)).toEqual([]);
    expect(tempFiles(strict)).toEqual([]);
  });

  it('refuses a connection refused by the server as fetch_failed', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const p = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expectProblem(await fromUrl(d, `http://127.0.0.1:${p}/x.png`, 'conn-refused'), 422, 'fetch_failed');
  });
});

describe('URL fetch settings', () => {
  it('is off by default', async () => {
    const t = await startDaemon({}, { resolveHost });
    try {
      await createSource(t, sourceBody('cam', TOKEN));
      await expectProblem(await fromUrl(t, `${base}/shot.png`, 'off-1'), 403, 'fetch_refused');
      expect(await observationsOf(t, 'cam')).toHaveLength(0);
    } finally {
      await t.close();
    }
  });

  it('fetches only https unless allow_http is set', async () => {
    const t = await startDaemon({ uploads: { url_fetch: { enabled: true, allow_hosts: ['127.0.0.1'] } } }, { resolveHost });
    try {
      await createSource(t, sourceBody('cam', TOKEN));
      const body = await expectProblem(await fromUrl(t, `${base}/shot.png`, 'https-only'), 403, 'fetch_refused');
      expect(body.detail).toMatch(/https/);
      // A redirect from https to http would be refused the same way: every hop is parsed by the same rule.
    } finally {
      await t.close();
    }
  });

  it('cuts a body that arrives slower than the minimum rate', async () => {
    const t = await startDaemon(fetchConfig({ min_bytes_per_s: 1000, rate_grace_ms: 300 }), { resolveHost });
    try {
      await createSource(t, sourceBody('cam', TOKEN));
      const body = await expectProblem(await fromUrl(t, `${base}/slow`, 'slow-1'), 422, 'fetch_failed');
      expect(body.detail).toMatch(/slower than/);
      expect(await observationsOf(t, 'cam')).toHaveLength(0);
      expect(tempFiles(t)).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('gives up after the total timeout', async () => {
    const t = await startDaemon(fetchConfig({ total_timeout_ms: 300 }), { resolveHost });
    try {
      await createSource(t, sourceBody('cam', TOKEN));
      // Through a name: the deadline passes after the resolver answered, while the body trickles.
      const body = await expectProblem(await fromUrl(t, `http://images.test:${port}/slow`, 'slow-2'), 422, 'fetch_failed');
      expect(body.detail).toMatch(/longer than 300 ms/);
    } finally {
      await t.close();
    }
  });

  it('fetches at most max_concurrent URLs at once; a batch of URLs takes turns', async () => {
    const t = await startDaemon(fetchConfig({ max_concurrent: 1 }), { resolveHost });
    try {
      await createSource(t, sourceBody('cam', TOKEN));
      held.max = 0;
      const items = [1, 2, 3, 4].map((n) => ({ upload: { url: `${base}/held.png?n=${n}` }, idempotency_key: `held-${n}` }));
      const r = await t.req('/v1/observation-sources/cam/observations/batch', { method: 'POST', token: TOKEN, json: { items } });
      const { results } = await r.json();
      expect(results.map((x: { status: number }) => x.status)).toEqual([201, 201, 201, 201]);
      expect(held.max).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('gives up on a resolver that never answers at the total timeout', async () => {
    const t = await startDaemon(fetchConfig({ total_timeout_ms: 300 }), { resolveHost });
    try {
      await createSource(t, sourceBody('cam', TOKEN));
      const body = await expectProblem(await fromUrl(t, 'http://hangs.test/x.png', 'dns-hang'), 422, 'fetch_failed');
      expect(body.detail).toMatch(/longer than 300 ms/);
    } finally {
      await t.close();
    }
  });

  it('refuses an allow_hosts entry that is neither a host name, an address nor a CIDR', async () => {
    await expect(startDaemon({ uploads: { url_fetch: { allow_hosts: ['10.0.0.0/99'] } } })).rejects.toThrow(/allow_hosts/);
    await expect(startDaemon({ uploads: { url_fetch: { allow_hosts: ['http://x'] } } })).rejects.toThrow(/allow_hosts/);
  });
});
