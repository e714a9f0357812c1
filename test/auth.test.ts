import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { makePng, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

type Json = Record<string, any>;

const SRC = '/v1/observation-sources';
const ADMIN = 'admin-token-for-tests-0123456789';
const READER = 'readonly-token-for-tests-98765';

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
});
afterAll(() => d.close());

describe('admin auth with a configured admin token', () => {
  const SOURCE_TOKEN = 'auth-source-token-0001';
  let obsId = '';
  let assetId = '';

  beforeAll(async () => {
    const res = await d.req(SRC, {
      method: 'POST',
      token: ADMIN,
      json: { source_id: 'auth-src', display_name: 'A', kind: 'screen_snapshot', upload_token: SOURCE_TOKEN },
    });
    expect(res.status).toBe(201);
    const up = await d.req(`${SRC}/auth-src/observations`, {
      method: 'POST',
      token: SOURCE_TOKEN,
      json: uploadBody(makePng(2, 2, 1), 'k0'),
    });
    expect(up.status).toBe(201);
    const obs = (await up.json()) as Json;
    obsId = obs.observation_id;
    assetId = obs.asset_id;
  });

  type Row = {
    name: string;
    method: string;
    path: () => string;
    token?: string;
    auth?: string;
    json?: unknown;
    body?: string;
    status: number;
    code?: string;
  };
  const rows: Row[] = [
    { name: 'no token lists sources', method: 'GET', path: () => SRC, status: 401, code: 'unauthorized' },
    { name: 'no token reads a source', method: 'GET', path: () => `${SRC}/auth-src`, status: 401, code: 'unauthorized' },
    { name: 'no token reads the audit', method: 'GET', path: () => '/v1/observation-audit', status: 401, code: 'unauthorized' },
    { name: 'no token lists observations', method: 'GET', path: () => '/v1/observations', status: 401, code: 'unauthorized' },
    {
      name: 'no token creates',
      method: 'POST',
      path: () => SRC,
      json: { display_name: 'X', kind: 'screen_snapshot' },
      status: 401,
      code: 'unauthorized',
    },
    { name: 'no token, bad JSON: auth comes first', method: 'POST', path: () => SRC, body: '{oops', status: 401, code: 'unauthorized' },
    { name: 'wrong token', method: 'GET', path: () => SRC, token: 'not-the-admin-token-000000', status: 401, code: 'unauthorized' },
    { name: 'admin token prefix', method: 'GET', path: () => SRC, token: ADMIN.slice(0, -1), status: 401, code: 'unauthorized' },
    { name: 'a source upload token', method: 'GET', path: () => SRC, token: SOURCE_TOKEN, status: 401, code: 'unauthorized' },
    { name: 'Basic scheme', method: 'GET', path: () => SRC, auth: `Basic ${ADMIN}`, status: 401, code: 'unauthorized' },
    { name: 'bare token without scheme', method: 'GET', path: () => SRC, auth: ADMIN, status: 401, code: 'unauthorized' },
    { name: 'admin lists sources', method: 'GET', path: () => SRC, token: ADMIN, status: 200 },
    { name: 'lowercase bearer scheme', method: 'GET', path: () => SRC, auth: `bearer ${ADMIN}`, status: 200 },
    { name: 'reader lists sources', method: 'GET', path: () => SRC, token: READER, status: 200 },
    { name: 'reader reads a source', method: 'GET', path: () => `${SRC}/auth-src`, token: READER, status: 200 },
    { name: 'reader reads the audit', method: 'GET', path: () => '/v1/observation-audit', token: READER, status: 200 },
    { name: 'reader lists observations', method: 'GET', path: () => '/v1/observations', token: READER, status: 200 },
    { name: 'reader reads an observation', method: 'GET', path: () => `/v1/observations/${obsId}`, token: READER, status: 200 },
    { name: 'reader reads asset metadata', method: 'GET', path: () => `/v1/assets/${assetId}`, token: READER, status: 200 },
    {
      name: 'reader reads content of a sensitive source',
      method: 'GET',
      path: () => `/v1/assets/${assetId}/content`,
      token: READER,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'admin reads content of a sensitive source',
      method: 'GET',
      path: () => `/v1/assets/${assetId}/content`,
      token: ADMIN,
      status: 200,
    },
    { name: 'no token reads content', method: 'GET', path: () => `/v1/assets/${assetId}/content`, status: 401, code: 'unauthorized' },
    {
      name: 'reader creates',
      method: 'POST',
      path: () => SRC,
      token: READER,
      json: { source_id: 'by-reader', display_name: 'X', kind: 'screen_snapshot' },
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'reader, invalid body: auth comes first',
      method: 'POST',
      path: () => SRC,
      token: READER,
      json: { nonsense: true },
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'reader patches',
      method: 'PATCH',
      path: () => `${SRC}/auth-src`,
      token: READER,
      json: { display_name: 'Hijacked' },
      status: 403,
      code: 'forbidden',
    },
    { name: 'reader deletes a source', method: 'DELETE', path: () => `${SRC}/auth-src`, token: READER, status: 403, code: 'forbidden' },
    {
      name: 'reader rotates',
      method: 'POST',
      path: () => `${SRC}/auth-src/rotate-token`,
      token: READER,
      json: {},
      status: 403,
      code: 'forbidden',
    },
    { name: 'reader revokes', method: 'POST', path: () => `${SRC}/auth-src/revoke-token`, token: READER, status: 403, code: 'forbidden' },
    {
      name: 'reader deletes an observation',
      method: 'DELETE',
      path: () => `/v1/observations/${obsId}`,
      token: READER,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'no token patches',
      method: 'PATCH',
      path: () => `${SRC}/auth-src`,
      json: { display_name: 'Hijacked' },
      status: 401,
      code: 'unauthorized',
    },
    { name: 'no token deletes', method: 'DELETE', path: () => `${SRC}/auth-src`, status: 401, code: 'unauthorized' },
    { name: 'no token rotates', method: 'POST', path: () => `${SRC}/auth-src/rotate-token`, status: 401, code: 'unauthorized' },
    {
      name: 'upload with the admin token',
      method: 'POST',
      path: () => `${SRC}/auth-src/observations`,
      token: ADMIN,
      json: uploadBody(makePng(2, 2, 2), 'k-admin'),
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'upload with the reader token',
      method: 'POST',
      path: () => `${SRC}/auth-src/observations`,
      token: READER,
      json: uploadBody(makePng(2, 2, 2), 'k-reader'),
      status: 401,
      code: 'unauthorized',
    },
    { name: 'liveness needs no token', method: 'GET', path: () => '/livez', status: 200 },
  ];

  it.each(rows)('$name → $status', async (row) => {
    const headers: Record<string, string> = {};
    if (row.auth) headers.authorization = row.auth;
    if (row.body !== undefined) headers['content-type'] = 'application/json';
    const res = await d.req(row.path(), { method: row.method, token: row.token, json: row.json, body: row.body, headers });
    if (row.code) {
      const body = await expectProblem(res, row.status, row.code);
      expect(JSON.stringify(body)).not.toContain(ADMIN);
    } else {
      expect(res.status).toBe(row.status);
    }
  });

  it('left everything as it was after the refused writes', async () => {
    const src = (await (await d.req(`${SRC}/auth-src`, { token: ADMIN })).json()) as Json;
    expect(src).toMatchObject({ display_name: 'A', upload_token_version: 1, upload_token_active: true, active_observation_count: 1 });
    await expectProblem(await d.req(`${SRC}/by-reader`, { token: ADMIN }), 404, 'not_found');
    expect((await d.req(`/v1/observations/${obsId}`, { token: ADMIN })).status).toBe(200);
  });

  it('upload routes take the source token without any admin token', async () => {
    const res = await d.req(`${SRC}/auth-src/observations`, {
      method: 'POST',
      token: SOURCE_TOKEN,
      json: uploadBody(makePng(2, 2, 3), 'k-src'),
    });
    expect(res.status).toBe(201);
  });

  it('admin writes work end to end', async () => {
    const created = await d.req(SRC, {
      method: 'POST',
      token: ADMIN,
      json: { source_id: 'admin-made', display_name: 'M', kind: 'webcam_snapshot' },
    });
    expect(created.status).toBe(201);
    expect((await d.req(`${SRC}/admin-made`, { method: 'PATCH', token: ADMIN, json: { status: 'paused' } })).status).toBe(200);
    expect((await d.req(`${SRC}/admin-made/rotate-token`, { method: 'POST', token: ADMIN })).status).toBe(200);
    expect((await d.req(`${SRC}/admin-made/revoke-token`, { method: 'POST', token: ADMIN })).status).toBe(200);
    expect((await d.req(`${SRC}/admin-made`, { method: 'DELETE', token: ADMIN })).status).toBe(204);
  });
});

