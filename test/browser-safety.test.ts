import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';
import { expectProblemBody } from './helpers/problem.js';

type Json = Record<string, any>;
interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => Json;
}

/** One HTTP request with exactly these headers (Host and Origin included), as a browser would send it. */
function send(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: !('host' in headers) }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) as Json }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function expectProblem(r: Raw, status: number, code: string) {
  expect({ status: r.status, text: r.text }).toMatchObject({ status });
  expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
  expectProblemBody(r.json(), status, code);
  // Never permissive CORS: a refused page cannot even read the refusal.
  expect(r.headers['access-control-allow-origin']).toBeUndefined();
}

const EVIL = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' };
const TEXT = { 'content-type': 'text/plain;charset=UTF-8' };

describe('browser safety in the default loopback-open mode (no admin token)', () => {
  let d: TestDaemon;
  let port = 0;
  let token = '';
  let obsId = '';
  let assetId = '';

  beforeAll(async () => {
    d = await startDaemon();
    port = Number(new URL(d.url).port);
    token = await createSource(d, { source_id: 'cam', display_name: 'cam', kind: 'screen_snapshot' });
    const up = await d.req('/v1/observation-sources/cam/observations', { method: 'POST', token, json: uploadBody(makePng(2, 2, 1), 'k1') });
    expect(up.status).toBe(201);
    const obs = (await up.json()) as Json;
    obsId = obs.observation_id;
    assetId = obs.asset_id;
  });
  afterAll(() => d.close());

  // Lists are bare arrays or `{data}` pages, depending on the list shape of the day.
  const list = async (path: string) => {
    const j = (await (await d.req(path)).json()) as Json;
    return (Array.isArray(j) ? j : (j.data ?? j.items)) as Json[];
  };
  const state = async () => ({
    sources: (await list('/v1/observation-sources')).map((s) => [s.source_id, s.upload_token_version, s.upload_token_revoked_at_ms]),
    observations: (await list('/v1/observations?source_id=cam')).length,
    runs: (await list('/v1/runs')).length,
  });

  const createBody = JSON.stringify({
    source_id: 'planted',
    display_name: 'planted',
    kind: 'screen_snapshot',
    upload_token: 'attacker-chosen-token-0001',
  });
  const attacks: Array<{
    name: string;
    method: string;
    path: () => string;
    headers: () => Record<string, string>;
    body?: () => string;
    status: number;
    code: string;
  }> = [
    {
      name: 'a cross-site text/plain fetch creating a source',
      method: 'POST',
      path: () => '/v1/observation-sources',
      headers: () => ({ ...EVIL, ...TEXT }),
      body: () => createBody,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'the same with the Origin stripped (text/plain is never parsed)',
      method: 'POST',
      path: () => '/v1/observation-sources',
      headers: () => TEXT,
      body: () => createBody,
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'the same as a form post',
      method: 'POST',
      path: () => '/v1/observation-sources',
      headers: () => ({ 'content-type': 'application/x-www-form-urlencoded' }),
      body: () => 'display_name=x&kind=screen_snapshot',
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'multipart to a JSON route',
      method: 'POST',
      path: () => '/v1/observation-sources',
      headers: () => ({ 'content-type': 'multipart/form-data; boundary=x' }),
      body: () => '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a cross-site JSON upload with the token',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/observations',
      headers: () => ({ ...EVIL, ...TEXT, authorization: `Bearer ${token}` }),
      body: () => JSON.stringify(uploadBody(makePng(2, 2, 9), 'evil')),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a text/plain upload with no Origin',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/observations',
      headers: () => ({ ...TEXT, authorization: `Bearer ${token}` }),
      body: () => JSON.stringify(uploadBody(makePng(2, 2, 9), 'evil2')),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'a text/plain upload with a wrong token (authentication comes first)',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/observations',
      headers: () => ({ ...TEXT, authorization: 'Bearer not-the-token-0000000' }),
      body: () => '{}',
      status: 401,
      code: 'unauthorized',
    },
    {
      name: 'a cross-site token rotation (no body)',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/rotate-token',
      headers: () => EVIL,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a cross-site token rotation (text/plain body)',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/rotate-token',
      headers: () => ({ ...EVIL, ...TEXT }),
      body: () => '{"upload_token":"attacker-chosen-token-0002"}',
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a cross-site token revocation',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/revoke-token',
      headers: () => EVIL,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a cross-site source deletion',
      method: 'DELETE',
      path: () => '/v1/observation-sources/cam',
      headers: () => EVIL,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a cross-site observation deletion',
      method: 'DELETE',
      path: () => `/v1/observations/${obsId}`,
      headers: () => EVIL,
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a cross-site materialization',
      method: 'POST',
      path: () => '/v1/observation-materializations',
      headers: () => ({ ...EVIL, ...TEXT }),
      body: () =>
        JSON.stringify({ target_session_id: 's', selection: { type: 'latest_from_source', source_id: 'cam' }, request: { prompt: 'x' } }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a text/plain materialization with no Origin',
      method: 'POST',
      path: () => '/v1/observation-materializations',
      headers: () => TEXT,
      body: () =>
        JSON.stringify({ target_session_id: 's', selection: { type: 'latest_from_source', source_id: 'cam' }, request: { prompt: 'x' } }),
      status: 415,
      code: 'unsupported_media_type',
    },
    {
      name: 'Sec-Fetch-Site: cross-site without an Origin',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/revoke-token',
      headers: () => ({ 'sec-fetch-site': 'cross-site' }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'Sec-Fetch-Site: same-site (another port of localhost)',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/revoke-token',
      headers: () => ({ origin: 'http://localhost:3000', 'sec-fetch-site': 'same-site' }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a sandboxed page (Origin: null)',
      method: 'POST',
      path: () => '/v1/observation-sources/cam/revoke-token',
      headers: () => ({ origin: 'null' }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a DNS-rebinding page listing observations',
      method: 'GET',
      path: () => '/v1/observations',
      headers: () => ({ host: `evil.example:${port}` }),
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'a DNS-rebinding page downloading a screenshot',
      method: 'GET',
      path: () => `/v1/assets/${assetId}/content`,
      headers: () => ({ host: `evil.example:${port}` }),
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'a rebound name on a future route (refused before routing)',
      method: 'GET',
      path: () => '/console',
      headers: () => ({ host: `evil.example:${port}` }),
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'a rebound name posting to /mcp',
      method: 'POST',
      path: () => '/mcp',
      headers: () => ({ host: `evil.example:${port}`, 'content-type': 'application/json' }),
      body: () => '{}',
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'a cross-site page calling an MCP tool',
      method: 'POST',
      path: () => '/mcp',
      headers: () => ({ ...EVIL, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }),
      body: () => JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'list_sources', arguments: {} } }),
      status: 403,
      code: 'forbidden',
    },
    {
      name: 'a loopback name on another port',
      method: 'GET',
      path: () => '/v1/observations',
      headers: () => ({ host: `127.0.0.1:${port + 1}` }),
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'localhost without a port (port 80)',
      method: 'GET',
      path: () => '/v1/observations',
      headers: () => ({ host: 'localhost' }),
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'a name that merely starts like loopback',
      method: 'GET',
      path: () => '/v1/observations',
      headers: () => ({ host: `127.0.0.1.evil.example:${port}` }),
      status: 421,
      code: 'misdirected_request',
    },
    {
      name: 'a cross-site CORS preflight',
      method: 'OPTIONS',
      path: () => '/v1/observation-sources',
      headers: () => ({
        origin: 'https://evil.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      }),
      status: 403,
      code: 'forbidden',
    },
  ];

  it.each(attacks)('$name is refused ($status $code) and changes nothing', async (a) => {
    const before = await state();
    const r = await send(port, a.method, a.path(), a.headers(), a.body?.());
    expectProblem(r, a.status, a.code);
    expect(await state()).toEqual(before);
  });

  it('a cross-site GET gets no CORS header, so the page cannot read the answer', async () => {
    const r = await send(port, 'GET', '/v1/observations', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' });
    expect(r.status).toBe(200);
    expect(r.headers['access-control-allow-origin']).toBeUndefined();
  });

  it.each(['localhost', '127.0.0.1', '127.3.2.1', '[::1]', 'LOCALHOST'])('Host %s with the daemon port is served', async (h) => {
    const r = await send(port, 'GET', `/v1/observations/${obsId}`, { host: `${h}:${port}` });
    expect(r.status).toBe(200);
  });

  it('same-origin pages and non-browser clients keep working', async () => {
    const own = `http://127.0.0.1:${port}`;
    const sameOrigin = { origin: own, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' };
    const created = await send(
      port,
      'POST',
      '/v1/observation-sources',
      sameOrigin,
      JSON.stringify({ source_id: 'page', display_name: 'p', kind: 'screen_snapshot' }),
    );
    expect(created.status).toBe(201);
    const viaLocalhost = await send(port, 'POST', '/v1/observation-sources/page/rotate-token', {
      host: `localhost:${port}`,
      origin: `http://localhost:${port}`,
    });
    expect(viaLocalhost.status).toBe(200);
    const up = await send(
      port,
      'POST',
      '/v1/observation-sources/page/observations',
      { ...sameOrigin, authorization: `Bearer ${viaLocalhost.json().upload_token}` },
      JSON.stringify(uploadBody(makePng(2, 2, 3), 'p1')),
    );
    expect(up.status).toBe(201);
    // curl: no Origin, no Sec-Fetch-*.
    const curl = await send(port, 'POST', '/v1/observation-sources/page/revoke-token', { 'user-agent': 'curl/8.5.0', accept: '*/*' });
    expect(curl.status).toBe(200);
    const del = await send(port, 'DELETE', '/v1/observation-sources/page', { origin: own });
    expect(del.status).toBe(204);
  });
});

describe('browser safety with configured host names and origins', () => {
  let d: TestDaemon;
  let port = 0;
  const CONSOLE = 'https://console.example';

  beforeAll(async () => {
    d = await startDaemon({ http: { allowed_hosts: ['observd.example', 'pinned.example:8443'], allowed_origins: [CONSOLE] } });
    port = Number(new URL(d.url).port);
  });
  afterAll(() => d.close());

  it('serves a configured host name on any port, and a name:port entry only on that port', async () => {
    expect((await send(port, 'GET', '/v1/observation-sources', { host: 'observd.example' })).status).toBe(200);
    expect((await send(port, 'GET', '/v1/observation-sources', { host: 'OBSERVD.example:443' })).status).toBe(200);
    expect((await send(port, 'GET', '/v1/observation-sources', { host: 'pinned.example:8443' })).status).toBe(200);
    expectProblem(await send(port, 'GET', '/v1/observation-sources', { host: 'pinned.example:9000' }), 421, 'misdirected_request');
    expectProblem(await send(port, 'GET', '/v1/observation-sources', { host: 'other.example' }), 421, 'misdirected_request');
  });

  it('an allowed origin may change state and gets CORS headers naming it (never *)', async () => {
    const pre = await send(port, 'OPTIONS', '/v1/observation-sources', {
      origin: CONSOLE,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type, authorization',
    });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe(CONSOLE);
    expect(String(pre.headers['access-control-allow-headers'])).toContain('content-type');
    const r = await send(
      port,
      'POST',
      '/v1/observation-sources',
      { origin: CONSOLE, 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' },
      JSON.stringify({ source_id: 'from-console', display_name: 'c', kind: 'screen_snapshot' }),
    );
    expect(r.status).toBe(201);
    expect(r.headers['access-control-allow-origin']).toBe(CONSOLE);
    expect(String(r.headers.vary)).toMatch(/origin/i);
    // Still JSON only, even from an allowed origin.
    expectProblem(await send(port, 'POST', '/v1/observation-sources', { origin: 'https://evil.example', ...TEXT }, '{}'), 403, 'forbidden');
    const plain = await send(port, 'POST', '/v1/observation-sources', { origin: CONSOLE, ...TEXT }, '{}');
    expect(plain.status).toBe(415);
  });
});
