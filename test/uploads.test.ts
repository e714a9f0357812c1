import { execFile } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, filesUnder, sha256 } from './helpers/fixtures.js';
import { makeJpegBytes, makePng, makeWav, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const run = promisify(execFile);

// ---------- helpers ----------

function upload(d: TestDaemon, sourceId: string, token: string, body: unknown) {
  return d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token, json: body });
}

async function assertNothingStored(d: TestDaemon) {
  const list = await (await d.req('/v1/observations?include_purged=true')).json();
  expect(list).toEqual([]);
  expect(filesUnder(join(d.dataDir, 'blobs'), 'relative')).toEqual([]);
  expect(filesUnder(join(d.dataDir, 'tmp'), 'relative')).toEqual([]);
}

async function audit(d: TestDaemon, query = '') {
  const res = await d.req(`/v1/observation-audit?limit=1000${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Array<{
    event: string;
    reason?: string;
    source_id: string | null;
    observation_id: string | null;
    detail: Record<string, unknown>;
  }>;
}

/** A request through node:http, whose path is sent exactly as given (fetch would normalise `%2E%2E`). */
function rawRequest(base: string, method: string, path: string, headers: Record<string, string>, body?: Buffer | string) {
  const u = new URL(base);
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: Number(u.port), method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface RawResponse {
  status: number;
  head: string;
  body: string;
  sentBodyBytes: number;
}

function parseRaw(raw: string, sent: number): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, end);
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  return { status, head, body: raw.slice(end + 4), sentBodyBytes: sent };
}

/**
 * Opens a raw socket, sends `head` (+ optional body prefix) and then feeds `nextChunk()` while the
 * server has not answered (or never feeds anything: a stalled client). Resolves with the answer.
 */
function rawExchange(base: string, head: string, nextChunk?: () => Buffer | null | 'stall', timeoutMs = 10_000): Promise<RawResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname);
    let raw = '';
    let sent = 0;
    let answered = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms; got so far: ${JSON.stringify(raw.slice(0, 300))}; sent ${sent}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(parseRaw(raw, sent));
    };
    const complete = () => {
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) return false;
      const len = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end));
      return len !== null && Buffer.byteLength(raw.slice(end + 4)) >= Number(len[1]);
    };
    sock.on('data', (c: Buffer) => {
      answered = true;
      raw += c.toString('latin1');
      if (complete()) finish();
    });
    sock.on('close', () => {
      if (answered) finish();
      else {
        clearTimeout(timer);
        reject(new Error(`connection closed without an answer after sending ${sent} body bytes`));
      }
    });
    sock.on('error', () => {});
    sock.on('connect', async () => {
      sock.write(head);
      if (!nextChunk) return;
      while (!answered && !sock.destroyed) {
        const c = nextChunk();
        if (c === 'stall') return;
        if (c === null) break;
        sent += c.length;
        const ok = sock.write(Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
        if (!ok)
          await new Promise<void>((r) => {
            const t = setTimeout(r, 50);
            sock.once('drain', () => (clearTimeout(t), r()));
          });
        else await new Promise((r) => setImmediate(r));
      }
      if (!answered && !sock.destroyed) sock.write('0\r\n\r\n');
    });
  });
}

const PNG = makePng(1, 1);

// ---------- the seed's curl example ----------

describe('the seed curl example', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(() => d.close());

  it('works verbatim with the real curl binary and returns every ObservationView field', async () => {
    // The seed's source example, as written.
    const created = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: {
        source_id: 'screen-main',
        display_name: 'Main screen snapshots',
        kind: 'screen_snapshot',
        upload_token: 'screen-upload-token',
        sensitivity: 'sensitive',
        retention_seconds: 86400,
        max_active_observations: 100,
        max_active_bytes: 104857600,
        allow_materialization: true,
        allow_output_delivery: false,
      },
    });
    expect(created.status).toBe(201);
    const createdView = await created.json();
    expect(createdView).not.toHaveProperty('upload_token');
    expect(JSON.stringify(createdView)).not.toContain('screen-upload-token');

    const b64 = PNG.toString('base64');
    expect(b64.startsWith('iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB')).toBe(true);
    const data = `{
    "upload": {
      "file_name": "frame-001.png",
      "media_type": "image/png",
      "content_base64": "${b64}"
    },
    "idempotency_key": "screen-main:frame-001",
    "captured_at_ms": 1760000000000,
    "stream_id": "call-7",
    "seq_no": 1,
    "canonical_text": "OCR text captured from the screen",
    "metadata": {
      "window": "editor"
    }
  }`;
    const curlArgs = [
      '-X',
      'POST',
      `${d.url}/v1/observation-sources/screen-main/observations`,
      '-H',
      'Authorization: Bearer screen-upload-token',
      '-H',
      'Content-Type: application/json',
      '-d',
      data,
    ];
    const before = Date.now();
    const first = await run('curl', ['-sS', '-i', ...curlArgs]);
    const after = Date.now();
    const [head, body] = first.stdout.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 201/);
    expect(head.toLowerCase()).not.toContain('idempotent-replayed');
    const obs = JSON.parse(body);
    const expectedKeys = [
      'observation_id',
      'source_id',
      'kind',
      'sensitivity',
      'retention_state',
      'asset_id',
      'canonical_text_asset_id',
      'media_type',
      'sha256',
      'byte_length',
      'captured_at_ms',
      'received_at_ms',
      'stream_id',
      'seq_no',
      'idempotency_key',
      'request_fingerprint',
      'metadata',
      'latitude',
      'longitude',
      'processing_status',
    ];
    for (const k of expectedKeys) expect(obs).toHaveProperty(k);
    expect(obs.observation_id).toMatch(/^obs_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(obs).toMatchObject({
      source_id: 'screen-main',
      kind: 'screen_snapshot',
      sensitivity: 'sensitive',
      retention_state: 'active',
      asset_id: `ast_${sha256(PNG)}`,
      media_type: 'image/png',
      sha256: sha256(PNG),
      byte_length: PNG.length,
      captured_at_ms: 1760000000000,
      stream_id: 'call-7',
      seq_no: 1,
      idempotency_key: 'screen-main:frame-001',
      metadata: { window: 'editor' },
      latitude: null,
      longitude: null,
      processing_status: null,
    });
    expect(obs.request_fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(obs.received_at_ms).toBeGreaterThanOrEqual(before);
    expect(obs.received_at_ms).toBeLessThanOrEqual(after);
    expect(head).toMatch(new RegExp(`\\r\\nlocation: /v1/observations/${obs.observation_id}`, 'i'));

    // canonical_text is its own text asset
    const text = 'OCR text captured from the screen';
    expect(obs.canonical_text_asset_id).toBe(`ast_${sha256(text)}`);
    const tc = await d.req(`/v1/assets/${obs.canonical_text_asset_id}/content`);
    expect(tc.status).toBe(200);
    expect(tc.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await tc.text()).toBe(text);
    const raw = await d.req(`/v1/assets/${obs.asset_id}/content`);
    expect(Buffer.from(await raw.arrayBuffer()).equals(PNG)).toBe(true);

    // The stored view equals the upload answer.
    expect(await (await d.req(`/v1/observations/${obs.observation_id}`)).json()).toEqual(obs);

    // curl replay: 200, Idempotent-Replayed, same observation.
    const again = await run('curl', ['-sS', '-i', ...curlArgs]);
    const [head2, body2] = again.stdout.split('\r\n\r\n');
    expect(head2).toMatch(/^HTTP\/1\.1 200/);
    expect(head2).toMatch(/\r\nidempotent-replayed: true/i);
    expect(JSON.parse(body2)).toEqual(obs);
  });

  it('stores latitude and longitude', async () => {
    const res = await upload(
      d,
      'screen-main',
      'screen-upload-token',
      uploadBody(makePng(1, 1, 7), 'geo', { latitude: -33.5, longitude: 151.25 }),
    );
    expect(res.status).toBe(201);
    const obs = await res.json();
    expect(obs).toMatchObject({
      latitude: -33.5,
      longitude: 151.25,
      canonical_text_asset_id: null,
      stream_id: null,
      seq_no: null,
      metadata: null,
    });
    const got = await (await d.req(`/v1/observations/${obs.observation_id}`)).json();
    expect(got).toMatchObject({ latitude: -33.5, longitude: 151.25 });
  });

  it('defaults captured_at_ms to the receipt time and keeps JPEG and WAV bytes as sent', async () => {
    const jpeg = makeJpegBytes(3);
    const r1 = await upload(d, 'screen-main', 'screen-upload-token', uploadBody(jpeg, 'jpeg', {}, 'image/jpeg'));
    expect(r1.status).toBe(201);
    const o1 = await r1.json();
    expect(o1.captured_at_ms).toBe(o1.received_at_ms);
    expect(o1).toMatchObject({ media_type: 'image/jpeg', sha256: sha256(jpeg), byte_length: jpeg.length });

    await createSource(d, { source_id: 'mic', display_name: 'Mic', kind: 'microphone_segment', upload_token: 'mic-token-0123456789' });
    const wav = makeWav(0.05);
    // An alias media type is normalised; the bytes are stored untouched.
    const r2 = await upload(d, 'mic', 'mic-token-0123456789', uploadBody(wav, 'w1', {}, 'audio/x-wav'));
    expect(r2.status).toBe(201);
    const o2 = await r2.json();
    expect(o2).toMatchObject({ kind: 'microphone_segment', media_type: 'audio/wav', sha256: sha256(wav), byte_length: wav.length });
    const content = await d.req(`/v1/assets/${o2.asset_id}/content`);
    expect(content.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await content.arrayBuffer()).equals(wav)).toBe(true);
  });
});

// ---------- hostile input ----------

describe('hostile uploads: typed 4xx, problem+json, nothing stored', () => {
  let d: TestDaemon;
  const TOKEN = 'screen-token-0123456789';
  beforeAll(async () => {
    d = await startDaemon();
    await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot', upload_token: TOKEN });
  });
  afterAll(() => d.close());

  const b64 = makePng(8, 8, 5).toString('base64');
  const ok = () => uploadBody(makePng(8, 8, 5), 'k');
  const cases: Array<[string, () => unknown, number, string]> = [
    [
      'truncated base64',
      () => ({ ...ok(), upload: { file_name: 'a.png', media_type: 'image/png', content_base64: b64.slice(0, -1) } }),
      400,
      'bad_request',
    ],
    [
      'base64 cut inside a quantum',
      () => ({ ...ok(), upload: { file_name: 'a.png', media_type: 'image/png', content_base64: `${b64.slice(0, -3)}=` } }),
      400,
      'bad_request',
    ],
    [
      'base64 with line breaks',
      () => ({ ...ok(), upload: { file_name: 'a.png', media_type: 'image/png', content_base64: b64.replace(/(.{16})/g, '$1\n') } }),
      400,
      'bad_request',
    ],
    [
      'base64 with spaces',
      () => ({ ...ok(), upload: { file_name: 'a.png', media_type: 'image/png', content_base64: ` ${b64}` } }),
      400,
      'bad_request',
    ],
    [
      'url-safe base64 alphabet',
      () => ({
        ...ok(),
        upload: { file_name: 'a.png', media_type: 'image/png', content_base64: Buffer.from([0xfb, 0xff, 0xfe]).toString('base64url') },
      }),
      400,
      'bad_request',
    ],
    ['empty content', () => ({ ...ok(), upload: { file_name: 'a.png', media_type: 'image/png', content_base64: '' } }), 400, 'bad_request'],
    ['PNG bytes declared image/jpeg', () => uploadBody(makePng(2, 2), 'k', {}, 'image/jpeg'), 400, 'media_mismatch'],
    ['JPEG bytes declared image/png', () => uploadBody(makeJpegBytes(), 'k', {}, 'image/png'), 400, 'media_mismatch'],
    ['random bytes declared image/png', () => uploadBody(Buffer.from('hello world, not an image'), 'k'), 400, 'media_mismatch'],
    ['audio/wav on a screen_snapshot source', () => uploadBody(makeWav(0.01), 'k', {}, 'audio/wav'), 415, 'unsupported_media_type'],
    ['a made-up media type', () => uploadBody(makePng(), 'k', {}, 'image/gif'), 415, 'unsupported_media_type'],
    ['metadata that is an array', () => ({ ...ok(), metadata: ['a', 'b'] }), 400, 'validation_failed'],
    ['metadata that is a string', () => ({ ...ok(), metadata: 'window=editor' }), 400, 'validation_failed'],
    ['metadata that is a number', () => ({ ...ok(), metadata: 42 }), 400, 'validation_failed'],
    ['latitude 91', () => ({ ...ok(), latitude: 91 }), 400, 'validation_failed'],
    ['latitude -90.5', () => ({ ...ok(), latitude: -90.5 }), 400, 'validation_failed'],
    ['longitude 181', () => ({ ...ok(), longitude: 181 }), 400, 'validation_failed'],
    ['latitude as a string', () => ({ ...ok(), latitude: '45' }), 400, 'validation_failed'],
    ['stream_id ".."', () => ({ ...ok(), stream_id: '..' }), 400, 'validation_failed'],
    ['stream_id "a/b"', () => ({ ...ok(), stream_id: 'a/b' }), 400, 'validation_failed'],
    ['stream_id with a NUL', () => ({ ...ok(), stream_id: 'a\u0000b' }), 400, 'validation_failed'],
    ['stream_id of 129 bytes', () => ({ ...ok(), stream_id: 'x'.repeat(129) }), 400, 'validation_failed'],
    ['missing idempotency_key', () => ({ upload: ok().upload }), 400, 'validation_failed'],
    ['empty idempotency_key', () => ({ ...ok(), idempotency_key: '' }), 400, 'validation_failed'],
    ['missing upload', () => ({ idempotency_key: 'k' }), 400, 'validation_failed'],
    [
      'file_name with a control character',
      () => ({ ...ok(), upload: { file_name: 'a\nb.png', media_type: 'image/png', content_base64: b64 } }),
      400,
      'validation_failed',
    ],
    ['negative seq_no', () => ({ ...ok(), seq_no: -1 }), 400, 'validation_failed'],
    ['fractional captured_at_ms', () => ({ ...ok(), captured_at_ms: 1.5 }), 400, 'validation_failed'],
    ['a JSON array body', () => [ok()], 400, 'validation_failed'],
    ['a JSON null body', () => null, 400, 'validation_failed'],
  ];

  it.each(cases)('%s → %i %s', async (_name, body, status, code) => {
    const before = await audit(d, '&event=upload_rejected');
    const res = await upload(d, 'screen', TOKEN, body());
    await expectProblem(res, status, code);
    await assertNothingStored(d);
    const after = await audit(d, '&event=upload_rejected');
    expect(after.length).toBe(before.length + 1);
    expect(after[0]).toMatchObject({ source_id: 'screen', detail: { code } });
  });

  const rawCases: Array<[string, Record<string, string>, string, number, string]> = [
    ['malformed JSON', { 'content-type': 'application/json' }, '{"upload": {', 400, 'bad_request'],
    ['JSON with a trailing comma', { 'content-type': 'application/json' }, '{"idempotency_key": "k",}', 400, 'bad_request'],
    ['empty body', { 'content-type': 'application/json' }, '', 400, 'bad_request'],
    [
      'wrong Content-Type (text/plain)',
      { 'content-type': 'text/plain' },
      JSON.stringify(uploadBody(PNG, 'k')),
      415,
      'unsupported_media_type',
    ],
    ['no Content-Type at all', {}, JSON.stringify(uploadBody(PNG, 'k')), 415, 'unsupported_media_type'],
    ['form-urlencoded', { 'content-type': 'application/x-www-form-urlencoded' }, 'a=b', 415, 'unsupported_media_type'],
    ['multipart without a boundary', { 'content-type': 'multipart/form-data' }, 'x', 400, 'bad_request'],
  ];

  it.each(rawCases)('%s → %i %s', async (_name, headers, body, status, code) => {
    const before = await audit(d, '&event=upload_rejected');
    const res = await fetch(`${d.url}/v1/observation-sources/screen/observations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      body,
    });
    await expectProblem(res, status, code);
    await assertNothingStored(d);
    const after = await audit(d, '&event=upload_rejected');
    expect(after.length).toBe(before.length + 1);
    expect(after[0]).toMatchObject({ source_id: 'screen', detail: { code } });
  });

  it.each([['%2E%2E'], ['%2e.'], ['a%2Fb'], ['a%5Cb'], ['%2E'], ['a%20b'], ['x'.repeat(129)]])(
    'path-unsafe source id %s → 400 (dot segments) or the 401 of an unknown source, before anything else',
    async (id) => {
      const res = await rawRequest(
        d.url,
        'POST',
        `/v1/observation-sources/${id}/observations`,
        { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        JSON.stringify(uploadBody(PNG, 'k')),
      );
      const dots = /^%2e/i.test(id);
      expect(res.status).toBe(dots ? 400 : 401);
      expect(String(res.headers['content-type'])).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(res.body);
      expect(body.status).toBe(dots ? 400 : 401);
      // Dot segments are refused by the router (bad_request); any other unsafe id is an unknown
      // source, which looks like a wrong token (as in Kheish), in Kheish's ingress domain.
      expect(body.code).toBe(dots ? 'bad_request' : 'unauthorized');
      if (!dots) expect(body.domain).toBe('observation_ingress');
      for (const k of ['type', 'title', 'detail']) expect(typeof body[k]).toBe('string');
      await assertNothingStored(d);
    },
  );

  it('unknown source, wrong token and missing token all look the same (401) and nothing is stored', async () => {
    const a = await upload(d, 'nope', TOKEN, uploadBody(PNG, 'k'));
    const b = await upload(d, 'screen', 'wrong-token-0123456789', uploadBody(PNG, 'k'));
    const c = await d.req('/v1/observation-sources/screen/observations', { method: 'POST', json: uploadBody(PNG, 'k') });
    const bodies = [
      await expectProblem(a, 401, 'unauthorized'),
      await expectProblem(b, 401, 'unauthorized'),
      await expectProblem(c, 401, 'unauthorized'),
    ];
    expect(bodies[0].detail).toBe(bodies[1].detail);
    await assertNothingStored(d);
  });

  it('a paused or disabled source refuses a valid token with 403, nothing stored', async () => {
    for (const status of ['paused', 'disabled']) {
      const patch = await d.req('/v1/observation-sources/screen', { method: 'PATCH', json: { status } });
      expect(patch.status).toBe(200);
      await expectProblem(await upload(d, 'screen', TOKEN, uploadBody(PNG, 'k')), 403, 'forbidden');
      await assertNothingStored(d);
    }
    expect((await d.req('/v1/observation-sources/screen', { method: 'PATCH', json: { status: 'active' } })).status).toBe(200);
  });

  it('authenticates before looking at the body', async () => {
    // Garbage JSON with a bad token is 401, not 400: the body is never parsed.
    const res = await fetch(`${d.url}/v1/observation-sources/screen/observations`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong-token-0123456789', 'content-type': 'application/json' },
      body: '{{{',
    });
    await expectProblem(res, 401, 'unauthorized');
  });
});