describe('without an admin token (loopback only)', () => {
  it('serves admin routes to any local caller', async () => {
    const open = await startDaemon();
    try {
      expect((await open.req(SRC)).status).toBe(200);
      expect(
        (await open.req(SRC, { method: 'POST', json: { source_id: 'open', display_name: 'O', kind: 'screen_snapshot' } })).status,
      ).toBe(201);
    } finally {
      await open.close();
    }
  });
});

describe('tokens never leak; the audit trail records source changes', () => {
  const bodies: Array<{ what: string; text: string }> = [];
  let t: TestDaemon;
  const CHOSEN = 'leak-chosen-token-AAAA1111';
  const UPSERTED = 'leak-upserted-token-BBBB2222';
  const ROTATED = 'leak-rotated-token-CCCC3333';
  const WRONG = 'leak-wrong-token-DDDD4444';
  const SHORT = 'leakshort-EEEE';
  const generated: string[] = [];

  /** Sends a request as admin and keeps the response body for the final grep. */
  async function call(what: string, path: string, init: RequestInit & { token?: string; json?: unknown } = {}) {
    const res = await t.req(path, { token: ADMIN, ...init });
    const text = await res.text();
    bodies.push({ what, text });
    const json = (res.headers.get('content-type') ?? '').includes('json');
    return { status: res.status, body: (json && text ? JSON.parse(text) : undefined) as Json };
  }
  const create = (what: string, json: Json) => call(what, SRC, { method: 'POST', json });
  /** Uploads a 3×3 PNG of this seed to `source` with this upload token. */
  const upload = (what: string, source: string, token: string, seed: number, key: string) =>
    call(what, `${SRC}/${source}/observations`, { method: 'POST', token, json: uploadBody(makePng(3, 3, seed), key) });

  beforeAll(async () => {
    t = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
    let r = await create('create chosen', { source_id: 'leak-a', display_name: 'Leak A', kind: 'screen_snapshot', upload_token: CHOSEN });
    expect(r.status).toBe(201);
    r = await create('create generated', { source_id: 'leak-b', display_name: 'Leak B', kind: 'screen_snapshot' });
    expect(r.status).toBe(201);
    generated.push(r.body.upload_token);
    r = await create('short token', { source_id: 'leak-c', display_name: 'C', kind: 'screen_snapshot', upload_token: SHORT });
    expect(r.status).toBe(400);
    r = await upload('upload a', 'leak-a', CHOSEN, 1, 'k1');
    expect(r.status).toBe(201);
    r = await create('upsert token', { source_id: 'leak-a', display_name: 'Leak A', kind: 'screen_snapshot', upload_token: UPSERTED });
    expect(r.status).toBe(200);
    r = await call('rotate chosen', `${SRC}/leak-a/rotate-token`, {
      method: 'POST',
      json: { upload_token: ROTATED, grace_period_ms: 60_000 },
    });
    expect(r.status).toBe(200);
    r = await upload('upload old in grace', 'leak-a', UPSERTED, 2, 'k2');
    expect(r.status).toBe(201);
    r = await upload('upload rotated', 'leak-a', ROTATED, 3, 'k3');
    expect(r.status).toBe(201);
    r = await upload('replay', 'leak-a', ROTATED, 3, 'k3');
    expect(r.status).toBe(200);
    r = await upload('upload wrong', 'leak-a', WRONG, 4, 'k4');
    expect(r.status).toBe(401);
    r = await upload('upload b', 'leak-b', generated[0], 5, 'k1');
    expect(r.status).toBe(201);
    r = await call('rotate generated', `${SRC}/leak-b/rotate-token`, { method: 'POST' });
    expect(r.status).toBe(200);
    generated.push(r.body.upload_token);
    r = await call('rotate short', `${SRC}/leak-b/rotate-token`, { method: 'POST', json: { upload_token: SHORT } });
    expect(r.status).toBe(400);
    r = await call('revoke', `${SRC}/leak-a/revoke-token`, { method: 'POST' });
    expect(r.status).toBe(200);
    r = await upload('upload revoked', 'leak-a', ROTATED, 6, 'k6');
    expect(r.status).toBe(401);
    r = await call('patch', `${SRC}/leak-b`, { method: 'PATCH', json: { display_name: 'Leak B2' } });
    expect(r.status).toBe(200);
    r = await call('reader write', `${SRC}/leak-b`, { method: 'PATCH', token: READER, json: { display_name: 'x' } });
    expect(r.status).toBe(403);
    r = await call('delete', `${SRC}/leak-b`, { method: 'DELETE' });
    expect(r.status).toBe(204);
    for (const p of [SRC, `${SRC}/leak-a`, '/v1/observations?include_purged=true', '/metrics']) {
      r = await call(`read ${p}`, p);
      expect(r.status).toBe(200);
    }
  });
  afterAll(() => t.close());

  async function auditAll(query = ''): Promise<Json[]> {
    const out: Json[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 100; i++) {
      const sep = query ? '&' : '';
      const res = await t.req(
        `/v1/observation-audit?${query}${sep}limit=3&page=true${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { token: READER },
      );
      expect(res.status).toBe(200);
      const text = await res.text();
      bodies.push({ what: 'audit', text });
      const page = JSON.parse(text) as Json;
      out.push(...page.items);
      cursor = page.pagination.next_cursor ?? null;
      if (!cursor) return out;
    }
    throw new Error('audit pagination did not end');
  }

  it('generated tokens are distinct and appear only in the one response that returned them', () => {
    expect(generated).toHaveLength(2);
    expect(new Set(generated).size).toBe(2);
    for (const g of generated) {
      expect(g).toMatch(/^obt_/);
      expect(bodies.filter((b) => b.text.includes(g)).map((b) => b.what)).toHaveLength(1);
    }
  });

  it('no response body, log line, audit record or database page contains a token', async () => {
    const audit = await auditAll();
    expect(audit.length).toBeGreaterThan(10);
    const secrets = [ADMIN, READER, CHOSEN, UPSERTED, ROTATED, WRONG, SHORT];
    const dbBytes = readdirSync(t.dataDir)
      .filter((f) => f.startsWith('observd.db'))
      .map((f) => readFileSync(join(t.dataDir, f)).toString('latin1'))
      .join('\n');
    expect(dbBytes.length).toBeGreaterThan(0);
    const logs = t.logs.join('');
    expect(logs).toContain('"status":401');
    for (const s of secrets) {
      for (const b of bodies) expect(b.text, `${b.what} leaks ${s}`).not.toContain(s);
      expect(logs, `logs leak ${s}`).not.toContain(s);
      expect(JSON.stringify(audit), `audit leaks ${s}`).not.toContain(s);
      expect(dbBytes, `database holds ${s}`).not.toContain(s);
    }
    for (const g of generated) {
      expect(logs).not.toContain(g);
      expect(JSON.stringify(audit)).not.toContain(g);
      expect(dbBytes).not.toContain(g);
    }
  });

  it('lists source events newest first, filtered by source_id', async () => {
    const a = await auditAll('source_id=leak-a');
    expect(a.every((e) => e.source_id === 'leak-a')).toBe(true);
    const sourceEvents = a.map((e) => e.event).filter((e) => e.startsWith('source_'));
    expect(sourceEvents).toEqual(['source_token_revoked', 'source_token_rotated', 'source_rotated', 'source_created']);
    const rejected = a.filter((e) => e.event === 'upload_rejected');
    expect(rejected.map((e) => [e.reason, e.detail.code])).toEqual([
      ['revoked_token', 'unauthorized'],
      ['invalid_token', 'unauthorized'],
    ]);
    expect(a.filter((e) => e.event === 'upload_succeeded')).toHaveLength(3);
    expect(a.filter((e) => e.event === 'upload_replayed')).toHaveLength(1);
    const ids = a.map((e) => e.audit_id);
    expect(ids).toEqual([...ids].sort().reverse());

    const b = await auditAll('source_id=leak-b');
    expect(b.map((e) => e.event).filter((e) => e !== 'upload_succeeded')).toEqual([
      'source_deleted',
      'source_updated',
      'source_token_rotated',
      'source_created',
    ]);
    expect(b[0].detail).toMatchObject({ observations_deleted: 1, blobs_erased: 1 });
    expect(await auditAll('source_id=leak-c')).toEqual([]);
  });

  it('filters by event, and combines filters', async () => {
    const rotated = await auditAll('event=source_token_rotated');
    expect(rotated.map((e) => e.source_id)).toEqual(['leak-b', 'leak-a']);
    expect(rotated[1].detail).toMatchObject({ grace_period_ms: 60_000 });
    expect((await auditAll('event=source_token_revoked')).map((e) => e.source_id)).toEqual(['leak-a']);
    expect((await auditAll('event=source_deleted')).map((e) => e.source_id)).toEqual(['leak-b']);
    expect((await auditAll('event=source_created')).map((e) => e.source_id)).toEqual(['leak-b', 'leak-a']);
    expect(await auditAll('event=source_created&source_id=leak-a')).toHaveLength(1);
  });

  it('pages with a cursor: every record exactly once, same as one big page', async () => {
    const paged = await auditAll();
    const res = await t.req('/v1/observation-audit?limit=1000', { token: ADMIN });
    const whole = (await res.json()) as Json[];
    expect(paged.map((e) => e.audit_id)).toEqual(whole.map((e) => e.audit_id));
    expect(new Set(paged.map((e) => e.audit_id)).size).toBe(paged.length);
  });

  it('refuses bad audit queries with 400', async () => {
    await expectProblem(await t.req('/v1/observation-audit?cursor=garbage', { token: ADMIN }), 400, 'bad_request');
    const sourcesCursor = Buffer.from(JSON.stringify(['sources', 'leak-a'])).toString('base64url');
    await expectProblem(await t.req(`/v1/observation-audit?cursor=${sourcesCursor}`, { token: ADMIN }), 400, 'bad_request');
    await expectProblem(await t.req('/v1/observation-audit?limit=abc', { token: ADMIN }), 400, 'validation_failed');
    // As in Kheish, `event` is a free string: an unknown name matches nothing.
    expect(await (await t.req('/v1/observation-audit?event=no_such_event', { token: ADMIN })).json()).toEqual([]);
  });
});
