import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { createSourceView, filesUnder } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

type Json = Record<string, any>;

const SRC = '/v1/observation-sources';

/** Every setting a new source gets when the create body names only the required fields. */
const DEFAULT_SETTINGS = {
  sensitivity: 'sensitive',
  retention_seconds: 604800,
  max_active_observations: 512,
  max_active_bytes: 536870912,
  allow_materialization: true,
  allow_output_delivery: false,
  status: 'active',
  quota_policy: 'evict_oldest',
  purge_raw_on_retention: true,
  auto_derive: [],
  ingest_rate_limit: null,
};

/** Keys of a view that name a token, apart from the version and the active flag. */
function tokenKeys(view: Json): string[] {
  const notTokens = ['upload_token_version', 'upload_token_active', 'last_token_rotated_at_ms', 'upload_token_revoked_at_ms'];
  return Object.keys(view).filter((k) => /token/i.test(k) && !notTokens.includes(k));
}

/** A request whose path is sent byte for byte (fetch would normalise `..` and `%2E%2E` away). */
function rawRequest(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; type: string; body: Json }> {
  const u = new URL(base);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        method,
        path,
        headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body: text ? JSON.parse(text) : {} });
        });
      },
    );
    r.on('error', reject);
    r.end(payload);
  });
}

async function upload(d: TestDaemon, sourceId: string, token: string | undefined, bytes: Buffer, key: string, extra: Json = {}) {
  return d.req(`${SRC}/${encodeURIComponent(sourceId)}/observations`, { method: 'POST', token, json: uploadBody(bytes, key, extra) });
}

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(() => d.close());

