import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObservdError, createClient, type ObservdClient } from '../src/client/index.js';
import { Transport } from '../src/client/transport.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { makePng } from './helpers/media.js';

const ADMIN = 'client-admin-token-000000001';
let d: TestDaemon;
let client: ObservdClient;
let token: string;
let proxy: Server;
let proxyUrl: string;
/** Requests the proxy forwards but whose answer it then drops (the client sees a broken connection). */
let dropAnswers = 0;
/** Requests the proxy answers 503 without forwarding. */
let unavailable = 0;
const seenKeys: string[] = [];
const work = mkdtempSync(join(tmpdir(), 'observd-client-'));

beforeAll(async () => {
  d = await startDaemon({ admin_token: ADMIN });
  client = createClient({ baseUrl: d.url, token: ADMIN });
  token = (await client.createSource({ source_id: 'client-screen', kind: 'screen_snapshot', display_name: 'Client screen' })).upload_token!;
  // A loopback proxy in front of the daemon that loses answers on demand.
  proxy = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const key = /"idempotency_key":"([^"]+)"/.exec(body.toString('latin1'))?.[1];
    if (key) seenKeys.push(key);
    if (unavailable > 0) {
      unavailable--;
      res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '0' });
      res.end(JSON.stringify({ type: 'x', title: 'Unavailable', status: 503, detail: 'try again', code: 'service_unavailable' }));
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'content-type']) if (req.headers[h]) headers[h] = String(req.headers[h]);
    const upstream = await fetch(d.url + req.url, { method: req.method, headers, body: body.length ? body : undefined });
    const answer = Buffer.from(await upstream.arrayBuffer());
    if (dropAnswers > 0) {
      dropAnswers--;
      req.socket.destroy();
      return;
    }
    res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
    res.end(answer);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
});
afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  await d?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('the typed client', () => {
  it('is exported by the package as observd/client', () => {
    const root = fileURLToPath(new URL('..', import.meta.url));
    const r = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import('observd/client'); console.log(typeof m.createClient, typeof m.ObservdError)`],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function function');
  });

  it('bundles for a browser with no server code in it (types only come from the server)', async () => {
    const { build } = await import('esbuild');
    const out = await build({
      entryPoints: [fileURLToPath(new URL('../dist/client/index.js', import.meta.url))],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0].text;
    expect(code).toContain('ObservdError');
    for (const server of ['better-sqlite3', 'hono', 'zod']) expect(code).not.toContain(server);
    expect(code).not.toMatch(/(import\s*\(?|from)\s*["']node:/);
  });

  it('walks every page of a list with listAll', async () => {
    for (let i = 0; i < 5; i++) await client.createSource({ source_id: `paged-${i}`, kind: 'webcam_snapshot', display_name: `p${i}` });
    const ids: string[] = [];
    for await (const s of client.listSources({ query: 'paged-', limit: 2 })) ids.push(s.source_id);
    expect(ids).toEqual(['paged-0', 'paged-1', 'paged-2', 'paged-3', 'paged-4']);
  });

  it('turns problem+json into a typed ObservdError', async () => {
    const missing = await client.getSource('nope').catch((e) => e);
    expect(missing).toBeInstanceOf(ObservdError);
    expect(missing).toMatchObject({ status: 404, code: 'not_found' });
    const invalid = await client.createSource({ source_id: 'bad', kind: 'nope' as never, display_name: 'x' }).catch((e) => e);
    expect(invalid).toMatchObject({ status: 400, code: 'validation_failed' });
    expect(invalid.errors?.[0].path).toBe('kind');
    const down = await createClient({ baseUrl: 'http://127.0.0.1:9', retries: 0 })
      .getSource('x')
      .catch((e) => e);
    expect(down).toMatchObject({ status: 0, code: 'network_error' });
  });

  it('uploads as JSON, as multipart streamed from a file, and through a signed URL', async () => {
    const json = await client.upload('client-screen', token, {
      idempotency_key: 'json-1',
      upload: { file_name: 'a.png', media_type: 'image/png', content_base64: makePng(2, 2, 1).toString('base64') },
    });
    expect(json.replayed).toBe(false);
    const file = join(work, 'b.png');
    writeFileSync(file, makePng(2, 2, 2));
    const multi = await client.uploadFile('client-screen', token, file, {
      idempotency_key: 'multi-1',
      captured_at_ms: 1234,
      upload: { media_type: 'image/png' },
    });
    expect(multi.observation).toMatchObject({ file_name: 'b.png', captured_at_ms: 1234, byte_length: makePng(2, 2, 2).length });
    const signed = await client.uploadSigned('client-screen', token, () => makePng(2, 2, 3), {
      idempotency_key: 'signed-1',
      upload: { media_type: 'image/png', file_name: 'c.png' },
    });
    expect(signed.observation.file_name).toBe('c.png');
    const again = await client.uploadFile('client-screen', token, file, {
      idempotency_key: 'multi-1',
      captured_at_ms: 1234,
      upload: { media_type: 'image/png' },
    });
    expect(again).toMatchObject({ replayed: true, observation: { observation_id: multi.observation.observation_id } });
  });

  it('retries with backoff, reusing the idempotency key: a lost answer becomes a replay, not a second observation', async () => {
    const flaky = createClient({ baseUrl: proxyUrl, backoffMs: 10 });
    seenKeys.length = 0;
    dropAnswers = 1;
    unavailable = 1;
    const r = await flaky.upload('client-screen', token, {
      idempotency_key: 'lost-answer',
      upload: { file_name: 'd.png', media_type: 'image/png', content_base64: makePng(2, 2, 4).toString('base64') },
    });
    expect(seenKeys).toEqual(['lost-answer', 'lost-answer', 'lost-answer']);
    expect(r.replayed).toBe(true);
    const stored: string[] = [];
    for await (const o of client.listObservations({ source_id: 'client-screen' })) stored.push(o.idempotency_key);
    expect(stored.filter((k) => k === 'lost-answer')).toHaveLength(1);
    // Not retried: a create that is not idempotent.
    unavailable = 1;
    const refused = await flaky.createSource({ source_id: 'x-src', kind: 'screen_snapshot', display_name: 'x' }).catch((e) => e);
    expect(refused).toMatchObject({ status: 503 });
  });

  it("leaves no abort listener on the caller's signal once a retried call is done", async () => {
    const flaky = new Transport({ baseUrl: proxyUrl, token: ADMIN, backoffMs: 1 });
    const { signal } = new AbortController();
    const listening = new Set<unknown>();
    const add = signal.addEventListener.bind(signal);
    const remove = signal.removeEventListener.bind(signal);
    signal.addEventListener = (type: string, fn: any, o?: any) => (listening.add(fn), add(type, fn, o));
    signal.removeEventListener = (type: string, fn: any, o?: any) => (listening.delete(fn), remove(type, fn, o));
    for (let i = 0; i < 5; i++) {
      unavailable = 2;
      await flaky.json('/v1/observation-sources', { signal });
    }
    expect(unavailable).toBe(0);
    expect(listening.size).toBe(0);
  });

  it('reads server-sent events as an async iterator', async () => {
    const abort = new AbortController();
    await client.createSource({ source_id: 'evented', kind: 'screen_snapshot', display_name: 'e' });
    // From the start of the outbox (Last-Event-ID 0), so nothing depends on when the stream opened.
    const events = client.events({ types: ['source.updated'], last_event_id: '0' }, abort.signal);
    let found: unknown;
    for await (const ev of events) {
      expect(ev.type).toBe('source.updated');
      if (ev.data.source_id === 'evented') {
        found = ev;
        break;
      }
    }
    expect(found).toMatchObject({ data: { type: 'source.updated', source_id: 'evented' } });
    abort.abort();
  });

  it('covers the capture plane: provision, list, heartbeat, alerts, revoke', async () => {
    const p = await client.provisionAgents({ batch_id: 'client-batch', daemon_base_url: d.url, agents: [{ machine_id: 'client-box' }] });
    const agent = p.agents[0];
    const hb = await client.heartbeat('client-box', agent.heartbeat_token);
    expect(hb.heartbeat_state).toBe('healthy');
    const agents = [];
    for await (const a of client.listAgents()) agents.push(a.machine_id);
    expect(agents).toEqual(['client-box']);
    const alerts = [];
    for await (const a of client.listAlerts()) alerts.push(a);
    expect(alerts).toEqual([]);
    expect((await client.revokeAgent('client-box', 'done')).status).toBe('revoked');
    expect(await client.heartbeat('client-box', agent.heartbeat_token).catch((e) => e.status)).toBe(401);
  });
});
