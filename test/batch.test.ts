import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { makePng, uploadBody } from './helpers/media.js';

const TOKEN = 'batch-test-upload-token-01';
type Result = {
  index: number;
  status: number;
  observation?: { observation_id: string; sha256: string };
  error?: { code: string; status: number; errors?: Array<{ path: string }> };
};

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ limits: { max_batch_bytes: 64 * 1024 } });
  for (const [id, extra] of [
    ['cam', {}],
    ['limited', { ingest_rate_limit: { burst: 5, window_ms: 3_600_000 } }],
  ] as const) {
    const r = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: { source_id: id, display_name: id, kind: 'screen_snapshot', upload_token: TOKEN, ...extra },
    });
    expect(r.status).toBe(201);
  }
});
afterAll(() => d.close());

const batch = (source: string, body: unknown, token = TOKEN) =>
  d.req(`/v1/observation-sources/${source}/observations/batch`, { method: 'POST', token, json: body });

async function stored(source: string): Promise<number> {
  const r = await d.req(`/v1/observations?source_id=${source}&limit=1000`);
  return ((await r.json()) as unknown[]).length;
}

/** 100 distinct PNG uploads with three bad ones: truncated base64 (10), a PNG declared JPEG (50), a bad stream id (99). */
function hundredItems() {
  return Array.from({ length: 100 }, (_, i) => {
    const item = uploadBody(makePng(2, 2, 1000 + i), `item-${i}`, { stream_id: 'main', seq_no: i });
    if (i === 10) item.upload.content_base64 = item.upload.content_base64.slice(0, -3);
    if (i === 50) item.upload.media_type = 'image/jpeg';
    if (i === 99) (item as Record<string, unknown>).stream_id = 'a/b';
    return item;
  });
}

const BAD: Record<number, { status: number; code: string }> = {
  10: { status: 400, code: 'bad_request' },
  50: { status: 400, code: 'media_mismatch' },
  99: { status: 400, code: 'validation_failed' },
};

describe('batch upload', () => {
  it('stores the 97 good items of 100, reports the 3 bad ones precisely, and a replay stores nothing new', async () => {
    const items = hundredItems();
    const r = await batch('cam', { items });
    expect(r.status).toBe(200);
    const { results } = (await r.json()) as { results: Result[] };
    expect(results.map((x) => x.index)).toEqual([...Array(100).keys()]);
    for (const x of results) {
      if (BAD[x.index]) {
        expect({ status: x.status, code: x.error?.code, errStatus: x.error?.status }).toEqual({
          ...BAD[x.index],
          errStatus: BAD[x.index].status,
        });
        expect(x.observation).toBeUndefined();
      } else {
        expect(x.status, JSON.stringify(x.error)).toBe(201);
        expect(x.observation?.observation_id).toMatch(/^obs_/);
      }
    }
    expect(results[99].error?.errors?.map((e) => e.path)).toEqual(['stream_id']);
    expect(await stored('cam')).toBe(97);

    const again = (await (await batch('cam', { items })).json()) as { results: Result[] };
    for (const x of again.results) {
      if (BAD[x.index]) expect([x.status, x.error?.code]).toEqual([BAD[x.index].status, BAD[x.index].code]);
      else {
        expect(x.status).toBe(200);
        expect(x.observation?.observation_id).toBe(results[x.index].observation?.observation_id);
      }
    }
    expect(await stored('cam')).toBe(97);
  });

  it('an item reusing a key with different content is idempotency_conflict without touching the others', async () => {
    const items = [uploadBody(makePng(2, 2, 1001), 'item-1'), uploadBody(makePng(2, 2, 5000), 'fresh-1')];
    const { results } = (await (await batch('cam', { items })).json()) as { results: Result[] };
    expect(results.map((x) => [x.status, x.error?.code])).toEqual([
      [422, 'idempotency_conflict'],
      [201, undefined],
    ]);
  });

  it('refuses more than 100 items (400) and a body over max_batch_bytes (413), storing nothing', async () => {
    const before = await stored('cam');
    const many = Array.from({ length: 101 }, (_, i) => uploadBody(makePng(1, 1, i), `over-${i}`));
    const r = await batch('cam', { items: many });
    expect(r.status).toBe(400);
    expect((await r.json()).code).toBe('validation_failed');

    const big = [uploadBody(makePng(1, 1, 7), 'big', { canonical_text: 'x'.repeat(70 * 1024) })];
    const r2 = await batch('cam', { items: big });
    expect(r2.status).toBe(413);
    expect((await r2.json()).code).toBe('payload_too_large');
    expect(await stored('cam')).toBe(before);
  });

  it('authenticates before reading the body', async () => {
    const r = await batch('cam', { items: [] }, 'not-the-right-token-at-all');
    expect(r.status).toBe(401);
    expect((await r.json()).code).toBe('unauthorized');
  });

  it('the rate limit counts one token per item: items past the burst get their own 429', async () => {
    const items = Array.from({ length: 8 }, (_, i) => uploadBody(makePng(2, 2, 3000 + i), `rl-${i}`));
    const r = await batch('limited', { items });
    expect(r.status).toBe(200);
    const { results } = (await r.json()) as { results: Result[] };
    expect(results.map((x) => x.status)).toEqual([201, 201, 201, 201, 201, 429, 429, 429]);
    expect(results[7].error?.code).toBe('rate_limited');
    expect(await stored('limited')).toBe(5);
    // The bucket is empty now: the next batch is refused as a whole, before its body is read.
    const next = await batch('limited', { items: items.slice(0, 1) });
    expect(next.status).toBe(429);
    expect(next.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