describe('create and upsert', () => {
  it('creates with every default, a generated token returned once, and no token in the view', async () => {
    const res = await d.req(SRC, { method: 'POST', json: { source_id: 'defaults', display_name: 'Defaults', kind: 'screen_snapshot' } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${SRC}/defaults`);
    const created = (await res.json()) as Json;
    expect(created).toMatchObject({
      source_id: 'defaults',
      display_name: 'Defaults',
      kind: 'screen_snapshot',
      ...DEFAULT_SETTINGS,
      upload_token_version: 1,
      active_observation_count: 0,
      active_byte_length: 0,
    });
    expect(created.upload_token).toMatch(/^obt_[A-Za-z0-9_-]{43}$/);
    expect(tokenKeys(created)).toEqual(['upload_token']);
    expect(created.created_at_ms).toBeTypeOf('number');
    expect(created.updated_at_ms).toBe(created.created_at_ms);

    const view = (await (await d.req(`${SRC}/defaults`)).json()) as Json;
    expect(tokenKeys(view)).toEqual([]);
    expect(JSON.stringify(view)).not.toContain(created.upload_token);
    const { upload_token: _t, ...withoutToken } = created;
    expect(view).toEqual(withoutToken);

    // The generated token is a working upload token.
    expect((await upload(d, 'defaults', created.upload_token, makePng(2, 2, 1), 'k1')).status).toBe(201);
  });

  it('keeps a client-chosen token out of the response and accepts it for uploads', async () => {
    const token = 'client-chosen-token-0001';
    const created = await createSourceView(d, { source_id: 'client-tok', display_name: 'C', kind: 'webcam_snapshot', upload_token: token });
    expect(tokenKeys(created)).toEqual([]);
    expect(JSON.stringify(created)).not.toContain(token);
    expect(created.upload_token_version).toBe(1);
    expect((await upload(d, 'client-tok', token, makePng(2, 2, 2), 'k1')).status).toBe(201);
  });

  it('refuses a client token shorter than 16 characters with field errors, creating nothing', async () => {
    const res = await d.req(SRC, {
      method: 'POST',
      json: { source_id: 'short-tok', display_name: 'S', kind: 'screen_snapshot', upload_token: 'fifteen-chars-x' },
    });
    const body = await expectProblem(res, 400, 'validation_failed');
    expect(body.errors).toEqual([{ path: 'upload_token', message: expect.stringContaining('16') }]);
    expect(JSON.stringify(body)).not.toContain('fifteen-chars-x');
    await expectProblem(await d.req(`${SRC}/short-tok`), 404, 'not_found');
    // Exactly 16 is enough.
    await createSourceView(d, { source_id: 'sixteen-tok', display_name: 'S', kind: 'screen_snapshot', upload_token: 'sixteen-chars-xx' });
  });

  it('generates a src_ ULID id when source_id is omitted', async () => {
    const a = await createSourceView(d, { display_name: 'Anon A', kind: 'microphone_segment' });
    const b = await createSourceView(d, { display_name: 'Anon B', kind: 'microphone_segment' });
    expect(a.source_id).toMatch(/^src_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(b.source_id).toMatch(/^src_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a.source_id).not.toBe(b.source_id);
    expect(a.upload_token).toMatch(/^obt_/);
    expect(a.upload_token).not.toBe(b.upload_token);
    expect((await d.req(`${SRC}/${a.source_id}`)).status).toBe(200);
  });

  it('upserts an existing source_id: 200, only the given fields change, the token stays', async () => {
    const created = await createSourceView(d, {
      source_id: 'upsert-me',
      display_name: 'Before',
      kind: 'screen_snapshot',
      sensitivity: 'standard',
      max_active_observations: 7,
      allow_output_delivery: true,
    });
    const res = await d.req(SRC, {
      method: 'POST',
      json: { source_id: 'upsert-me', display_name: 'After', kind: 'screen_snapshot', retention_seconds: 60 },
    });
    expect(res.status).toBe(200);
    const updated = (await res.json()) as Json;
    expect(tokenKeys(updated)).toEqual([]);
    expect(updated).toMatchObject({
      display_name: 'After',
      retention_seconds: 60,
      sensitivity: 'standard',
      max_active_observations: 7,
      allow_output_delivery: true,
      max_active_bytes: DEFAULT_SETTINGS.max_active_bytes,
      upload_token_version: 1,
      created_at_ms: created.created_at_ms,
    });
    expect((await upload(d, 'upsert-me', created.upload_token, makePng(2, 2, 3), 'k1')).status).toBe(201);
  });

  it('upsert with a new upload_token replaces the old one at once and bumps the version', async () => {
    const created = await createSourceView(d, { source_id: 'upsert-tok', display_name: 'T', kind: 'screen_snapshot' });
    const res = await d.req(SRC, {
      method: 'POST',
      json: { source_id: 'upsert-tok', display_name: 'T', kind: 'screen_snapshot', upload_token: 'replacement-token-123' },
    });
    expect(res.status).toBe(200);
    const view = (await res.json()) as Json;
    expect(view.upload_token_version).toBe(2);
    expect(tokenKeys(view)).toEqual([]);
    await expectProblem(await upload(d, 'upsert-tok', created.upload_token, makePng(2, 2, 4), 'k1'), 401, 'unauthorized');
    expect((await upload(d, 'upsert-tok', 'replacement-token-123', makePng(2, 2, 4), 'k2')).status).toBe(201);
  });

  it('refuses to change the kind with 409, via POST and via PATCH, and changes nothing', async () => {
    await createSourceView(d, { source_id: 'kind-fixed', display_name: 'K', kind: 'screen_snapshot' });
    await expectProblem(
      await d.req(SRC, { method: 'POST', json: { source_id: 'kind-fixed', display_name: 'Renamed', kind: 'webcam_snapshot' } }),
      409,
      'conflict',
    );
    await expectProblem(
      await d.req(`${SRC}/kind-fixed`, { method: 'PATCH', json: { kind: 'microphone_segment', display_name: 'Renamed' } }),
      409,
      'conflict',
    );
    const view = (await (await d.req(`${SRC}/kind-fixed`)).json()) as Json;
    expect(view).toMatchObject({ kind: 'screen_snapshot', display_name: 'K' });
    // Naming the same kind is fine.
    const same = await d.req(`${SRC}/kind-fixed`, { method: 'PATCH', json: { kind: 'screen_snapshot', display_name: 'K2' } });
    expect(same.status).toBe(200);
    expect(((await same.json()) as Json).display_name).toBe('K2');
  });

  it('answers bad JSON with bad_request and schema problems with validation_failed', async () => {
    await expectProblem(
      await d.req(SRC, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } }),
      400,
      'bad_request',
    );
    const missing = await expectProblem(await d.req(SRC, { method: 'POST', json: { source_id: 'no-kind' } }), 400, 'validation_failed');
    expect(missing.errors.map((e: Json) => e.path).sort()).toEqual(['display_name', 'kind']);
    const bad = await expectProblem(
      await d.req(SRC, { method: 'POST', json: { source_id: 'bad-kind', display_name: 'X', kind: 'lidar', retention_seconds: 0 } }),
      400,
      'validation_failed',
    );
    expect(bad.errors.map((e: Json) => e.path).sort()).toEqual(['kind', 'retention_seconds']);
    await expectProblem(await d.req(`${SRC}/no-kind`), 404, 'not_found');
  });

  it('refuses an admin body over the configured limit with 413 and an empty one with 400', async () => {
    const huge = { source_id: 'huge', display_name: 'x'.repeat(300 * 1024), kind: 'screen_snapshot' };
    await expectProblem(await d.req(SRC, { method: 'POST', json: huge }), 413, 'payload_too_large');
    await expectProblem(await d.req(SRC, { method: 'POST', headers: { 'content-type': 'application/json' } }), 400, 'bad_request');
    await expectProblem(await d.req(`${SRC}/huge`), 404, 'not_found');
  });
});

describe('path-unsafe source ids', () => {
  const longId = 'a'.repeat(129);

  it.each([
    ['..', '..'],
    ['.', '.'],
    ['a/b', 'a/b'],
    ['129 characters', longId],
    ['a space', 'has space'],
    ['non-ASCII', 'café'],
    ['empty', ''],
  ])('refuses %s as a source_id on create with 400 and creates nothing', async (_name, id) => {
    const before = (await (await d.req(`${SRC}?limit=1000`)).json()) as Json[];
    const body = await expectProblem(
      await d.req(SRC, { method: 'POST', json: { source_id: id, display_name: 'X', kind: 'screen_snapshot' } }),
      400,
      'validation_failed',
    );
    expect(body.errors[0].path).toBe('source_id');
    const after = (await (await d.req(`${SRC}?limit=1000`)).json()) as Json[];
    expect(after.length).toBe(before.length);
  });

  it('accepts exactly 128 safe characters', async () => {
    const id = 'A-z_0.9'.repeat(19).slice(0, 128);
    expect(id.length).toBe(128);
    const created = await createSourceView(d, { source_id: id, display_name: 'Long', kind: 'screen_snapshot' });
    expect(created.source_id).toBe(id);
  });

  // Dot segments are refused from the raw request target (the server would otherwise resolve them
  // into a different route); any other unsafe id is simply unknown: 404 on admin routes, and on
  // the upload route the same 401 as an unknown source (as Kheish answers), never touching the disk.
  const unsafePaths: Array<[string, string]> = [
    ['..', 'bad_request'],
    ['%2E%2E', 'bad_request'],
    ['%2e.', 'bad_request'],
    ['.', 'bad_request'],
    ['a%2Fb', 'not_found'],
    ['..%2F..%2Fetc', 'not_found'],
    [longId, 'not_found'],
    ['has%20space', 'not_found'],
    ['%00', 'not_found'],
  ];
  it.each(unsafePaths)('answers %s in the path of every source route with %s', async (seg, code) => {
    const routes: Array<[string, string, unknown]> = [
      ['GET', `${SRC}/${seg}`, undefined],
      ['PATCH', `${SRC}/${seg}`, { display_name: 'X' }],
      ['DELETE', `${SRC}/${seg}`, undefined],
      ['POST', `${SRC}/${seg}/rotate-token`, {}],
      ['POST', `${SRC}/${seg}/revoke-token`, undefined],
      ['POST', `${SRC}/${seg}/observations`, uploadBody(makePng(1, 1, 9), 'k')],
    ];
    for (const [method, path, body] of routes) {
      const r = await rawRequest(d.url, method, path, body);
      const expected = code === 'not_found' && path.endsWith('/observations') ? 'unauthorized' : code;
      const status = { bad_request: 400, not_found: 404, unauthorized: 401 }[expected];
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(r.body).toMatchObject({ status, code: expected });
    }
  });

  it('created nothing for any unsafe id', async () => {
    const all = (await (await d.req(`${SRC}?limit=1000`)).json()) as Json[];
    for (const s of all) expect(s.source_id).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(all.map((s: Json) => s.source_id)).not.toContain('..');
    expect(existsSync(join(d.dataDir, 'etc'))).toBe(false);
  });
});

describe('listing', () => {
  it('pages 25 sources 10 at a time with no duplicates and no gaps', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `page-${String(i).padStart(2, '0')}`);
    for (const id of ids.slice().reverse())
      await createSourceView(d, { source_id: id, display_name: `Paged ${id}`, kind: 'screen_snapshot' });
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `${SRC}?query=page-&limit=10&page=true${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await d.req(q);
      expect(res.status).toBe(200);
      const page = (await res.json()) as Json;
      for (const s of page.items) expect(tokenKeys(s)).toEqual([]);
      sizes.push(page.items.length);
      seen.push(...page.items.map((s: Json) => s.source_id));
      cursor = page.pagination.next_cursor ?? null;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(sizes).toEqual([10, 10, 5]);
    expect(seen).toEqual(ids);
  });

  it('filters by a case-insensitive substring of the id or the display name', async () => {
    await createSourceView(d, { source_id: 'kitchen-cam', display_name: 'Kitchen WEBCAM', kind: 'webcam_snapshot' });
    await createSourceView(d, { source_id: 'MIC-Office', display_name: 'Desk microphone', kind: 'microphone_segment' });
    await createSourceView(d, { source_id: 'garage', display_name: 'Garage webcam', kind: 'webcam_snapshot' });
    const ids = async (query: string) => {
      const res = await d.req(`${SRC}?query=${encodeURIComponent(query)}&limit=1000`);
      expect(res.status).toBe(200);
      return ((await res.json()) as Json).map((s: Json) => s.source_id).sort();
    };
    expect(await ids('webcam')).toEqual(['garage', 'kitchen-cam']);
    expect(await ids('KITCHEN')).toEqual(['kitchen-cam']);
    expect(await ids('mic-off')).toEqual(['MIC-Office']);
    expect(await ids('DESK MICRO')).toEqual(['MIC-Office']);
    expect(await ids('no-such-thing')).toEqual([]);
    // Wildcards are literal, not LIKE patterns.
    expect(await ids('%')).toEqual([]);
    expect(await ids('g_rage')).toEqual([]);
  });

  it('answers a bad cursor with 400 bad_request and bad parameters with 400', async () => {
    await expectProblem(await d.req(`${SRC}?cursor=not-a-cursor`), 400, 'bad_request');
    const foreign = Buffer.from(JSON.stringify(['audit', 'aud_x'])).toString('base64url');
    await expectProblem(await d.req(`${SRC}?cursor=${foreign}`), 400, 'bad_request');
    const wrongShape = Buffer.from(JSON.stringify(['sources', 5])).toString('base64url');
    await expectProblem(await d.req(`${SRC}?cursor=${wrongShape}`), 400, 'bad_request');
    await expectProblem(await d.req(`${SRC}?limit=abc`), 400, 'validation_failed');
    await expectProblem(await d.req(`${SRC}?page=sure`), 400, 'validation_failed');
    // Unknown parameters are ignored, as Kheish ignores them.
    expect((await d.req(`${SRC}?bogus=1`)).status).toBe(200);
    await expectProblem(await d.req(`${SRC}?limit=1&limit=2`), 400, 'bad_request');
  });
});

describe("Kheish's flat rate-limit fields", () => {
  it('are read as ingest_rate_limit; the object wins when both are sent; one flat field keeps the other part', async () => {
    const both = await createSourceView(d, {
      source_id: 'rl-both',
      display_name: 'R',
      kind: 'screen_snapshot',
      ingest_rate_limit: { burst: 5, window_ms: 1000 },
      ingest_rate_limit_window_ms: 60000,
      ingest_rate_limit_burst: 120,
    });
    expect(both).toMatchObject({
      ingest_rate_limit: { burst: 5, window_ms: 1000 },
      ingest_rate_limit_burst: 5,
      ingest_rate_limit_window_ms: 1000,
    });
    const flat = await createSourceView(d, {
      source_id: 'rl-flat',
      display_name: 'R',
      kind: 'screen_snapshot',
      ingest_rate_limit_burst: 7,
    });
    expect(flat).toMatchObject({
      ingest_rate_limit: { burst: 7, window_ms: 60000 },
      ingest_rate_limit_burst: 7,
      ingest_rate_limit_window_ms: 60000,
    });
    const patched = (await (
      await d.req(`${SRC}/rl-flat`, { method: 'PATCH', json: { ingest_rate_limit_window_ms: 2000 } })
    ).json()) as Json;
    expect(patched.ingest_rate_limit).toEqual({ burst: 7, window_ms: 2000 });
    await expectProblem(await d.req(`${SRC}/rl-flat`, { method: 'PATCH', json: { ingest_rate_limit_burst: 0 } }), 400, 'validation_failed');
  });
});

describe('PATCH', () => {
  it('changes display name, status, limits and policies, and keeps everything else', async () => {
    const created = await createSourceView(d, {
      source_id: 'patch-me',
      display_name: 'Old',
      kind: 'screen_snapshot',
      upload_token: 'patch-me-token-0001',
    });
    const patch = {
      display_name: '  New name  ',
      status: 'paused',
      retention_seconds: 3600,
      max_active_observations: 10,
      max_active_bytes: 1_000_000,
      quota_policy: 'reject',
      purge_raw_on_retention: false,
      allow_materialization: false,
      allow_output_delivery: true,
      sensitivity: 'sensitive',
      auto_derive: ['canonical_text'],
      ingest_rate_limit: { burst: 5, window_ms: 1000 },
    };
    const res = await d.req(`${SRC}/patch-me`, { method: 'PATCH', json: patch });
    expect(res.status).toBe(200);
    const patched = (await res.json()) as Json;
    // Every patched value as sent, but the display name trimmed.
    const expected = {
      source_id: 'patch-me',
      kind: 'screen_snapshot',
      ...patch,
      display_name: 'New name',
      ingest_rate_limit_burst: 5,
      ingest_rate_limit_window_ms: 1000,
      upload_token_version: 1,
      created_at_ms: created.created_at_ms,
    };
    expect(patched).toMatchObject(expected);
    expect(tokenKeys(patched)).toEqual([]);
    expect((await (await d.req(`${SRC}/patch-me`)).json()) as Json).toMatchObject(expected);

    // A partial patch touches only what it names; null clears the rate limit.
    const again = (await (
      await d.req(`${SRC}/patch-me`, { method: 'PATCH', json: { status: 'active', ingest_rate_limit: null } })
    ).json()) as Json;
    expect(again).toMatchObject({
      ...expected,
      status: 'active',
      ingest_rate_limit: null,
      ingest_rate_limit_burst: Number.MAX_SAFE_INTEGER,
      ingest_rate_limit_window_ms: 60_000,
    });
    // The token survives a patch.
    const up = await upload(d, 'patch-me', 'patch-me-token-0001', makePng(2, 2, 5), 'k1');
    expect(up.status).toBe(201);
    // auto_derive now runs OCR on it in the background: let it settle so its result blob does
    // not land in a later test's snapshot of the blob directory.
    const { observation_id } = (await up.json()) as Json;
    const deadline = Date.now() + 20_000;
    let status: unknown = 'pending';
    while ((status === 'pending' || status === 'processing') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      status = ((await (await d.req(`/v1/observations/${observation_id}`)).json()) as Json).processing_status;
    }
    expect(status).toBe('completed');
  });

  it('ignores unknown fields (as Kheish), refuses bad values with validation_failed and changes nothing', async () => {
    await createSourceView(d, { source_id: 'patch-bad', display_name: 'Keep', kind: 'screen_snapshot' });
    const unknown = await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: { colour: 'red' } });
    expect(unknown.status).toBe(200);
    expect((await unknown.json()) as Json).not.toHaveProperty('colour');
    // Tokens are managed by rotate-token, not PATCH.
    await expectProblem(
      await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: { upload_token: 'a-token-of-enough-length' } }),
      400,
      'validation_failed',
    );
    await expectProblem(await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: { status: 'sleeping' } }), 400, 'validation_failed');
    await expectProblem(await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: { max_active_bytes: -1 } }), 400, 'validation_failed');
    await expectProblem(await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: { display_name: '   ' } }), 400, 'validation_failed');
    await expectProblem(
      await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: { ingest_rate_limit: { burst: 0, window_ms: 10 } } }),
      400,
      'validation_failed',
    );
    await expectProblem(await d.req(`${SRC}/patch-bad`, { method: 'PATCH', json: [] }), 400, 'validation_failed');
    await expectProblem(
      await d.req(`${SRC}/patch-bad`, { method: 'PATCH', body: 'x', headers: { 'content-type': 'application/json' } }),
      400,
      'bad_request',
    );
    expect((await (await d.req(`${SRC}/patch-bad`)).json()) as Json).toMatchObject({ display_name: 'Keep', status: 'active' });
  });

  it('answers 404 for an unknown source', async () => {
    await expectProblem(await d.req(`${SRC}/nobody-here`, { method: 'PATCH', json: { display_name: 'X' } }), 404, 'not_found');
    await expectProblem(await d.req(`${SRC}/nobody-here`, { method: 'DELETE' }), 404, 'not_found');
    await expectProblem(await d.req(`${SRC}/nobody-here/rotate-token`, { method: 'POST' }), 404, 'not_found');
    await expectProblem(await d.req(`${SRC}/nobody-here/revoke-token`, { method: 'POST' }), 404, 'not_found');
  });
});

