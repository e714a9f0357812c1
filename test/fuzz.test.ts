import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf, type ErrorCode } from '../src/errors.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { filesUnder, sha256 } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';
import { expectRawProblem } from './helpers/problem.js';
import { rawExchange } from './helpers/raw-http.js';

const ADMIN = 'fuzz-admin-token-0123456789abcdef';
const READER = 'fuzz-reader-token-0123456789abcdef';
const SOURCE = 'fuzz-cam';
const MAX_RAW = 256 * 1024;
const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let d: TestDaemon;
let uploadToken = '';
let port = 0;
/** Every upload the daemon should hold: idempotency key → sha256 of the bytes. */
const expected = new Map<string, string>();
let seq = 0;
const nextKey = (tag: string) => `${tag}-${++seq}`;

beforeAll(async () => {
  d = await startDaemon({ admin_token: ADMIN, readonly_token: READER, limits: { max_raw_bytes: MAX_RAW } });
  port = Number(new URL(d.url).port);
  const res = await d.req('/v1/observation-sources', {
    method: 'POST',
    token: ADMIN,
    json: { source_id: SOURCE, display_name: 'Fuzz cam', kind: 'screen_snapshot', max_active_observations: 100_000 },
  });
  expect(res.status).toBe(201);
  uploadToken = ((await res.json()) as { upload_token: string }).upload_token;
});

afterAll(async () => {
  // Nothing the fuzzers sent was an internal error.
  const errors = d.logs.map((l) => JSON.parse(l)).filter((l) => l.level >= 50);
  await d.close();
  expect(errors).toEqual([]);
});

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  errors?: Array<{ path: string; message: string }>;
}

/** Asserts a 4xx problem+json whose code is a known one matching the status; returns it. */
async function expectProblem(res: { status: number; headers: Headers; text(): Promise<string> }, codes?: ErrorCode[]): Promise<Problem> {
  const text = await res.text();
  expect(res.status, text).toBeGreaterThanOrEqual(400);
  expect(res.status, text).toBeLessThan(500);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const p = JSON.parse(text) as Problem;
  expect(p.code).not.toBe('internal');
  expect(statusOf(p.code), `known code ${p.code}`).toBe(res.status);
  expect(p.status).toBe(res.status);
  expect(typeof p.title).toBe('string');
  expect(typeof p.detail).toBe('string');
  expect(p.type).toBe(`https://observd.dev/problems/${p.code}`);
  if (codes) expect(codes).toContain(p.code);
  return p;
}

function uploadUrl(source = SOURCE) {
  return `${d.url}/v1/observation-sources/${source}/observations`;
}

