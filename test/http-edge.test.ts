import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { expectRawProblem } from './helpers/problem.js';
import { rawExchange } from './helpers/raw-http.js';

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
const exchange = (head: string, drip?: string) => rawExchange(port, head, { drip, timeoutMs: 15_000 });

describe('requests Node refuses before routing', () => {
  it('a 100 KB URL is 431 headers_too_large as problem+json, and the daemon keeps serving', async () => {
    const answer = await exchange(`GET /v1/observations?q=${'a'.repeat(100 * 1024)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    expectRawProblem(answer, 431, 'headers_too_large');
    expect((await d.req('/livez')).status).toBe(200);
  });

  it('huge headers are 431 headers_too_large as problem+json', async () => {
    const cookies = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${'b'.repeat(1000)}\r\n`).join('');
    const answer = await exchange(`GET /livez HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${cookies}\r\n`);
    expectRawProblem(answer, 431, 'headers_too_large');
  });

  it('an unparsable request is 400 bad_request as problem+json', async () => {
    expectRawProblem(await exchange('GET / HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n'), 400, 'bad_request');
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
    expectRawProblem(answer, 408, 'request_timeout');
    expect(readdirSync(join(d.dataDir, 'tmp'))).toEqual([]);
    const list = await (await d.req('/v1/observations?source_id=cam')).json();
    expect(Array.isArray(list)).toBe(true);
    expect(list).toHaveLength(0);
  });

  it('a dribbled admin JSON body is cut with 408 request_timeout', async () => {
    const head =
      `POST /v1/observation-sources HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: 200000\r\n\r\n{"source_id":"slow","display_name":"`;
    expectRawProblem(await exchange(head, 'x'), 408, 'request_timeout');
    expect((await d.req('/v1/observation-sources/slow')).status).toBe(404);
  });

  it('a dribbled capture agent body (revoke) is cut with 408 request_timeout too', async () => {
    const head =
      `POST /v1/capture-agents/slow-machine/revoke HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: 4000\r\n\r\n{"reason":"`;
    expectRawProblem(await exchange(head, 'x'), 408, 'request_timeout');
  });
});