describe('upload tokens', () => {
  it('answers an unknown source and a wrong token with the same 401 status and body', async () => {
    await createSourceView(d, { source_id: 'tok-known', display_name: 'K', kind: 'screen_snapshot', upload_token: 'tok-known-token-0001' });
    const png = makePng(2, 2, 6);
    const wrong = await upload(d, 'tok-known', 'tok-known-token-XXXX', png, 'k1');
    const unknown = await upload(d, 'tok-unknown', 'tok-known-token-0001', png, 'k1');
    const none = await upload(d, 'tok-known', undefined, png, 'k1');
    const unknownNone = await upload(d, 'tok-unknown', undefined, png, 'k1');
    const bodies = [];
    for (const r of [wrong, unknown, none, unknownNone]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      bodies.push(await r.text());
    }
    expect(new Set(bodies).size).toBe(1);
    expect(JSON.parse(bodies[0])).toMatchObject({ code: 'unauthorized', status: 401 });
    expect(bodies[0]).not.toContain('tok-known');
  });

  it('answers a valid token on a paused or disabled source with 403, a wrong one still 401', async () => {
    const token = 'tok-status-token-0001';
    await createSourceView(d, { source_id: 'tok-status', display_name: 'S', kind: 'screen_snapshot', upload_token: token });
    const png = makePng(2, 2, 7);
    for (const status of ['paused', 'disabled']) {
      expect((await d.req(`${SRC}/tok-status`, { method: 'PATCH', json: { status } })).status).toBe(200);
      const body = await expectProblem(await upload(d, 'tok-status', token, png, `k-${status}`), 403, 'forbidden');
      expect(body.detail).toContain(status);
      await expectProblem(await upload(d, 'tok-status', 'not-the-right-token-00', png, `k-${status}`), 401, 'unauthorized');
    }
    expect((await d.req(`${SRC}/tok-status`, { method: 'PATCH', json: { status: 'active' } })).status).toBe(200);
    expect((await upload(d, 'tok-status', token, png, 'k-active')).status).toBe(201);
  });

  it('rotates without grace: the old token stops at once; a generated new one is returned once', async () => {
    const old = 'rot-now-token-000001';
    await createSourceView(d, { source_id: 'rot-now', display_name: 'R', kind: 'screen_snapshot', upload_token: old });
    const res = await d.req(`${SRC}/rot-now/rotate-token`, { method: 'POST' });
    expect(res.status).toBe(200);
    const rotated = (await res.json()) as Json;
    expect(rotated.upload_token).toMatch(/^obt_/);
    expect(rotated.upload_token_version).toBe(2);
    expect(tokenKeys(rotated)).toEqual(['upload_token']);
    await expectProblem(await upload(d, 'rot-now', old, makePng(2, 2, 8), 'k1'), 401, 'unauthorized');
    expect((await upload(d, 'rot-now', rotated.upload_token, makePng(2, 2, 8), 'k2')).status).toBe(201);
    const view = (await (await d.req(`${SRC}/rot-now`)).json()) as Json;
    expect(tokenKeys(view)).toEqual([]);
    expect(JSON.stringify(view)).not.toContain(rotated.upload_token);

    // A client-chosen new token is not echoed; a short one is refused and changes nothing.
    const chosen = await d.req(`${SRC}/rot-now/rotate-token`, { method: 'POST', json: { upload_token: 'rot-now-token-000002' } });
    expect(chosen.status).toBe(200);
    const chosenView = (await chosen.json()) as Json;
    expect(tokenKeys(chosenView)).toEqual([]);
    expect(chosenView.upload_token_version).toBe(3);
    await expectProblem(
      await d.req(`${SRC}/rot-now/rotate-token`, { method: 'POST', json: { upload_token: 'short' } }),
      400,
      'validation_failed',
    );
    await expectProblem(
      await d.req(`${SRC}/rot-now/rotate-token`, { method: 'POST', json: { grace_period_ms: -1 } }),
      400,
      'validation_failed',
    );
    // Unknown fields are ignored, as Kheish ignores them: `{extra}` rotates to a generated token.
    const extra = (await (await d.req(`${SRC}/rot-now/rotate-token`, { method: 'POST', json: { extra: 1 } })).json()) as Json;
    expect(extra.upload_token_version).toBe(4);
    expect((await d.req(`${SRC}/rot-now/rotate-token`, { method: 'POST', json: { upload_token: 'rot-now-token-000002' } })).status).toBe(
      200,
    );
    expect(((await (await d.req(`${SRC}/rot-now`)).json()) as Json).upload_token_version).toBe(5);
    expect((await upload(d, 'rot-now', 'rot-now-token-000002', makePng(2, 2, 8), 'k3')).status).toBe(201);
  });

  it('revoke-token makes every token fail with 401 until a rotation', async () => {
    const old = 'rev-token-0000000001';
    await createSourceView(d, { source_id: 'rev', display_name: 'R', kind: 'screen_snapshot', upload_token: old });
    const rotated = (await (
      await d.req(`${SRC}/rev/rotate-token`, { method: 'POST', json: { grace_period_ms: 3_600_000 } })
    ).json()) as Json;
    const png = makePng(2, 2, 10);
    expect((await upload(d, 'rev', old, png, 'k1')).status).toBe(201);
    const res = await d.req(`${SRC}/rev/revoke-token`, { method: 'POST' });
    expect(res.status).toBe(200);
    const view = (await res.json()) as Json;
    expect(view.upload_token_active).toBe(false);
    expect(tokenKeys(view)).toEqual([]);
    await expectProblem(await upload(d, 'rev', old, png, 'k2'), 401, 'unauthorized');
    await expectProblem(await upload(d, 'rev', rotated.upload_token, png, 'k3'), 401, 'unauthorized');
    // An empty-looking token does not match a revoked (null) hash either.
    await expectProblem(
      await d.req(`${SRC}/rev/observations`, { method: 'POST', headers: { authorization: 'Bearer ' }, json: uploadBody(png, 'k4') }),
      401,
      'unauthorized',
    );
    const fresh = (await (await d.req(`${SRC}/rev/rotate-token`, { method: 'POST' })).json()) as Json;
    expect(fresh.upload_token_active).toBe(true);
    expect((await upload(d, 'rev', fresh.upload_token, png, 'k5')).status).toBe(201);
    await expectProblem(await upload(d, 'rev', rotated.upload_token, png, 'k6'), 401, 'unauthorized');
  });
});