function postJson(body: string | Buffer, headers: Record<string, string> = {}) {
  return fetch(uploadUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${uploadToken}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
}

function multipart(parts: Array<{ name: string; filename?: string; type?: string; data: string | Buffer }>) {
  const boundary = `----fuzz${randomBytes(6).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
    chunks.push(Buffer.isBuffer(p.data) ? p.data : Buffer.from(p.data));
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** The store holds exactly the uploads that were genuinely valid: listing, blob files, no temp files. */
async function expectStoreMatches() {
  const res = await d.req(`/v1/observations?source_id=${SOURCE}&limit=1000&include_purged=true`, { token: ADMIN });
  expect(res.status).toBe(200);
  const data = (await res.json()) as Array<{ idempotency_key: string; sha256: string }>;
  expect(new Map(data.map((o) => [o.idempotency_key, o.sha256]))).toEqual(expected);
  expect(filesUnder(join(d.dataDir, 'blobs'), 'name').sort()).toEqual([...new Set(expected.values())].sort());
  expect(readdirSync(join(d.dataDir, 'tmp'))).toEqual([]);
}

const smallPng = makePng(3, 2, 77);
const RUNS = { numRuns: 150 };

describe('fuzz: upload bodies', () => {
  it('random JSON values and random bytes are 400, never stored', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
          fc.string({ unit: 'binary', maxLength: 200 }),
          fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
        ),
        async (body) => {
          await expectProblem(await postJson(body), ['bad_request', 'validation_failed']);
        },
      ),
      RUNS,
    );
    await expectStoreMatches();
    expect(expected.size).toBe(0);
  });

  const notString = fc.oneof(
    fc.integer(),
    fc.boolean(),
    fc.array(fc.integer(), { maxLength: 2 }),
    fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
  );
  const fraction = fc.double({ min: 0.001, max: 1e12, noNaN: true }).filter((v) => !Number.isInteger(v));
  const negative = fc.integer({ min: -1e9, max: -1 });
  /** Values that are certainly invalid for each field of the upload body. */
  const CORRUPT: Record<string, fc.Arbitrary<unknown>> = {
    upload: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
    'upload.file_name': fc.oneof(
      notString,
      fc.constant(null),
      fc.constant(''),
      fc.constant('x'.repeat(256)),
      fc.constant('a\u0000b'),
      fc.constant('a\nb'),
    ),
    'upload.media_type': fc.oneof(notString, fc.constant(null), fc.string({ maxLength: 2 }), fc.constant(`image/${'p'.repeat(130)}`)),
    'upload.content_base64': fc.oneof(notString, fc.constant(null)),
    idempotency_key: fc.oneof(notString, fc.constant(null), fc.constant(''), fc.constant('k'.repeat(257))),
    captured_at_ms: fc.oneof(fc.string(), fc.boolean(), fraction, negative, fc.constant(8_640_000_000_000_001)),
    stream_id: fc.oneof(notString, fc.constantFrom('', '.', '..', 'a/b', 'a b', 'café', 's'.repeat(129), 'a\u0000')),
    seq_no: fc.oneof(fc.string(), fc.boolean(), fraction, negative, fc.constant(2 ** 53)),
    canonical_text: notString,
    metadata: fc.oneof(fc.array(fc.integer(), { maxLength: 2 }), fc.string(), fc.integer(), fc.boolean()),
    latitude: fc.oneof(
      fc.double({ min: 90.001, max: 1e9, noNaN: true }),
      fc.double({ min: -1e9, max: -90.001, noNaN: true }),
      fc.string(),
      fc.boolean(),
    ),
    longitude: fc.oneof(
      fc.double({ min: 180.001, max: 1e9, noNaN: true }),
      fc.double({ min: -1e9, max: -180.001, noNaN: true }),
      fc.string(),
      fc.boolean(),
    ),
  };
  const KNOWN_KEYS = new Set(Object.keys(CORRUPT).map((k) => k.split('.')[0]));
  const unknownKey = fc
    .string({ minLength: 1, maxLength: 12 })
    .filter((k) => !KNOWN_KEYS.has(k) && k !== '__proto__' && k !== 'content_base64');

  /** A valid upload body, then some fields replaced by invalid values (and maybe an unknown key added). */
  const corrupted = (fields: string[]) =>
    fc
      .record({
        fields: fc.subarray(fields, { minLength: 1 }),
        extra: fc.option(fc.tuple(unknownKey, fc.jsonValue({ maxDepth: 1 })), { freq: 4 }),
      })
      .chain(({ fields: chosen, extra }) => {
        const targets = chosen.includes('upload') ? chosen.filter((f) => !f.startsWith('upload.')) : chosen;
        return fc.tuple(fc.constant(targets), fc.tuple(...targets.map((f) => CORRUPT[f])), fc.constant(extra));
      });

  function apply(base: Record<string, unknown>, targets: string[], values: unknown[], extra: [string, unknown] | null) {
    const body = structuredClone(base) as Record<string, Record<string, unknown> | unknown>;
    targets.forEach((f, i) => {
      const [a, b] = f.split('.');
      if (b) (body[a] as Record<string, unknown>)[b] = values[i];
      else body[a] = values[i];
    });
    if (extra) Object.defineProperty(body, extra[0], { value: extra[1], enumerable: true, configurable: true, writable: true });
    return body;
  }

  function expectFieldErrors(p: Problem, targets: string[], prefix: string, extra: unknown) {
    expect(p.errors?.length ?? 0, JSON.stringify(p)).toBeGreaterThan(0);
    const paths = p.errors!.map((e) => e.path);
    for (const f of targets) {
      expect(
        paths.some((x) => x === prefix + f || x.startsWith(`${prefix}${f}.`)),
        `${f} in ${paths.join(', ')}`,
      ).toBe(true);
    }
    if (!targets.length) expect(extra).not.toBeNull();
  }

  it('upload-shaped JSON bodies with wrongly typed fields are validation_failed, naming the fields', async () => {
    const base = uploadBody(smallPng, 'will-not-be-stored', {
      captured_at_ms: 1,
      stream_id: 's1',
      seq_no: 1,
      canonical_text: 't',
      metadata: { a: 1 },
      latitude: 1,
      longitude: 1,
    });
    await fc.assert(
      fc.asyncProperty(corrupted(Object.keys(CORRUPT)), async ([targets, values, extra]) => {
        const body = apply(base, targets, values, extra);
        const p = await expectProblem(await postJson(JSON.stringify(body)), ['validation_failed']);
        expectFieldErrors(p, targets, '', extra);
      }),
      RUNS,
    );
    await expectStoreMatches();
  });

  it('multipart observation parts with wrongly typed fields are validation_failed, naming the fields', async () => {
    const base = { upload: { file_name: 'f.png', media_type: 'image/png' }, idempotency_key: 'mp', stream_id: 's1', metadata: { a: 1 } };
    const fields = Object.keys(CORRUPT).filter((k) => k !== 'upload.content_base64');
    await fc.assert(
      fc.asyncProperty(corrupted(fields), async ([targets, values, extra]) => {
        const observation = JSON.stringify(apply(base, targets, values, extra));
        const { body, contentType } = multipart([
          { name: 'observation', type: 'application/json', data: observation },
          { name: 'file', filename: 'f.png', type: 'image/png', data: smallPng },
        ]);
        const p = await expectProblem(await postJson(body, { 'content-type': contentType }), ['validation_failed']);
        expectFieldErrors(p, targets, 'observation.', extra);
      }),
      { numRuns: 100 },
    );
    await expectStoreMatches();
  });

  it('hostile multipart shapes are 4xx and leave no temp file', async () => {
    const obs = JSON.stringify({ idempotency_key: 'mp-shape' });
    const shapes: Array<[string, Array<{ name: string; filename?: string; type?: string; data: string | Buffer }>, ErrorCode]> = [
      ['no file part', [{ name: 'observation', data: obs }], 'bad_request'],
      ['no observation part', [{ name: 'file', filename: 'f.png', type: 'image/png', data: smallPng }], 'bad_request'],
      [
        'two file parts',
        [
          { name: 'observation', data: obs },
          { name: 'file', filename: 'a.png', type: 'image/png', data: smallPng },
          { name: 'file', filename: 'b.png', type: 'image/png', data: smallPng },
        ],
        'bad_request',
      ],
      [
        'observation not JSON',
        [
          { name: 'observation', data: '{nope' },
          { name: 'file', filename: 'f.png', type: 'image/png', data: smallPng },
        ],
        'bad_request',
      ],
      [
        'unexpected field',
        [
          { name: 'observation', data: obs },
          { name: 'other', data: 'x' },
          { name: 'file', filename: 'f.png', type: 'image/png', data: smallPng },
        ],
        'bad_request',
      ],
      [
        'file over the limit',
        [
          { name: 'observation', data: obs },
          { name: 'file', filename: 'f.png', type: 'image/png', data: Buffer.concat([PNG_SIG, Buffer.alloc(MAX_RAW + 10)]) },
        ],
        'payload_too_large',
      ],
      [
        'empty file',
        [
          { name: 'observation', data: obs },
          { name: 'file', filename: 'f.png', type: 'image/png', data: Buffer.alloc(0) },
        ],
        'bad_request',
      ],
      [
        'jpeg declared, png sent',
        [
          { name: 'observation', data: obs },
          { name: 'file', filename: 'f.jpg', type: 'image/jpeg', data: smallPng },
        ],
        'media_mismatch',
      ],
      [
        'audio to a screen source',
        [
          { name: 'observation', data: obs },
          { name: 'file', filename: 'f.wav', type: 'audio/wav', data: smallPng },
        ],
        'unsupported_media_type',
      ],
    ];
    for (const [name, parts, code] of shapes) {
      const { body, contentType } = multipart(parts);
      const p = await expectProblem(await postJson(body, { 'content-type': contentType }));
      expect(p.code, name).toBe(code);
    }
    // A body cut short in the middle of the file part.
    const { body, contentType } = multipart([
      { name: 'observation', data: obs },
      { name: 'file', filename: 'f.png', type: 'image/png', data: smallPng },
    ]);
    await expectProblem(await postJson(body.subarray(0, body.length - 30), { 'content-type': contentType }), ['bad_request']);
    await expectStoreMatches();
  });

  it('multipart bodies cut at any byte are refused (bad_request) unless only the final CRLF is missing', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.boolean(), async (n, textFirst) => {
        const key = nextKey('cut');
        const png = makePng(4, 4, seq);
        const parts = [
          { name: 'observation', type: 'application/json', data: JSON.stringify({ idempotency_key: key }) },
          { name: 'file', filename: 'f.png', type: 'image/png', data: png },
        ];
        const { body, contentType } = multipart(textFirst ? parts : parts.reverse());
        const cut = n % (body.length + 1);
        const res = await postJson(body.subarray(0, cut), { 'content-type': contentType });
        if (res.status === 201) {
          // Only a body whose closing delimiter arrived whole may be accepted.
          expect(body.subarray(0, cut).toString('latin1')).toMatch(/--\r?\n?$/);
          expected.set(key, sha256(png));
          accepted++;
          return;
        }
        await expectProblem(res, ['bad_request']);
      }),
      { numRuns: 120 },
    );
    const whole = multipart([
      { name: 'observation', data: JSON.stringify({ idempotency_key: nextKey('whole') }) },
      { name: 'file', filename: 'f.png', type: 'image/png', data: smallPng },
    ]);
    const res = await postJson(whole.body, { 'content-type': whole.contentType });
    expect(res.status).toBe(201);
    expected.set(
      (JSON.parse(whole.body.toString('latin1').match(/\{"idempotency_key":"[^"]+"\}/)![0]) as { idempotency_key: string }).idempotency_key,
      sha256(smallPng),
    );
    expect(accepted).toBeLessThanOrEqual(120);
    await expectStoreMatches();
  });

  it('JSON nested far too deep is a 400, not a stack overflow', async () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const body = JSON.stringify(uploadBody(smallPng, nextKey('deep'))).replace(/}$/, `,"metadata":{"a":${deep(100_000)}}}`);
    await expectProblem(await postJson(body), ['bad_request', 'validation_failed']);
    const multi = multipart([
      { name: 'observation', data: `{"idempotency_key":"deep-mp","metadata":{"a":${deep(50_000)}}}` },
      { name: 'file', filename: 'f.png', type: 'image/png', data: smallPng },
    ]);
    await expectProblem(await postJson(multi.body, { 'content-type': multi.contentType }), ['bad_request', 'validation_failed']);
    const src = await d.req('/v1/observation-sources', {
      method: 'POST',
      token: ADMIN,
      headers: { 'content-type': 'application/json' },
      body: `{"display_name":"x","kind":"screen_snapshot","ingest_rate_limit":${deep(50_000)}}`,
    });
    await expectProblem(src, ['bad_request', 'validation_failed']);
    // A legitimately nested metadata object still works.
    let meta: unknown = 'leaf';
    for (let i = 0; i < 20; i++) meta = { [`l${i}`]: [meta] };
    const key = nextKey('nested-ok');
    const ok = await postJson(JSON.stringify(uploadBody(makePng(3, 3, 5), key, { metadata: { m: meta } })));
    expect(ok.status).toBe(201);
    expected.set(key, sha256(makePng(3, 3, 5)));
    await expectStoreMatches();
  });
});

describe('fuzz: base64 content', () => {
  const pngB64 = [makePng(2, 2, 1), makePng(5, 3, 2), makePng(7, 7, 3)].map((b) => b.toString('base64'));
  const isCanonical = (s: string) =>
    s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s) && Buffer.from(s, 'base64').toString('base64') === s;

  /** Flips the unused low bits of the last data character (still decodes, no longer canonical). */
  function dirtyTail(s: string): string {
    const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
    if (pad === 0) return `${s}=`;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const i = s.length - pad - 1;
    const v = alphabet.indexOf(s[i]);
    return s.slice(0, i) + alphabet[v ^ 1] + s.slice(i + 1);
  }

  const candidate = fc.oneof(
    // random bytes, canonically encoded
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a).toString('base64')),
    // random bytes behind a real PNG signature
    fc.uint8Array({ maxLength: 100 }).map((a) => Buffer.concat([PNG_SIG, Buffer.from(a)]).toString('base64')),
    // a real PNG truncated anywhere
    fc.tuple(fc.constantFrom(...pngB64), fc.nat()).map(([s, n]) => s.slice(0, n % (s.length + 1))),
    // non-canonical spellings of a real PNG
    fc
      .tuple(fc.constantFrom(...pngB64), fc.nat(), fc.constantFrom('ws', 'nl', 'urlsafe', 'nopad', 'extrapad', 'tail', 'datauri', 'lower'))
      .map(([s, n, how]) => {
        const at = n % (s.length + 1);
        switch (how) {
          case 'ws':
            return `${s.slice(0, at)} ${s.slice(at)}`;
          case 'nl':
            return `${s.slice(0, at)}\r\n${s.slice(at)}`;
          case 'urlsafe':
            return s.replace(/\+/g, '-').replace(/\//g, '_') + (/[+/]/.test(s) ? '' : '-');
          case 'nopad':
            return s.endsWith('=') ? s.replace(/=+$/, '') : s.slice(0, -1);
          case 'extrapad':
            return `${s}====`;
          case 'tail':
            return dirtyTail(s);
          case 'datauri':
            return `data:image/png;base64,${s}`;
          default:
            return s.toLowerCase();
        }
      }),
    fc.string({ maxLength: 60 }),
  );

  it('only canonical base64 of PNG bytes is stored; everything else is bad_request or media_mismatch', async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(candidate, async (b64) => {
        const key = nextKey('b64');
        const body = { upload: { file_name: 'f.png', media_type: 'image/png', content_base64: b64 }, idempotency_key: key };
        const res = await postJson(JSON.stringify(body));
        const bytes = Buffer.from(b64, 'base64');
        const valid = isCanonical(b64) && bytes.length >= 8 && bytes.subarray(0, 8).equals(PNG_SIG);
        if (valid) {
          expect(res.status, await res.clone().text()).toBe(201);
          const view = (await res.json()) as { sha256: string; byte_length: number };
          expect(view.sha256).toBe(sha256(bytes));
          expect(view.byte_length).toBe(bytes.length);
          expected.set(key, view.sha256);
          accepted++;
        } else {
          await expectProblem(res, ['bad_request', 'media_mismatch']);
        }
      }),
      { numRuns: 200 },
    );
    expect(accepted).toBeGreaterThan(0);
    await expectStoreMatches();
  });
});

/** A raw HTTP exchange with the exact request target given (no URL normalisation on the client). */
function raw(method: string, target: string, headers: Record<string, string>, body?: string) {
  return new Promise<{ status: number; headers: Headers; text(): Promise<string> }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: target, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c) => (text += c));
      res.on('end', () => {
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h.set(k, v);
        resolve({ status: res.statusCode!, headers: h, text: async () => text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('fuzz: path ids', () => {
  const decodes = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const urlChars = "abcXYZ019._~-!$&'()*+,;=:@%/";
  const id = fc
    .oneof(
      fc.constantFrom(
        '..',
        '.',
        '%2e%2e',
        '%2E.',
        '.%2e',
        'a%2Fb',
        '%2F',
        `x%2F..%2F${SOURCE}`,
        `x/../${SOURCE}`,
        `./${SOURCE}`,
        `${SOURCE}/..`,
        '%00',
        'a%00b',
        '%',
        '%zz',
        '%E0%A4%A',
        '%C0%AE%C0%AE',
        '%252e%252e',
        'caf%C3%A9',
        '%F0%9F%98%80',
        '%EF%BC%8E%EF%BC%8E',
        '%5C..%5C',
        'a%20b',
        '\\..',
        'x'.repeat(129),
        `obs_${'0'.repeat(26)}`,
        `ast_${'a'.repeat(64)}`,
      ),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).map(encodeURIComponent),
      fc.string({ unit: fc.constantFrom(...urlChars), minLength: 1, maxLength: 16 }),
    )
    .filter((s) => decodes(s) !== SOURCE && s !== SOURCE);

  const routes: Array<{ method: string; path: (id: string) => string; token: () => string; body?: string }> = [
    {
      method: 'POST',
      path: (i) => `/v1/observation-sources/${i}/observations`,
      token: () => uploadToken,
      body: JSON.stringify(uploadBody(smallPng, 'path-fuzz')),
    },
    { method: 'GET', path: (i) => `/v1/observation-sources/${i}`, token: () => ADMIN },
    { method: 'PATCH', path: (i) => `/v1/observation-sources/${i}`, token: () => ADMIN, body: '{"display_name":"renamed"}' },
    { method: 'DELETE', path: (i) => `/v1/observation-sources/${i}`, token: () => ADMIN },
    { method: 'POST', path: (i) => `/v1/observation-sources/${i}/rotate-token`, token: () => ADMIN, body: '{}' },
    { method: 'POST', path: (i) => `/v1/observation-sources/${i}/revoke-token`, token: () => ADMIN },
    { method: 'GET', path: (i) => `/v1/observations/${i}`, token: () => ADMIN },
    { method: 'DELETE', path: (i) => `/v1/observations/${i}`, token: () => ADMIN },
    { method: 'GET', path: (i) => `/v1/assets/${i}`, token: () => ADMIN },
    { method: 'GET', path: (i) => `/v1/assets/${i}/content`, token: () => ADMIN },
  ];

  it('hostile ids on every id route are 4xx problems and touch nothing', async () => {
    await fc.assert(
      fc.asyncProperty(id, fc.nat(routes.length - 1), async (i, r) => {
        const route = routes[r];
        const headers: Record<string, string> = { authorization: `Bearer ${route.token()}` };
        if (route.body) headers['content-type'] = 'application/json';
        await expectProblem(await raw(route.method, route.path(i), headers, route.body), [
          'bad_request',
          'validation_failed',
          'not_found',
          'unauthorized',
        ]);
      }),
      { numRuns: 200 },
    );
    // The source is untouched: same name, token still works.
    const src = (await (await d.req(`/v1/observation-sources/${SOURCE}`, { token: ADMIN })).json()) as {
      display_name: string;
      upload_token_version: number;
    };
    expect(src.display_name).toBe('Fuzz cam');
    expect(src.upload_token_version).toBe(1);
    await expectStoreMatches();
  });
});

describe('fuzz: headers', () => {
  const printable = (max: number) =>
    fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: max });
  const jsonish = (ct: string) => {
    const t = ct.trim().toLowerCase();
    return t.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(t);
  };

  it('random Content-Type headers: JSON types are accepted, others are 4xx problems', async () => {
    const contentType = fc.oneof(
      fc.constantFrom(
        'application/json',
        'APPLICATION/JSON; charset=utf-8',
        'application/problem+json',
        'application/vnd.api+json',
        'application/json-patch+json',
        'application/jsonx',
        'application/x-www-form-urlencoded',
        'text/plain',
        'text/json',
        'image/png',
        '*/*',
        ';',
        'multipart/form-data',
        'multipart/form-data; boundary=',
        'multipart/form-data; boundary=x',
        'multipart/form-data; boundary="a b"',
        `multipart/form-data; boundary=${'b'.repeat(200)}`,
        'multipart/mixed; boundary=x',
        'multipart/form-data; charset=utf-8',
      ),
      printable(40),
      fc
        .tuple(fc.constantFrom('application', 'multipart', 'text', 'x'), printable(12), printable(20))
        .map(([a, b, c]) => `${a}/${b}; ${c}`),
    );
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(contentType, async (ct) => {
        const key = nextKey('ct');
        const png = makePng(2, 2, seq);
        const res = await postJson(JSON.stringify(uploadBody(png, key)), { 'content-type': ct });
        if (res.status === 201) {
          expect(jsonish(ct), ct).toBe(true);
          expected.set(key, sha256(png));
          accepted++;
          return;
        }
        const p = await expectProblem(res, ['unsupported_media_type', 'bad_request']);
        if (p.code === 'unsupported_media_type')
          expect(jsonish(ct) || ct.trim().toLowerCase().startsWith('multipart/form-data')).toBe(false);
        else expect(ct.trim().toLowerCase().startsWith('multipart/form-data'), ct).toBe(true);
      }),
      RUNS,
    );
    expect(accepted).toBeGreaterThan(0);
    await expectStoreMatches();
  });

  it('random Authorization headers: only the right token is let in, on upload and admin routes', async () => {
    const tokens = () => ({ upload: uploadToken, admin: ADMIN, reader: READER });
    const mutate = (t: string, n: number, how: number) => {
      const i = n % t.length;
      switch (how) {
        case 0:
          return t.slice(0, i) + t.slice(i + 1);
        case 1:
          return t.slice(0, i) + (t[i] === t[i].toUpperCase() ? t[i].toLowerCase() : t[i].toUpperCase()) + t.slice(i + 1);
        case 2:
          return `${t}x`;
        case 3:
          return `x${t}`;
        default:
          return t.slice(0, i);
      }
    };
    const header = fc.oneof(
      printable(60),
      printable(60).map((s) => `Bearer ${s}`),
      fc
        .tuple(fc.constantFrom('upload', 'admin', 'reader') as fc.Arbitrary<'upload' | 'admin' | 'reader'>, fc.nat(), fc.nat(4))
        .map(([which, n, how]) => `Bearer ${mutate(tokens()[which], n, how)}`),
      fc
        .tuple(
          fc.constantFrom('upload', 'admin', 'reader') as fc.Arbitrary<'upload' | 'admin' | 'reader'>,
          fc.constantFrom('Bearer ', 'bearer ', 'BEARER\t', 'Bearer  ', 'Basic ', 'Token ', '', 'Bearer:', 'Bearer=', 'Bearer ,'),
          fc.constantFrom('', ' ', ' extra', ',x'),
        )
        .map(([which, scheme, tail]) => scheme + tokens()[which] + tail),
      fc.constantFrom('Bearer', 'Bearer ', 'Bearer null', 'Bearer undefined', `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}`),
    );
    const bearer = (h: string) => /^Bearer\s+(\S+)\s*$/i.exec(h.trim())?.[1];
    type Call = { name: string; access: 'upload' | 'read' | 'write'; send: (h: string) => Promise<Response>; ok: number };
    const calls: Call[] = [
      {
        name: 'upload',
        access: 'upload',
        ok: 201,
        send: (h) => {
          const key = nextKey('auth');
          const png = makePng(2, 3, seq);
          lastUpload = { key, sha: sha256(png) };
          return fetch(uploadUrl(), {
            method: 'POST',
            headers: { authorization: h, 'content-type': 'application/json' },
            body: JSON.stringify(uploadBody(png, key)),
          });
        },
      },
      {
        name: 'list sources',
        access: 'read',
        ok: 200,
        send: (h) => fetch(`${d.url}/v1/observation-sources`, { headers: { authorization: h } }),
      },
      {
        name: 'get source',
        access: 'read',
        ok: 200,
        send: (h) => fetch(`${d.url}/v1/observation-sources/${SOURCE}`, { headers: { authorization: h } }),
      },
      {
        name: 'list observations',
        access: 'read',
        ok: 200,
        send: (h) => fetch(`${d.url}/v1/observations`, { headers: { authorization: h } }),
      },
      {
        name: 'patch source',
        access: 'write',
        ok: 200,
        send: (h) =>
          fetch(`${d.url}/v1/observation-sources/${SOURCE}`, {
            method: 'PATCH',
            headers: { authorization: h, 'content-type': 'application/json' },
            body: '{"display_name":"Fuzz cam"}',
          }),
      },
      {
        name: 'delete ghost',
        access: 'write',
        ok: 404,
        send: (h) => fetch(`${d.url}/v1/observation-sources/ghost`, { method: 'DELETE', headers: { authorization: h } }),
      },
      {
        name: 'rotate ghost',
        access: 'write',
        ok: 404,
        send: (h) => fetch(`${d.url}/v1/observation-sources/ghost/rotate-token`, { method: 'POST', headers: { authorization: h } }),
      },
    ];
    let lastUpload: { key: string; sha: string } | undefined;
    let admitted = 0;
    await fc.assert(
      fc.asyncProperty(header, fc.nat(calls.length - 1), async (h, c) => {
        const call = calls[c];
        lastUpload = undefined;
        const res = await call.send(h);
        const presented = bearer(h);
        const role =
          call.access === 'upload'
            ? presented === uploadToken
              ? 'ok'
              : 'none'
            : presented === ADMIN
              ? 'ok'
              : presented === READER
                ? call.access === 'read'
                  ? 'ok'
                  : 'reader'
                : 'none';
        if (role === 'ok') {
          expect(res.status, `${call.name} with ${JSON.stringify(h)}`).toBe(call.ok);
          if (res.status >= 400) await expectProblem(res, ['not_found']);
          admitted++;
          if (call.access === 'upload') expected.set(lastUpload!.key, lastUpload!.sha);
          return;
        }
        await expectProblem(res, [role === 'reader' ? 'forbidden' : 'unauthorized']);
      }),
      { numRuns: 200 },
    );
    expect(admitted).toBeGreaterThan(0);
    // The admin token still works and the upload token was never rotated.
    const src = (await (await d.req(`/v1/observation-sources/${SOURCE}`, { token: ADMIN })).json()) as { upload_token_version: number };
    expect(src.upload_token_version).toBe(1);
    await expectStoreMatches();
  });

  it('requests Node cannot parse get a problem+json 400 and the daemon keeps serving', async () => {
    const garbage = [
      'GARBAGE\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n',
      'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n',
      `POST /v1/observation-sources/${SOURCE}/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: abc\r\n\r\n`,
      `POST /v1/observation-sources/${SOURCE}/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      'GET / HTTP/9.9\r\nHost: x\r\n\r\n',
    ];
    for (const g of garbage) {
      expectRawProblem(await rawExchange(port, g), 400, 'bad_request');
    }
    expect((await fetch(`${d.url}/livez`)).status).toBe(200);
  });

  it('raw non-ASCII bytes in the path and hostile Host headers are 4xx problems', async () => {
    const requests: Array<[string, ErrorCode[]]> = [
      [
        `GET /v1/observation-sources/caf\xc3\xa9 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${ADMIN}\r\nConnection: close\r\n\r\n`,
        ['validation_failed', 'bad_request'],
      ],
      [
        `GET /v1/observation-sources/\xff\xfe HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${ADMIN}\r\nConnection: close\r\n\r\n`,
        ['validation_failed', 'bad_request'],
      ],
      [
        `GET /v1/observation-sources/${SOURCE} HTTP/1.1\r\nHost: evil@example.com\r\nAuthorization: Bearer ${ADMIN}\r\nConnection: close\r\n\r\n`,
        ['bad_request'],
      ],
      [
        `GET /v1/observation-sources/${SOURCE} HTTP/1.1\r\nHost: [::1\r\nAuthorization: Bearer ${ADMIN}\r\nConnection: close\r\n\r\n`,
        ['bad_request'],
      ],
      [
        `GET /v1/observation-sources\\${SOURCE} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${ADMIN}\r\nConnection: close\r\n\r\n`,
        ['bad_request'],
      ],
    ];
    for (const [payload, codes] of requests) {
      expectRawProblem(await rawExchange(port, Buffer.from(payload, 'latin1')), '4xx', codes);
    }
  });
});

