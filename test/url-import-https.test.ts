import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostResolver } from '../src/uploads/url-fetch.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

// A self-signed certificate for images.test, made with the openssl CLI (skipped without it).
let hasOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  hasOpenssl = false;
}

const TOKEN = 'url-import-https-token-1';
const PNG = makePng(3, 3, 11);
/** images.test exists only here: the daemon can reach it only through the address this resolver pins. */
const resolveHost: HostResolver = async (name) => {
  if (name === 'images.test') return [{ address: '127.0.0.1', family: 4 }];
  throw Object.assign(new Error(`ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
};

let dir: string;
let server: Server;
let port: number;
let d: TestDaemon;

beforeAll(async () => {
  if (!hasOpenssl) return;
  dir = mkdtempSync(join(tmpdir(), 'observd-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=images.test',
      '-addext',
      'subjectAltName=DNS:images.test',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    if (req.url === '/to-http') return void res.writeHead(302, { location: `http://images.test:${port}/shot.png` }).end();
    res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  d = await startDaemon({ uploads: { url_fetch: { enabled: true, allow_hosts: ['images.test'] } } }, { resolveHost, fetchCa: cert });
  await createSource(d, sourceBody('cam', TOKEN));
});
afterAll(async () => {
  if (!hasOpenssl) return;
  await d?.close();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const fromUrl = (url: string, key: string) =>
  d.req('/v1/observation-sources/cam/observations', { method: 'POST', token: TOKEN, json: { upload: { url }, idempotency_key: key } });

describe.skipIf(!hasOpenssl)('URL import over https (pinned address, name kept for SNI and the certificate)', () => {
  it('fetches https from a name pinned to its checked address, verifying the certificate for the name', async () => {
    const r = await fromUrl(`https://images.test:${port}/shelves/aisle-4.png?token=secret`, 'tls-1');
    expect(r.status, await r.clone().text()).toBe(201);
    expect(await r.json()).toMatchObject({
      file_name: 'aisle-4.png',
      origin_url: `https://images.test:${port}/shelves/aisle-4.png`,
      byte_length: PNG.length,
    });
  });

  it('fails when the certificate does not name the host (here: the bare address)', async () => {
    const d2 = await startDaemon(
      { uploads: { url_fetch: { enabled: true, allow_hosts: ['127.0.0.1'] } } },
      { resolveHost, fetchCa: readFileSync(join(dir, 'cert.pem'), 'utf8') },
    );
    try {
      await createSource(d2, sourceBody('cam', TOKEN));
      const r = await d2.req('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: TOKEN,
        json: { upload: { url: `https://127.0.0.1:${port}/x.png` }, idempotency_key: 'tls-2' },
      });
      await expectProblem(r, 422, 'fetch_failed');
    } finally {
      await d2.close();
    }
  });

  it('refuses a redirect from https to http when allow_http is off', async () => {
    await expectProblem(await fromUrl(`https://images.test:${port}/to-http`, 'tls-3'), 403, 'fetch_refused');
  });
});