describe('rotation grace with an injected clock', () => {
  const clock = testClock();
  let cd: TestDaemon;
  beforeAll(async () => {
    cd = await startDaemon({}, { now: clock });
  });
  afterAll(() => cd.close());

  it('keeps the old token valid until the grace ends, then 401; the new token works throughout', async () => {
    const old = 'grace-old-token-0001';
    const fresh = 'grace-new-token-0001';
    await createSourceView(cd, { source_id: 'grace', display_name: 'G', kind: 'screen_snapshot', upload_token: old });
    const res = await cd.req(`${SRC}/grace/rotate-token`, { method: 'POST', json: { upload_token: fresh, grace_period_ms: 60_000 } });
    expect(res.status).toBe(200);
    expect(tokenKeys((await res.json()) as Json)).toEqual([]);
    const png = makePng(3, 3, 11);
    let n = 0;
    const up = (token: string) => upload(cd, 'grace', token, png, `k${n++}`);
    expect((await up(old)).status).toBe(201);
    expect((await up(fresh)).status).toBe(201);
    clock.advance(59_999);
    expect((await up(old)).status).toBe(201);
    clock.advance(1);
    await expectProblem(await up(old), 401, 'unauthorized');
    expect((await up(fresh)).status).toBe(201);
    clock.advance(24 * 3600 * 1000);
    await expectProblem(await up(old), 401, 'unauthorized');
    expect((await up(fresh)).status).toBe(201);
  });

  it('a second rotation ends the first grace: only the newest previous token survives', async () => {
    const t1 = 'chain-token-00000001';
    await createSourceView(cd, { source_id: 'chain', display_name: 'C', kind: 'screen_snapshot', upload_token: t1 });
    await cd.req(`${SRC}/chain/rotate-token`, { method: 'POST', json: { upload_token: 'chain-token-00000002', grace_period_ms: 60_000 } });
    await cd.req(`${SRC}/chain/rotate-token`, { method: 'POST', json: { upload_token: 'chain-token-00000003', grace_period_ms: 60_000 } });
    const png = makePng(3, 3, 12);
    await expectProblem(await upload(cd, 'chain', t1, png, 'a'), 401, 'unauthorized');
    expect((await upload(cd, 'chain', 'chain-token-00000002', png, 'b')).status).toBe(201);
    expect((await upload(cd, 'chain', 'chain-token-00000003', png, 'c')).status).toBe(201);
  });
});

