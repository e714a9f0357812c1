import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { filesUnder, sha256 } from './helpers/fixtures.js';
import { makeJpegBytes, makePng, makeWav, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const TOKEN = 'multipart-token-0123456789';
const PATH = '/v1/observation-sources/screen/observations';

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
  const res = await d.req('/v1/observation-sources', {
    method: 'POST',
    json: { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot', upload_token: TOKEN },
  });
  expect(res.status).toBe(201);
});
afterAll(() => d.close());

type Part =
  | { kind: 'observation'; json: unknown; raw?: string }
  | { kind: 'file'; bytes: Buffer; name?: string | null; filename?: string | null; type?: string | null }
  | { kind: 'field'; name: string; value: string };

/** A hand-built multipart body, so part order and headers are exactly what the test says. */
function formBody(parts: Part[], boundary = 'obsd-boundary-7MA4YWxk'): { body: Buffer; type: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\n`));
    if (p.kind === 'observation') {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="observation"\r\nContent-Type: application/json\r\n\r\n`));
      chunks.push(Buffer.from(p.raw ?? JSON.stringify(p.json)));
    } else if (p.kind === 'file') {
      const fn = p.filename === null ? '' : `; filename="${p.filename ?? 'frame.png'}"`;
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name ?? 'file'}"${fn}\r\n`));
      if (p.type !== null) chunks.push(Buffer.from(`Content-Type: ${p.type ?? 'image/png'}\r\n`));
      chunks.push(Buffer.from('\r\n'));
      chunks.push(p.bytes);
    } else {
      chunks.push(Buffer.from(`Content-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}`));
    }
    chunks.push(Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

function post(body: Buffer, type: string) {
  return d.req(PATH, { method: 'POST', token: TOKEN, headers: { 'content-type': type }, body: new Uint8Array(body) });
}

function postParts(parts: Part[]) {
  const { body, type } = formBody(parts);
  return post(body, type);
}

async function observationCount() {
  return ((await (await d.req('/v1/observations?include_purged=true&limit=1000')).json()) as unknown[]).length;
}

/** Asserts a rejected request left no row, no new blob and no temp file. */
async function expectNothingNew(before: { count: number; blobs: string[] }) {
  expect(await observationCount()).toBe(before.count);
  expect(filesUnder(join(d.dataDir, 'blobs'), 'name').sort()).toEqual(before.blobs);
  expect(filesUnder(join(d.dataDir, 'tmp'), 'name')).toEqual([]);
}

async function snapshot() {
  return { count: await observationCount(), blobs: filesUnder(join(d.dataDir, 'blobs'), 'name').sort() };
}

describe('multipart uploads', () => {
  it('a file part and an observation part are stored exactly like the JSON shape', async () => {
    const png = makePng(5, 5, 1);
    const fields = {
      idempotency_key: 'mp-1',
      captured_at_ms: 1_700_000_000_000,
      stream_id: 'call-7',
      seq_no: 3,
      canonical_text: 'multipart text',
      metadata: { window: 'editor', nested: { a: [1, 2] } },
      latitude: 48.85,
      longitude: 2.35,
      upload: { file_name: 'frame-mp.png', media_type: 'image/png' },
    };
    const res = await postParts([
      { kind: 'observation', json: fields },
      { kind: 'file', bytes: png, filename: 'ignored.png' },
    ]);
    expect(res.status).toBe(201);
    const obs = await res.json();
    expect(obs).toMatchObject({
      source_id: 'screen',
      kind: 'screen_snapshot',
      retention_state: 'active',
      asset_id: `ast_${sha256(png)}`,
      canonical_text_asset_id: `ast_${sha256('multipart text')}`,
      media_type: 'image/png',
      sha256: sha256(png),
      byte_length: png.length,
      captured_at_ms: 1_700_000_000_000,
      stream_id: 'call-7',
      seq_no: 3,
      idempotency_key: 'mp-1',
      metadata: { window: 'editor', nested: { a: [1, 2] } },
      latitude: 48.85,
      longitude: 2.35,
      processing_status: null,
    });
    // upload.file_name in the observation part wins over the part's filename.
    expect(obs.file_name).toBe('frame-mp.png');
    const content = await d.req(`/v1/assets/${obs.asset_id}/content`);
    expect(Buffer.from(await content.arrayBuffer()).equals(png)).toBe(true);
    const text = await d.req(`/v1/assets/${obs.canonical_text_asset_id}/content`);
    expect(await text.text()).toBe('multipart text');

    // The same upload in JSON is a replay of it.
    const { upload: u, ...rest } = fields;
    const json = await d.req(PATH, {
      method: 'POST',
      token: TOKEN,
      json: { ...rest, upload: { ...u, content_base64: png.toString('base64') } },
    });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual(obs);
  });

  it('accepts the file part before the observation part', async () => {
    const jpeg = makeJpegBytes(9);
    const res = await postParts([
      { kind: 'file', bytes: jpeg, filename: 'shot.jpg', type: 'image/jpeg' },
      { kind: 'observation', json: { idempotency_key: 'file-first', seq_no: 1 } },
    ]);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({
      idempotency_key: 'file-first',
      seq_no: 1,
      media_type: 'image/jpeg',
      file_name: 'shot.jpg',
      sha256: sha256(jpeg),
    });
  });

  it('takes media type and file name from the file part headers when observation.upload is omitted', async () => {
    const png = makePng(2, 3, 2);
    const res = await postParts([
      { kind: 'observation', json: { idempotency_key: 'from-headers' } },
      { kind: 'file', bytes: png, filename: 'from-part.png', type: 'image/png' },
    ]);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ file_name: 'from-part.png', media_type: 'image/png', byte_length: png.length });

    // A partial upload object: media type from the observation, file name from the part.
    const jpeg = makeJpegBytes(10);
    const res2 = await postParts([
      { kind: 'observation', json: { idempotency_key: 'partial', upload: { media_type: 'image/jpeg' } } },
      { kind: 'file', bytes: jpeg, filename: 'p.jpg', type: 'application/octet-stream' },
    ]);
    expect(res2.status).toBe(201);
    expect(await res2.json()).toMatchObject({ file_name: 'p.jpg', media_type: 'image/jpeg' });
  });

  it('works with the FormData a browser or fetch builds', async () => {
    const png = makePng(3, 2, 3);
    const form = new FormData();
    form.set('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'fd.png');
    form.set('observation', JSON.stringify({ idempotency_key: 'formdata', stream_id: 'x' }));
    const res = await d.req(PATH, { method: 'POST', token: TOKEN, body: form });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ file_name: 'fd.png', media_type: 'image/png', stream_id: 'x', sha256: sha256(png) });
  });

  it('works with curl -F (observation as a JSON field, file from disk)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'observd-curl-'));
    try {
      const png = makePng(4, 4, 50);
      writeFileSync(join(dir, 'shot.png'), png);
      const { stdout } = await promisify(execFile)('curl', [
        '-sS',
        '-w',
        '\n%{http_code}',
        '-H',
        `Authorization: Bearer ${TOKEN}`,
        '-F',
        `observation=${JSON.stringify({ idempotency_key: 'curl-F', seq_no: 5 })};type=application/json`,
        '-F',
        `file=@${join(dir, 'shot.png')};type=image/png`,
        `${d.url}${PATH}`,
      ]);
      const [body, code] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)];
      expect(code).toBe('201');
      expect(JSON.parse(body)).toMatchObject({
        idempotency_key: 'curl-F',
        seq_no: 5,
        file_name: 'shot.png',
        media_type: 'image/png',
        sha256: sha256(png),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stores a ~5 MiB file intact', async () => {
    const big = Buffer.concat([makePng(1, 1, 4), randomBytes(5 * 1024 * 1024)]);
    const form = new FormData();
    form.set('observation', JSON.stringify({ idempotency_key: 'five-mib' }));
    form.set('file', new Blob([new Uint8Array(big)], { type: 'image/png' }), 'big.png');
    const res = await d.req(PATH, { method: 'POST', token: TOKEN, body: form });
    expect(res.status).toBe(201);
    const obs = await res.json();
    expect(obs).toMatchObject({ byte_length: big.length, sha256: sha256(big) });
    const content = await d.req(`/v1/assets/${obs.asset_id}/content`);
    expect(content.headers.get('content-length')).toBe(String(big.length));
    expect(sha256(Buffer.from(await content.arrayBuffer()))).toBe(sha256(big));
    expect(statSync(join(d.dataDir, 'blobs', obs.sha256.slice(0, 2), obs.sha256.slice(2, 4), obs.sha256)).size).toBe(big.length);
    expect(filesUnder(join(d.dataDir, 'tmp'), 'name')).toEqual([]);
  });

  const bad: Array<[string, () => Part[] | { body: Buffer; type: string }, number, string]> = [
    ['missing file part', () => [{ kind: 'observation', json: { idempotency_key: 'nofile' } }], 400, 'bad_request'],
    ['missing observation part', () => [{ kind: 'file', bytes: makePng(1, 1, 20) }], 400, 'bad_request'],
    [
      'observation part is not JSON',
      () => [
        { kind: 'observation', json: null, raw: '{not json' },
        { kind: 'file', bytes: makePng(1, 1, 21) },
      ],
      400,
      'bad_request',
    ],
    [
      'observation part with a wrongly typed field',
      () => [
        { kind: 'observation', json: { idempotency_key: 'u', seq_no: 'one' } },
        { kind: 'file', bytes: makePng(1, 1, 23) },
      ],
      400,
      'validation_failed',
    ],
    [
      'observation part without idempotency_key',
      () => [
        { kind: 'observation', json: { seq_no: 1 } },
        { kind: 'file', bytes: makePng(1, 1, 24) },
      ],
      400,
      'validation_failed',
    ],
    // Without a media type it is inferred from the bytes: these are no accepted type.
    [
      'no media type anywhere, and bytes of no accepted type',
      () => [
        { kind: 'observation', json: { idempotency_key: 'nomt' } },
        { kind: 'file', bytes: Buffer.from('plain words, not an image'), type: 'application/octet-stream' },
      ],
      415,
      'unsupported_media_type',
    ],
    [
      'two file parts',
      () => [
        { kind: 'observation', json: { idempotency_key: 'two' } },
        { kind: 'file', bytes: makePng(1, 1, 26) },
        { kind: 'file', bytes: makePng(1, 1, 27) },
      ],
      400,
      'bad_request',
    ],
    [
      'a file part with another name',
      () => [
        { kind: 'observation', json: { idempotency_key: 'named' } },
        { kind: 'file', name: 'image', bytes: makePng(1, 1, 28) },
      ],
      400,
      'bad_request',
    ],
    [
      'two observation parts',
      () => [
        { kind: 'observation', json: { idempotency_key: 'first' } },
        { kind: 'observation', json: { idempotency_key: 'second' } },
        { kind: 'file', bytes: makePng(1, 1, 33) },
      ],
      400,
      'bad_request',
    ],
    [
      'an unexpected field',
      () => [
        { kind: 'observation', json: { idempotency_key: 'field' } },
        { kind: 'field', name: 'tenant', value: 'x' },
        { kind: 'file', bytes: makePng(1, 1, 29) },
      ],
      400,
      'bad_request',
    ],
    [
      'an empty file',
      () => [
        { kind: 'observation', json: { idempotency_key: 'empty' } },
        { kind: 'file', bytes: Buffer.alloc(0) },
      ],
      400,
      'bad_request',
    ],
    [
      'PNG bytes declared image/jpeg in the part header',
      () => [
        { kind: 'observation', json: { idempotency_key: 'mm' } },
        { kind: 'file', bytes: makePng(1, 1, 30), type: 'image/jpeg' },
      ],
      400,
      'media_mismatch',
    ],
    [
      'WAV on a screen source',
      () => [
        { kind: 'observation', json: { idempotency_key: 'wav' } },
        { kind: 'file', bytes: makeWav(0.01), type: 'audio/wav', filename: 'a.wav' },
      ],
      415,
      'unsupported_media_type',
    ],
    [
      'stream_id "a/b"',
      () => [
        { kind: 'observation', json: { idempotency_key: 's', stream_id: 'a/b' } },
        { kind: 'file', bytes: makePng(1, 1, 31) },
      ],
      400,
      'validation_failed',
    ],
    [
      'body cut off before the closing boundary',
      () => {
        const { body, type } = formBody([
          { kind: 'observation', json: { idempotency_key: 'cut' } },
          { kind: 'file', bytes: makePng(8, 8, 32) },
        ]);
        return { body: body.subarray(0, body.length - 60), type };
      },
      400,
      'bad_request',
    ],
    [
      'a boundary that never appears',
      () => ({ body: Buffer.from('just some bytes, no parts at all'), type: 'multipart/form-data; boundary=nowhere' }),
      400,
      'bad_request',
    ],
  ];

  it.each(bad)('%s → %i %s, nothing stored', async (_name, make, status, code) => {
    const before = await snapshot();
    const m = make();
    const res = Array.isArray(m) ? await postParts(m) : await post(m.body, m.type);
    await expectProblem(res, status, code);
    await expectNothingNew(before);
    const audit = await (await d.req('/v1/observation-audit?source_id=screen&event=upload_rejected&limit=1')).json();
    expect(audit[0].detail.code).toBe(code);
  });

  it('authenticates before reading a multipart body', async () => {
    const { body, type } = formBody([
      { kind: 'observation', json: { idempotency_key: 'x' } },
      { kind: 'file', bytes: makePng() },
    ]);
    const res = await d.req(PATH, {
      method: 'POST',
      token: 'not-the-token-0123',
      headers: { 'content-type': type },
      body: new Uint8Array(body),
    });
    await expectProblem(res, 401, 'unauthorized');
  });

  it('a multipart replay of the JSON seed shape keeps one observation and one blob', async () => {
    const png = makePng(6, 6, 40);
    const j = await d.req(PATH, { method: 'POST', token: TOKEN, json: uploadBody(png, 'seedshape') });
    expect(j.status).toBe(201);
    const before = await snapshot();
    const m = await postParts([
      { kind: 'observation', json: { idempotency_key: 'seedshape' } },
      { kind: 'file', bytes: png, filename: 'frame.png' },
    ]);
    expect(m.status).toBe(200);
    expect(m.headers.get('idempotent-replayed')).toBe('true');
    await expectNothingNew(before);
  });
});
