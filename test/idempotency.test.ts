import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { filesUnder, sha256 } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

let d: TestDaemon;
const TOKEN = 'idem-token-0123456789';
beforeAll(async () => {
  d = await startDaemon();
  for (const id of ['screen', 'other', 'para', 'mixed']) {
    const res = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: { source_id: id, display_name: id, kind: 'screen_snapshot', upload_token: TOKEN },
    });
    expect(res.status).toBe(201);
  }
});
afterAll(() => d.close());

function upload(sourceId: string, body: unknown) {
  return d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token: TOKEN, json: body });
}

function multipart(sourceId: string, bytes: Buffer, observation: unknown, file: { name?: string; type?: string } = {}) {
  const form = new FormData();
  form.set('observation', JSON.stringify(observation));
  form.set('file', new Blob([new Uint8Array(bytes)], { type: file.type ?? 'image/png' }), file.name ?? 'frame.png');
  return d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token: TOKEN, body: form });
}

async function list(sourceId: string) {
  const res = await d.req(`/v1/observations?source_id=${sourceId}&include_purged=true&limit=1000`);
  expect(res.status).toBe(200);
  return (await res.json()) as Array<Record<string, unknown>>;
}

async function source(sourceId: string) {
  return (await d.req(`/v1/observation-sources/${sourceId}`)).json();
}