// ---------- size limits ----------

describe('size limits', () => {
  let d: TestDaemon;
  const TOKEN = 'limit-token-0123456789';
  const LIMIT = 64 * 1024;
  beforeAll(async () => {
    d = await startDaemon({ limits: { max_raw_bytes: LIMIT } });
    await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot', upload_token: TOKEN });
  });
  afterAll(() => d.close());

  const host = () => new URL(d.url).host;

  it('answers 413 from Content-Length alone, while the client is still stalled on the body', async () => {
    const res = await rawExchange(
      d.url,
      `POST /v1/observation-sources/screen/observations HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{"upload":`,
      undefined,
      5_000,
    );
    expect(res.status).toBe(413);
    expect(res.head).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(JSON.parse(res.body)).toMatchObject({ status: 413, code: 'payload_too_large' });
    await assertNothingStored(d);
    expect((await audit(d, '&event=upload_rejected'))[0]).toMatchObject({
      reason: 'payload_too_large',
      detail: { code: 'payload_too_large' },
    });
  });

  it('answers 413 from Content-Length on the multipart route too', async () => {
    const res = await rawExchange(
      d.url,
      `POST /v1/observation-sources/screen/observations HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 50000000\r\n\r\n--XyZ\r\n`,
      undefined,
      5_000,
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large' });
    await assertNothingStored(d);
  });

  it('still authenticates first: a huge Content-Length with a bad token is 401', async () => {
    const res = await rawExchange(
      d.url,
      `POST /v1/observation-sources/screen/observations HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer nope-nope-nope-nope\r\n` +
        `Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n`,
      undefined,
      5_000,
    );
    expect(res.status).toBe(401);
  });

  it('a chunked JSON body that grows past the limit mid-stream → 413, nothing stored', async () => {
    const prefix = Buffer.from('{"upload":{"file_name":"a.png","media_type":"image/png","content_base64":"');
    const filler = Buffer.alloc(64 * 1024, 'A');
    let n = 0;
    const res = await rawExchange(
      d.url,
      `POST /v1/observation-sources/screen/observations HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      () => (n++ === 0 ? prefix : n > 1024 ? null : filler), // at most 64 MiB
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large' });
    expect(res.sentBodyBytes).toBeLessThan(32 * 1024 * 1024);
    await assertNothingStored(d);
  });

  it('a chunked multipart body whose file grows past the limit → 413, nothing stored', async () => {
    const png = makePng(2, 2);
    const prefix = Buffer.concat([
      Buffer.from(
        '--BND\r\nContent-Disposition: form-data; name="observation"\r\nContent-Type: application/json\r\n\r\n' +
          JSON.stringify({ idempotency_key: 'big', upload: { file_name: 'a.png', media_type: 'image/png' } }) +
          '\r\n--BND\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n',
      ),
      png,
    ]);
    const filler = Buffer.alloc(16 * 1024, 7);
    let n = 0;
    const res = await rawExchange(
      d.url,
      `POST /v1/observation-sources/screen/observations HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: multipart/form-data; boundary=BND\r\nTransfer-Encoding: chunked\r\n\r\n`,
      () => (n++ === 0 ? prefix : n > 4096 ? null : filler), // at most 64 MiB
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large' });
    expect(res.sentBodyBytes).toBeLessThan(32 * 1024 * 1024);
    await assertNothingStored(d);
  });

  it('a multipart file over the limit is answered at once, while the rest of the body is still to come', async () => {
    const prefix = Buffer.from(
      '--BND\r\nContent-Disposition: form-data; name="observation"\r\n\r\n{"idempotency_key":"stall"}' +
        '\r\n--BND\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n',
    );
    const file = Buffer.concat([makePng(1, 1), Buffer.alloc(LIMIT + 4096, 9)]);
    let n = 0;
    const res = await rawExchange(
      d.url,
      `POST /v1/observation-sources/screen/observations HTTP/1.1\r\nHost: ${host()}\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: multipart/form-data; boundary=BND\r\nTransfer-Encoding: chunked\r\n\r\n`,
      () => (n++ === 0 ? Buffer.concat([prefix, file]) : 'stall'), // then never finishes the body
      5_000,
    );
    expect(res.status).toBe(413);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'payload_too_large' });
    await assertNothingStored(d);
  });

  it('a multipart file of exactly max_raw_bytes is accepted', async () => {
    const exact = Buffer.concat([makePng(1, 1), Buffer.alloc(LIMIT - makePng(1, 1).length, 4)]);
    const form = new FormData();
    form.set('observation', JSON.stringify({ idempotency_key: 'mp-exact' }));
    form.set('file', new Blob([exact], { type: 'image/png' }), 'exact.png');
    const res = await d.req('/v1/observation-sources/screen/observations', { method: 'POST', token: TOKEN, body: form });
    expect(res.status).toBe(201);
    const obs = await res.json();
    expect(obs).toMatchObject({ byte_length: LIMIT, sha256: sha256(exact) });
    expect((await d.req(`/v1/observations/${obs.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    await assertNothingStored(d);
  });

  it('a JSON upload whose decoded content is over max_raw_bytes → 413 (even though the body fits)', async () => {
    const big = Buffer.concat([makePng(1, 1), Buffer.alloc(LIMIT + 1 - makePng(1, 1).length, 1)]);
    expect(big.length).toBe(LIMIT + 1);
    const res = await upload(d, 'screen', TOKEN, uploadBody(big, 'big-json'));
    await expectProblem(res, 413, 'payload_too_large');
    await assertNothingStored(d);
  });

  it('content of exactly max_raw_bytes is accepted', async () => {
    const exact = Buffer.concat([makePng(1, 1), Buffer.alloc(LIMIT - makePng(1, 1).length, 2)]);
    const res = await upload(d, 'screen', TOKEN, uploadBody(exact, 'exact'));
    expect(res.status).toBe(201);
    const obs = await res.json();
    expect(obs).toMatchObject({ byte_length: LIMIT, sha256: sha256(exact) });
    expect((await d.req(`/v1/observations/${obs.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    await assertNothingStored(d);
  });

  it('a multipart file over the limit → 413, nothing stored', async () => {
    const big = Buffer.concat([makePng(1, 1), Buffer.alloc(LIMIT + 10, 3)]);
    const form = new FormData();
    form.set('observation', JSON.stringify({ idempotency_key: 'mp-big' }));
    form.set('file', new Blob([big], { type: 'image/png' }), 'big.png');
    const res = await d.req('/v1/observation-sources/screen/observations', { method: 'POST', token: TOKEN, body: form });
    await expectProblem(res, 413, 'payload_too_large');
    await assertNothingStored(d);
    expect((await audit(d, '&event=upload_rejected'))[0]).toMatchObject({
      reason: 'payload_too_large',
      detail: { code: 'payload_too_large' },
    });
  });

  it('canonical_text over its limit is refused and nothing is stored', async () => {
    const small = await startDaemon({ limits: { max_raw_bytes: LIMIT, max_canonical_text_bytes: 100 } });
    try {
      await createSource(small, { source_id: 's', display_name: 'S', kind: 'screen_snapshot', upload_token: TOKEN });
      const res = await upload(small, 's', TOKEN, uploadBody(PNG, 'k', { canonical_text: 'é'.repeat(51) }));
      const body = await expectProblem(res, 400, 'validation_failed');
      expect(body.errors).toEqual([expect.objectContaining({ path: 'canonical_text' })]);
      await assertNothingStored(small);
    } finally {
      await small.close();
    }
  });
});

// ---------- content addressing, rate limit, audit ----------

describe('content addressing, rate limits and the audit trail', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(() => d.close());

  it('identical bytes from two sources share one asset_id and one file on disk', async () => {
    const t1 = await createSource(d, { source_id: 'cam-a', display_name: 'A', kind: 'webcam_snapshot' });
    const t2 = await createSource(d, { source_id: 'screen-b', display_name: 'B', kind: 'screen_snapshot' });
    const png = makePng(3, 3, 99);
    const r1 = await upload(d, 'cam-a', t1, uploadBody(png, 'same', { canonical_text: 'shared text' }));
    const r2 = await upload(d, 'screen-b', t2, uploadBody(png, 'same', { canonical_text: 'shared text' }));
    expect([r1.status, r2.status]).toEqual([201, 201]);
    const [o1, o2] = [await r1.json(), await r2.json()];
    expect(o1.observation_id).not.toBe(o2.observation_id);
    expect(o1.asset_id).toBe(o2.asset_id);
    expect(o1.canonical_text_asset_id).toBe(o2.canonical_text_asset_id);
    const blobs = filesUnder(join(d.dataDir, 'blobs'), 'relative');
    expect(blobs.sort()).toEqual(
      [
        join(sha256(png).slice(0, 2), sha256(png).slice(2, 4), sha256(png)),
        join(sha256('shared text').slice(0, 2), sha256('shared text').slice(2, 4), sha256('shared text')),
      ].sort(),
    );
    expect(filesUnder(join(d.dataDir, 'tmp'), 'relative')).toEqual([]);
  });

  it('rate limit: the third upload within the window is 429 with Retry-After, audited', async () => {
    const token = await createSource(d, {
      source_id: 'limited',
      display_name: 'L',
      kind: 'screen_snapshot',
      ingest_rate_limit: { burst: 2, window_ms: 60_000 },
    });
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await upload(d, 'limited', token, uploadBody(makePng(1, 1, 500 + i), `r${i}`))).status);
    expect(statuses).toEqual([201, 201]);
    const third = await upload(d, 'limited', token, uploadBody(makePng(1, 1, 502), 'r2'));
    await expectProblem(third, 429, 'rate_limited');
    const ra = third.headers.get('retry-after');
    expect(ra).toMatch(/^\d+$/);
    expect(Number(ra)).toBeGreaterThanOrEqual(1);
    expect(Number(ra)).toBeLessThanOrEqual(60);
    const list = await (await d.req('/v1/observations?source_id=limited')).json();
    expect(list).toHaveLength(2);
    const events = await audit(d, '&source_id=limited&event=upload_rate_limited');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ reason: 'rate_limited', retry_after_ms: expect.any(Number) });
  });

  it('records uploads, replays and rejections, with hashes and never the raw key or token', async () => {
    const token = 'audit-secret-token-0123456789';
    await createSource(d, { source_id: 'aud', display_name: 'Audited', kind: 'screen_snapshot', upload_token: token });
    const key = 'my-very-secret-idempotency-key';
    const png = makePng(2, 2, 4242);
    const r1 = await upload(d, 'aud', token, uploadBody(png, key));
    expect(r1.status).toBe(201);
    const obs = await r1.json();
    expect((await upload(d, 'aud', token, uploadBody(png, key))).status).toBe(200);
    expect((await upload(d, 'aud', token, uploadBody(png, key, { seq_no: 9 }))).status).toBe(422);
    expect((await upload(d, 'aud', token, uploadBody(png, 'k2', {}, 'image/jpeg'))).status).toBe(400);
    expect((await upload(d, 'aud', token, uploadBody(makeWav(0.01), 'k3', {}, 'audio/wav'))).status).toBe(415);

    const events = await audit(d, '&source_id=aud');
    const byEvent = (e: string) => events.filter((x) => x.event === e);
    expect(byEvent('upload_succeeded')).toHaveLength(1);
    expect(byEvent('upload_succeeded')[0]).toMatchObject({
      observation_id: obs.observation_id,
      byte_length: png.length,
      media_type: 'image/png',
      idempotency_key_sha256: sha256(key),
      request_fingerprint: obs.request_fingerprint,
      upload_token_version: 1,
      detail: { sha256: sha256(png) },
    });
    expect(byEvent('upload_replayed')).toHaveLength(1);
    expect(byEvent('upload_replayed')[0]).toMatchObject({ observation_id: obs.observation_id });
    // Kheish's rejection reasons, with observd's own code beside them.
    expect(
      byEvent('upload_rejected')
        .map((e) => [e.reason, e.detail.code])
        .sort(),
    ).toEqual(
      [
        ['idempotency_conflict', 'idempotency_conflict'],
        ['unsupported_media_type', 'media_mismatch'],
        ['unsupported_media_type', 'unsupported_media_type'],
      ].sort(),
    );
    const all = JSON.stringify(await audit(d));
    expect(all).not.toContain(key);
    expect(all).not.toContain(token);
    // Nor do the logs carry the token.
    expect(d.logs.join('')).not.toContain(token);
  });
});