describe('DELETE', () => {
  it('removes the source and its observations and erases only blobs nothing else references', async () => {
    const a = await createSourceView(d, { source_id: 'del-a', display_name: 'A', kind: 'screen_snapshot' });
    const b = await createSourceView(d, { source_id: 'del-b', display_name: 'B', kind: 'screen_snapshot' });
    const shared = makePng(5, 5, 101);
    const onlyA = makePng(5, 5, 102);
    const onlyB = makePng(5, 5, 103);
    const before = filesUnder(join(d.dataDir, 'blobs'), 'name').sort();
    const o1 = (await (await upload(d, 'del-a', a.upload_token, shared, 'k1')).json()) as Json;
    const o2 = (await (await upload(d, 'del-a', a.upload_token, onlyA, 'k2', { canonical_text: 'text only in del-a' })).json()) as Json;
    const o3 = (await (await upload(d, 'del-b', b.upload_token, shared, 'k1')).json()) as Json;
    const o4 = (await (await upload(d, 'del-b', b.upload_token, onlyB, 'k2')).json()) as Json;
    expect(o1.asset_id).toBe(o3.asset_id);
    const viewB = (await (await d.req(`${SRC}/del-b`)).json()) as Json;
    expect(viewB).toMatchObject({ active_observation_count: 2, active_byte_length: shared.length + onlyB.length });
    const sha = (o: Json) => o.sha256 as string;
    const textSha = ((await (await d.req(`/v1/assets/${o2.canonical_text_asset_id}`)).json()) as Json).sha256 as string;
    expect(filesUnder(join(d.dataDir, 'blobs'), 'name').sort()).toEqual([...before, sha(o1), sha(o2), sha(o4), textSha].sort());

    const res = await d.req(`${SRC}/del-a`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe('');

    await expectProblem(await d.req(`${SRC}/del-a`), 404, 'not_found');
    const listedA = (await (await d.req('/v1/observations?source_id=del-a&include_purged=true')).json()) as Json;
    expect(listedA).toEqual([]);
    await expectProblem(await d.req(`/v1/observations/${o1.observation_id}`), 404, 'not_found');
    await expectProblem(await d.req(`/v1/observations/${o2.observation_id}`), 404, 'not_found');
    const all = (await (await d.req('/v1/observations?limit=1000&include_purged=true')).json()) as Json;
    const ids = all.map((o: Json) => o.observation_id);
    expect(ids).not.toContain(o1.observation_id);
    expect(ids).toContain(o3.observation_id);
    expect(ids).toContain(o4.observation_id);

    expect(filesUnder(join(d.dataDir, 'blobs'), 'name').sort()).toEqual([...before, sha(o1), sha(o4)].sort());
    await expectProblem(await d.req(`/v1/assets/${o2.asset_id}`), 404, 'not_found');
    await expectProblem(await d.req(`/v1/assets/${o2.canonical_text_asset_id}`), 404, 'not_found');
    const content = await d.req(`/v1/assets/${o3.asset_id}/content`);
    expect(content.status).toBe(200);
    expect(Buffer.from(await content.arrayBuffer()).equals(shared)).toBe(true);

    // The old token is dead and the id can be created afresh with nothing carried over.
    await expectProblem(await upload(d, 'del-a', a.upload_token, shared, 'k9'), 401, 'unauthorized');
    const again = await createSourceView(d, { source_id: 'del-a', display_name: 'A again', kind: 'webcam_snapshot' });
    expect(again).toMatchObject({ kind: 'webcam_snapshot', active_observation_count: 0, active_byte_length: 0, upload_token_version: 1 });

    // Deleting the other source frees the last holder of the shared blob.
    expect((await d.req(`${SRC}/del-b`, { method: 'DELETE' })).status).toBe(204);
    expect(filesUnder(join(d.dataDir, 'blobs'), 'name').sort()).toEqual(before);
  });
});