describe('idempotent uploads', () => {
  it('a replay answers 200 with Idempotent-Replayed and the stored observation', async () => {
    const png = makePng(2, 2, 1);
    const body = uploadBody(png, 'frame-1', {
      captured_at_ms: 1_000,
      stream_id: 's1',
      seq_no: 1,
      canonical_text: 'hello',
      metadata: { a: 1, b: [1, 2] },
    });
    const first = await upload('screen', body);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const obs = await first.json();

    const again = await upload('screen', body);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('location')).toBe(`/v1/observations/${obs.observation_id}`);
    expect(await again.json()).toEqual(obs);

    // Key order in metadata and JSON key order do not change the request.
    const reordered = {
      metadata: { b: [1, 2], a: 1 },
      seq_no: 1,
      stream_id: 's1',
      canonical_text: 'hello',
      captured_at_ms: 1_000,
      idempotency_key: 'frame-1',
      upload: body.upload,
    };
    const third = await upload('screen', reordered);
    expect(third.status).toBe(200);
    expect((await third.json()).observation_id).toBe(obs.observation_id);

    expect(await list('screen')).toHaveLength(1);
    const src = await source('screen');
    expect(src).toMatchObject({ active_observation_count: 1, active_byte_length: png.length });
  });

  it('the same key with a changed payload is 422 idempotency_conflict, and nothing changes', async () => {
    const png = makePng(2, 2, 2);
    const base = uploadBody(png, 'frame-2', { captured_at_ms: 2_000, stream_id: 's1', seq_no: 2, metadata: { w: 'x' } });
    const first = await upload('screen', base);
    expect(first.status).toBe(201);
    const obs = await first.json();
    const variants: Array<[string, unknown]> = [
      ['other bytes', uploadBody(makePng(2, 2, 3), 'frame-2', { captured_at_ms: 2_000, stream_id: 's1', seq_no: 2, metadata: { w: 'x' } })],
      ['other captured_at_ms', { ...base, captured_at_ms: 2_001 }],
      ['other stream_id', { ...base, stream_id: 's2' }],
      ['other seq_no', { ...base, seq_no: 3 }],
      ['seq_no dropped', { ...base, seq_no: undefined }],
      ['other metadata', { ...base, metadata: { w: 'y' } }],
      ['canonical_text added', { ...base, canonical_text: 'x' }],
      ['latitude added', { ...base, latitude: 1 }],
      ['other file name', { ...base, upload: { ...base.upload, file_name: 'other.png' } }],
    ];
    for (const [name, body] of variants) {
      const res = await upload('screen', body);
      expect({ name, status: res.status }).toEqual({ name, status: 422 });
      expect(res.headers.get('idempotent-replayed')).toBeNull();
      await expectProblem(res, 422, 'idempotency_conflict');
    }
    const stored = await list('screen');
    expect(stored.filter((o) => o.idempotency_key === 'frame-2')).toEqual([obs]);
    // The other bytes were never published.
    expect(filesUnder(join(d.dataDir, 'blobs'), 'name')).not.toContain(sha256(makePng(2, 2, 3)));
    expect(filesUnder(join(d.dataDir, 'tmp'), 'name')).toEqual([]);
    // And the original still replays.
    expect((await upload('screen', base)).status).toBe(200);
  });

  it('keys are scoped per source', async () => {
    const png = makePng(2, 2, 4);
    const a = await upload('screen', uploadBody(png, 'shared-key'));
    const b = await upload('other', uploadBody(png, 'shared-key'));
    expect([a.status, b.status]).toEqual([201, 201]);
    const [oa, ob] = [await a.json(), await b.json()];
    expect(oa.observation_id).not.toBe(ob.observation_id);
    expect(oa.asset_id).toBe(ob.asset_id);
    // A different payload under the same key on another source is no conflict either.
    expect((await upload('other', uploadBody(png, 'frame-2'))).status).toBe(201);
  });

  it('10 concurrent identical requests store exactly one observation', async () => {
    const png = makePng(16, 16, 5);
    const body = uploadBody(png, 'burst', { canonical_text: 'concurrent text', metadata: { n: 1 } });
    const responses = await Promise.all(Array.from({ length: 10 }, () => upload('para', body)));
    const statuses = responses.map((r) => r.status);
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    for (let i = 0; i < 10; i++) {
      expect([200, 201, 409]).toContain(statuses[i]);
      if (statuses[i] === 409) expect(bodies[i].code).toBe('idempotency_in_flight');
      if (statuses[i] === 200) expect(responses[i].headers.get('idempotent-replayed')).toBe('true');
    }
    const ids = new Set(bodies.filter((_, i) => statuses[i] !== 409).map((b) => b.observation_id));
    expect(ids.size).toBe(1);
    const stored = await list('para');
    expect(stored).toHaveLength(1);
    expect(stored[0].observation_id).toBe([...ids][0]);
    expect(await source('para')).toMatchObject({ active_observation_count: 1, active_byte_length: png.length });
    expect(filesUnder(join(d.dataDir, 'tmp'), 'name')).toEqual([]);
    // Afterwards every retry is a plain replay.
    expect((await upload('para', body)).status).toBe(200);
  });

  it('10 concurrent requests with the same key but different payloads: one wins, the rest 409/422', async () => {
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => upload('para', uploadBody(makePng(4, 4, 100 + i), 'race'))));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    for (const s of statuses) expect([201, 409, 422]).toContain(s);
    expect((await list('para')).filter((o) => o.idempotency_key === 'race')).toHaveLength(1);
    expect(filesUnder(join(d.dataDir, 'tmp'), 'name')).toEqual([]);
  });

  it('a JSON upload and a multipart upload of the same content and fields are the same request', async () => {
    const png = makePng(3, 3, 6);
    const fields = {
      idempotency_key: 'json-then-mp',
      captured_at_ms: 5_000,
      stream_id: 'cam:1',
      seq_no: 7,
      canonical_text: 'txt',
      metadata: { k: 'v' },
    };
    const json = await upload('mixed', {
      ...fields,
      upload: { file_name: 'frame.png', media_type: 'image/png', content_base64: png.toString('base64') },
    });
    expect(json.status).toBe(201);
    const obs = await json.json();

    // The multipart form, with the file name and type given in the observation part...
    const mp1 = await multipart('mixed', png, { ...fields, upload: { file_name: 'frame.png', media_type: 'image/png' } });
    expect(mp1.status).toBe(200);
    expect(mp1.headers.get('idempotent-replayed')).toBe('true');
    expect(await mp1.json()).toEqual(obs);
    // ...or only in the file part's headers.
    const mp2 = await multipart('mixed', png, fields, { name: 'frame.png', type: 'image/png' });
    expect(mp2.status).toBe(200);
    expect((await mp2.json()).observation_id).toBe(obs.observation_id);
    // Different bytes in the multipart form: a conflict.
    await expectProblem(await multipart('mixed', makePng(3, 3, 7), fields), 422, 'idempotency_conflict');

    // And the other way round: multipart first, then JSON.
    const png2 = makePng(3, 3, 8);
    const mp = await multipart('mixed', png2, { idempotency_key: 'mp-then-json', latitude: 10.5, longitude: -20.25 }, { name: 'b.png' });
    expect(mp.status).toBe(201);
    const o2 = await mp.json();
    const j2 = await upload('mixed', uploadBody(png2, 'mp-then-json', { latitude: 10.5, longitude: -20.25 }, 'image/png'));
    // uploadBody names the file frame.png; the multipart file was b.png: a different request.
    expect(j2.status).toBe(422);
    const j3 = await upload('mixed', {
      upload: { file_name: 'b.png', media_type: 'image/png', content_base64: png2.toString('base64') },
      idempotency_key: 'mp-then-json',
      latitude: 10.5,
      longitude: -20.25,
    });
    expect(j3.status).toBe(200);
    expect((await j3.json()).observation_id).toBe(o2.observation_id);
    expect(await list('mixed')).toHaveLength(2);
  });

  it('media type spelling variants (case, parameters, aliases) fingerprint alike', async () => {
    const png = makePng(2, 2, 9);
    const first = await upload('mixed', uploadBody(png, 'mt', {}, 'image/png'));
    expect(first.status).toBe(201);
    const again = await upload('mixed', uploadBody(png, 'mt', {}, 'IMAGE/PNG'));
    expect(again.status).toBe(200);
  });

  it('after a DELETE the key is free again', async () => {
    const png = makePng(2, 2, 10);
    const first = await (await upload('other', uploadBody(png, 'reuse'))).json();
    expect((await d.req(`/v1/observations/${first.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    const second = await upload('other', uploadBody(makePng(2, 2, 11), 'reuse'));
    expect(second.status).toBe(201);
    expect((await second.json()).observation_id).not.toBe(first.observation_id);
  });

  it('replays and conflicts are audited with the key hashed', async () => {
    const res = await d.req('/v1/observation-audit?source_id=screen&limit=1000');
    const events = (await res.json()) as Array<{ event: string; reason?: string; idempotency_key_sha256?: string }>;
    const replays = events.filter((e) => e.event === 'upload_replayed');
    expect(replays.length).toBe(3);
    for (const r of replays) expect(r.idempotency_key_sha256).toMatch(/^[0-9a-f]{64}$/);
    const conflicts = events.filter((e) => e.event === 'upload_rejected' && e.reason === 'idempotency_conflict');
    expect(conflicts.length).toBe(9);
    const all = JSON.stringify(events);
    expect(all).not.toContain('frame-1');
    expect(all).not.toContain('frame-2');
  });
});