describe('hostile clients', () => {
  it('a declared Content-Length over the limit is refused before any body is sent', async () => {
    const out = await rawExchange(
      port,
      `POST /v1/observation-sources/${SOURCE}/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${uploadToken}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n`,
    );
    expectRawProblem(out, 413, 'payload_too_large');
  });

  it('an unauthenticated upload is refused before its body is read', async () => {
    const out = await rawExchange(
      port,
      `POST /v1/observation-sources/${SOURCE}/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer nope-nope-nope-nope\r\n` +
        `Content-Type: application/json\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n{"a":`,
    );
    expectRawProblem(out, 401, 'unauthorized');
  });

  it('a chunked body growing past the limit is cut off with 413 and leaves no temp file', async () => {
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent > 4 * MAX_RAW) return c.close();
        sent += 65536;
        c.enqueue(new Uint8Array(65536).fill(0x41));
      },
    });
    const json = await fetch(uploadUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${uploadToken}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit).catch((e: Error) => e);
    // Either the 413 arrives, or the daemon hung up on the oversized stream after answering.
    if (json instanceof Response) await expectProblem(json, ['payload_too_large']);
    const { body, contentType } = multipart([
      { name: 'observation', data: '{"idempotency_key":"big"}' },
      { name: 'file', filename: 'f.png', type: 'image/png', data: Buffer.concat([PNG_SIG, Buffer.alloc(2 * MAX_RAW)]) },
    ]);
    await expectProblem(await postJson(body, { 'content-type': contentType }), ['payload_too_large']);
    await expectStoreMatches();
  });

  it('uploads whose client disappears mid-body leave no temp file and no error', async () => {
    const sockets: Socket[] = [];
    for (const kind of ['multipart', 'json', 'multipart', 'json']) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise((r) => s.once('connect', r));
      const b = 'cutboundary';
      s.write(
        `POST /v1/observation-sources/${SOURCE}/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${uploadToken}\r\n` +
          (kind === 'multipart'
            ? `Content-Type: multipart/form-data; boundary=${b}\r\nContent-Length: 200000\r\n\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`
            : `Content-Type: application/json\r\nContent-Length: 200000\r\n\r\n{"upload":{"content_base64":"`),
      );
      s.write(Buffer.concat([PNG_SIG, Buffer.alloc(5000, 1)]));
      sockets.push(s);
    }
    const tmp = join(d.dataDir, 'tmp');
    await waitFor(() => readdirSync(tmp).length === 2, 5000);
    for (const s of sockets) s.destroy();
    await waitFor(() => readdirSync(tmp).length === 0, 5000);
    expect(readdirSync(tmp)).toEqual([]);
    await expectStoreMatches();
  });

  it('200 connections dribbling bodies do not stop a normal upload from completing', async () => {
    // Half JSON bodies declaring a 64 KiB upload each, half chunked multipart.
    const DRIBBLERS = 200;
    const dribblers: Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    try {
      for (let i = 0; i < DRIBBLERS; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        await new Promise((r) => s.once('connect', r));
        const b = `dribble${i}`;
        const multi = i % 2 === 0;
        s.write(
          `POST /v1/observation-sources/${SOURCE}/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${uploadToken}\r\n` +
            (multi
              ? `Content-Type: multipart/form-data; boundary=${b}\r\nTransfer-Encoding: chunked\r\n\r\n`
              : `Content-Type: application/json\r\nContent-Length: 90000\r\n\r\n`),
        );
        const piece = multi
          ? `--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG`
          : '{"upload":{"content_base64":"';
        const data = multi ? `${piece.length.toString(16)}\r\n${piece}\r\n` : piece;
        s.write(data, 'latin1');
        timers.push(setInterval(() => s.write(multi ? '1\r\nA\r\n' : 'A'), 100));
        dribblers.push(s);
      }
      await waitFor(() => readdirSync(join(d.dataDir, 'tmp')).length === DRIBBLERS / 2, 5000);
      expect(readdirSync(join(d.dataDir, 'tmp'))).toHaveLength(DRIBBLERS / 2);

      const png = makePng(200, 200, 4242);
      const key = nextKey('normal');
      const res = await fetch(uploadUrl(), {
        method: 'POST',
        headers: { authorization: `Bearer ${uploadToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(uploadBody(png, key)),
        signal: AbortSignal.timeout(10_000),
      });
      expect(res.status).toBe(201);
      expect(((await res.json()) as { sha256: string }).sha256).toBe(sha256(png));
      expected.set(key, sha256(png));
      const list = await d.req(`/v1/observations?source_id=${SOURCE}&limit=1`, { token: READER, signal: AbortSignal.timeout(10_000) });
      expect(list.status).toBe(200);
      // All of them are still connected and dribbling.
      expect(dribblers.filter((s) => !s.destroyed)).toHaveLength(DRIBBLERS);
    } finally {
      for (const t of timers) clearInterval(t);
      for (const s of dribblers) s.destroy();
    }
    await waitFor(() => readdirSync(join(d.dataDir, 'tmp')).length === 0, 5000);
    await expectStoreMatches();
  });
});

async function waitFor(cond: () => boolean, ms: number) {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await sleep(20);
}
