import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody, sha256 } from './helpers/fixtures.js';
import { makeJpegBytes, makePng, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const TOKEN = 'signed-upload-test-token-1';
const clock = testClock();
let d: TestDaemon;

beforeAll(async () => {
  d = await startDaemon({ limits: { max_raw_bytes: 8 * 1024 } }, { now: clock });
  for (const id of ['cam', 'other']) await createSource(d, sourceBody(id, TOKEN));
});
afterAll(() => d.close());

interface Minted {
  upload_id: string;
  upload_url: string;
  expires_at_ms: number;
}

async function mint(t: TestDaemon, source = 'cam', media_type = 'image/png', file_name = 'shot.png'): Promise<Minted> {
  const r = await t.req(`/v1/observation-sources/${source}/upload-urls`, { method: 'POST', token: TOKEN, json: { media_type, file_name } });
  expect(r.status, await r.clone().text()).toBe(201);
  return r.json();
}

const put = (url: string, bytes: Buffer) => fetch(url, { method: 'PUT', body: new Uint8Array(bytes) });

const create = (t: TestDaemon, uploadId: string, key: string, source = 'cam') =>
  t.req(`/v1/observation-sources/${source}/observations`, {
    method: 'POST',
    token: TOKEN,
    json: { upload: { upload_id: uploadId }, idempotency_key: key },
  });

async function count(t: TestDaemon, source = 'cam'): Promise<number> {
  return ((await (await t.req(`/v1/observations?source_id=${source}&limit=1000`)).json()) as unknown[]).length;
}

const stagedFiles = (t: TestDaemon) => readdirSync(join(t.dataDir, 'uploads'));

describe('signed upload', () => {
  it('mints a URL, takes the raw bytes on PUT without a token, and creates the observation from upload_id', async () => {
    const png = makePng(4, 4, 1);
    const m = await mint(d);
    expect(m.upload_id).toMatch(/^upl_[0-9A-Z]{26}$/);
    expect(m.expires_at_ms).toBe(clock() + 15 * 60_000);
    expect(new URL(m.upload_url).origin).toBe(d.url);

    const p = await put(m.upload_url, png);
    expect(p.status).toBe(200);
    expect(await p.json()).toMatchObject({ upload_id: m.upload_id, sha256: sha256(png), byte_length: png.length, media_type: 'image/png' });
    expect(stagedFiles(d)).toEqual([m.upload_id]);

    const r = await create(d, m.upload_id, 'signed-1');
    expect(r.status, await r.clone().text()).toBe(201);
    const obs = await r.json();
    expect(obs).toMatchObject({ sha256: sha256(png), byte_length: png.length, media_type: 'image/png', file_name: 'shot.png' });
    const content = await d.req(`/v1/assets/${obs.asset_id}/content`);
    expect(Buffer.from(await content.arrayBuffer()).equals(png)).toBe(true);
    expect(stagedFiles(d)).toEqual([]);

    // The fingerprint uses the content hash: the base64 upload of the same thing is a replay.
    const b64 = await d.req('/v1/observation-sources/cam/observations', {
      method: 'POST',
      token: TOKEN,
      json: {
        ...uploadBody(png, 'signed-1'),
        upload: { file_name: 'shot.png', media_type: 'image/png', content_base64: png.toString('base64') },
      },
    });
    expect(b64.status).toBe(200);
    expect((await b64.json()).observation_id).toBe(obs.observation_id);
    // So is the same create sent again.
    const retry = await create(d, m.upload_id, 'signed-1');
    expect([retry.status, retry.headers.get('idempotent-replayed')]).toEqual([200, 'true']);
    expect((await retry.json()).observation_id).toBe(obs.observation_id);
  });

  it('is single use: a second PUT and a second use of the upload_id are refused', async () => {
    const m = await mint(d);
    expect((await put(m.upload_url, makePng(3, 3, 2))).status).toBe(200);
    await expectProblem(await put(m.upload_url, makePng(3, 3, 3)), 409, 'conflict');
    const before = await count(d);
    expect((await create(d, m.upload_id, 'single-a')).status).toBe(201);
    await expectProblem(await create(d, m.upload_id, 'single-b'), 409, 'conflict');
    await expectProblem(await put(m.upload_url, makePng(3, 3, 3)), 409, 'conflict');
    expect(await count(d)).toBe(before + 1);
  });

  it('works inside a batch: one item uses the upload, a second item naming it is refused', async () => {
    const png = makePng(3, 3, 12);
    const m = await mint(d);
    expect((await put(m.upload_url, png)).status).toBe(200);
    const r = await d.req('/v1/observation-sources/cam/observations/batch', {
      method: 'POST',
      token: TOKEN,
      json: {
        items: [
          { upload: { upload_id: m.upload_id }, idempotency_key: 'batch-a' },
          { upload: { upload_id: m.upload_id }, idempotency_key: 'batch-b' },
        ],
      },
    });
    const { results } = await r.json();
    expect(results.map((x: { status: number; error?: { code: string } }) => [x.status, x.error?.code])).toEqual([
      [201, undefined],
      [409, 'conflict'],
    ]);
    expect(results[0].observation.sha256).toBe(sha256(png));
  });

  it('refuses an upload_id without bytes (409), of another source (404), or unknown (404)', async () => {
    const m = await mint(d);
    await expectProblem(await create(d, m.upload_id, 'early'), 409, 'conflict');
    expect((await put(m.upload_url, makePng(3, 3, 4))).status).toBe(200);
    await expectProblem(await create(d, m.upload_id, 'cross', 'other'), 404, 'not_found');
    await expectProblem(await create(d, 'upl_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'unknown'), 404, 'not_found');
    await expectProblem(
      await d.req('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: TOKEN,
        json: { upload: { upload_id: m.upload_id, media_type: 'image/png' }, idempotency_key: 'mixed' },
      }),
      400,
      'validation_failed',
    );
    expect(await count(d, 'other')).toBe(0);
  });

  it('refuses tampered URLs with 403 and stores nothing', async () => {
    const m = await mint(d);
    const u = new URL(m.upload_url);
    const sig = u.searchParams.get('signature')!;
    const flipped = new URL(u);
    flipped.searchParams.set('signature', sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11));
    const otherType = new URL(u);
    otherType.searchParams.set('media_type', 'image/jpeg');
    const longer = new URL(u);
    longer.searchParams.set('expires_at_ms', String(m.expires_at_ms + 3_600_000));
    const otherSource = new URL(u);
    otherSource.searchParams.set('source_id', 'other');
    const unsigned = new URL(u);
    unsigned.searchParams.delete('signature');
    for (const url of [flipped, otherType, longer, otherSource, unsigned]) {
      await expectProblem(await put(url.toString(), makePng(3, 3, 5)), 403, 'forbidden');
    }
    expect(stagedFiles(d)).not.toContain(m.upload_id);
    // The genuine URL still works: refused PUTs leave the upload pending.
    expect((await put(m.upload_url, makePng(3, 3, 5))).status).toBe(200);
  });

  it('refuses JPEG bytes on a URL signed for PNG (media_mismatch), and oversized bodies (413), storing nothing', async () => {
    const m = await mint(d);
    await expectProblem(await put(m.upload_url, makeJpegBytes(1)), 400, 'media_mismatch');
    await expectProblem(await put(m.upload_url, Buffer.concat([makePng(2, 2, 6), Buffer.alloc(9 * 1024)])), 413, 'payload_too_large');
    // Without a Content-Length the limit holds while streaming.
    const chunks = [makePng(2, 2, 6), Buffer.alloc(5 * 1024), Buffer.alloc(5 * 1024)];
    const streamed = await fetch(m.upload_url, {
      method: 'PUT',
      body: new ReadableStream({
        pull(c) {
          const next = chunks.shift();
          if (next) c.enqueue(new Uint8Array(next));
          else c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    await expectProblem(streamed, 413, 'payload_too_large');
    await expectProblem(await create(d, m.upload_id, 'mismatch'), 409, 'conflict');
    expect(stagedFiles(d)).not.toContain(m.upload_id);
    expect(readdirSync(join(d.dataDir, 'tmp'))).toEqual([]);
  });

  it('mints only media types the source kind accepts', async () => {
    const r = await d.req('/v1/observation-sources/cam/upload-urls', {
      method: 'POST',
      token: TOKEN,
      json: { media_type: 'audio/wav', file_name: 'a.wav' },
    });
    await expectProblem(r, 415, 'unsupported_media_type');
    const anon = await d.req('/v1/observation-sources/cam/upload-urls', {
      method: 'POST',
      json: { media_type: 'image/png', file_name: 'a.png' },
    });
    await expectProblem(anon, 401, 'unauthorized');
  });

  it('expires: the URL answers 403, an unused upload 410, and the cleanup removes the staged bytes', async () => {
    const late = await mint(d);
    const unused = await mint(d);
    expect((await put(unused.upload_url, makePng(3, 3, 7))).status).toBe(200);
    expect(stagedFiles(d)).toContain(unused.upload_id);
    const before = await count(d);
    clock.advance(15 * 60_000);
    await expectProblem(await put(late.upload_url, makePng(3, 3, 8)), 403, 'forbidden');
    await expectProblem(await create(d, unused.upload_id, 'too-late'), 410, 'gone');
    const report = d.daemon.services.signedUploads.cleanup();
    expect(report.expired).toBeGreaterThanOrEqual(2);
    expect(stagedFiles(d)).not.toContain(unused.upload_id);
    await expectProblem(await create(d, unused.upload_id, 'too-late'), 410, 'gone');
    expect(await count(d)).toBe(before);
  });
});

describe('signed upload across a restart', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

  it('keeps the signing key (0600) and the staged bytes: PUT before the restart, create after', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'observd-signed-'));
    dirs.push(dataDir);
    const first = await startDaemon({}, { dataDir });
    await createSource(first, sourceBody('cam', TOKEN));
    const a = await mint(first);
    const b = await mint(first);
    const png = makePng(5, 5, 9);
    expect((await put(a.upload_url, png)).status).toBe(200);
    await first.close();
    expect(statSync(join(dataDir, 'upload-signing.key')).mode & 0o777).toBe(0o600);

    const second = await startDaemon({}, { dataDir });
    try {
      expect(existsSync(join(dataDir, 'uploads', a.upload_id))).toBe(true);
      const r = await create(second, a.upload_id, 'after-restart');
      expect(r.status, await r.clone().text()).toBe(201);
      expect((await r.json()).sha256).toBe(sha256(png));
      // A URL minted before the restart still verifies (same key).
      const moved = new URL(b.upload_url);
      const url = second.url + moved.pathname + moved.search;
      expect((await put(url, makePng(5, 5, 10))).status).toBe(200);
    } finally {
      await second.close();
    }
  });

  it('removes the bytes of uploads that expired while the daemon was down, at start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'observd-signed-'));
    dirs.push(dataDir);
    const t = testClock();
    const first = await startDaemon({}, { dataDir, now: t });
    await createSource(first, sourceBody('cam', TOKEN));
    const m = await mint(first);
    expect((await put(m.upload_url, makePng(5, 5, 11))).status).toBe(200);
    await first.close();
    expect(readdirSync(join(dataDir, 'uploads'))).toEqual([m.upload_id]);

    t.advance(15 * 60_000);
    const second = await startDaemon({ uploads: { cleanup_interval_ms: 3_600_000 } }, { dataDir, now: t });
    try {
      const deadline = Date.now() + 2_000;
      while (readdirSync(join(dataDir, 'uploads')).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(readdirSync(join(dataDir, 'uploads'))).toEqual([]);
      await expectProblem(await create(second, m.upload_id, 'late'), 410, 'gone');
    } finally {
      await second.close();
    }
  });
});
