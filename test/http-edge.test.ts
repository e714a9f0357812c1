import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';

let d: TestDaemon;
let port = 0;
let token = '';

beforeAll(async () => {
  // A body must average 64 KiB/s once its first second has passed.
  d = await startDaemon({ limits: { json_body_min_bytes_per_s: 65536, json_body_rate_grace_ms: 1000 } });
  port = Number(new URL(d.url).port);
  token = await createSource(d, { source_id: 'cam', display_name: 'cam', kind: 'screen_snapshot' });
});
afterAll(() => d.close());

/** Writes `head` (then `drip` every 100 ms, if given) on a raw socket and resolves with everything the server answered. */
function exchange(head: string, drip?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    s.on('error', () => {});
    s.on('data', (b) => (text += b.toString('latin1')));
    s.on('close', () => {
      clearInterval(timer);
      resolve(text);
    });
    s.setTimeout(15_000, () => s.destroy());
    s.once('connect', () => {
      s.write(head);
      if (drip) timer = setInterval(() => s.writable && s.write(drip), 100);
    });
  });
}

function problemOf(answer: string, status: number, code: string) {
  const [head, ...rest] = answer.split('\r\n\r\n');
  expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
  expect(head.toLowerCase()).toContain('content-type: application/problem+json');
  const body = JSON.parse(rest.join('\r\n\r\n'));
  expect(body).toMatchObject({ status, code });
  for (const k of ['type', 'title', 'detail']) expect(typeof body[k]).toBe('string');
}

describe('requests Node refuses before routing', () => {
  it('a 100 KB URL is 431 headers_too_large as problem+json, and the daemon keeps serving', async () => {
    const answer = await exchange(`GET /v1/observations?q=${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    problemOf(answer, 431, 'headers_too_large');
    expect((await d.req('/livez')).status).toBe(200);
  });

  it('huge headers are 431 headers_too_large as problem+json', async () => {
    const cookies = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${'b'.repeat(1000)}\r\n`).join('');
    const answer = await exchange(`GET /livez HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${cookies}\r\n`);
    problemOf(answer, 431, 'headers_too_large');
  });

  it('an unparsable request is 400 bad_request as problem+json', async () => {
    problemOf(await exchange('GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n'), 400, 'bad_request');
  });
});

describe('slow bodies keep the minimum rate on every route, not only JSON uploads', () => {
  it('a dribbled multipart upload is cut with 408 request_timeout and leaves no temp file', async () => {
    const boundary = 'slowboundary';
    const head =
      `POST /v1/observation-sources/cam/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: 5000000\r\n\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="observation"\r\n\r\n{"idempotency_key":"slow-mp"}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n` +
      makePng(2, 2, 1).toString('latin1');
    const answer = await exchange(head, 'AAAA');
    problemOf(answer, 408, 'request_timeout');
    expect(readdirSync(join(d.dataDir, 'tmp'))).toEqual([]);
    const list = await (await d.req('/v1/observations?source_id=cam')).json();
    expect(Array.isArray(list)).toBe(true);
    expect(list).toHaveLength(0);
  });

  it('a dribbled admin JSON body is cut with 408 request_timeout', async () => {
    const head =
      `POST /v1/observation-sources HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: 200000\r\n\r\n{"source_id":"slow","display_name":"`;
    problemOf(await exchange(head, 'x'), 408, 'request_timeout');
    expect((await d.req('/v1/observation-sources/slow')).status).toBe(404);
  });
});
