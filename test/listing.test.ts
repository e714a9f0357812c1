import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { blobPath, createSource, sha256, sourceBody, upload as uploadView } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const TOKEN = 'listing-token-0123456789';

interface Obs {
  observation_id: string;
  source_id: string;
  captured_at_ms: number;
  stream_id: string | null;
  retention_state: string;
  asset_id: string;
  canonical_text_asset_id: string | null;
  sha256: string;
  byte_length: number;
  idempotency_key: string;
}

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(() => d.close());

const upload = (sourceId: string, key: string, extra: Record<string, unknown> = {}, png = makePng(1, 1, 1)): Promise<Obs> =>
  uploadView(d, sourceId, TOKEN, png, key, 'image/png', extra) as Promise<Obs>;

/** One page of the ListPage envelope (`page=true`), as `{data, cursor}` for the walks below. */
async function list(query: string): Promise<{ data: Obs[]; cursor: { next: string | null } }> {
  const res = await d.req(`/v1/observations?page=true&${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  const page = (await res.json()) as { items: Obs[]; pagination: { next_cursor?: string } };
  return { data: page.items, cursor: { next: page.pagination.next_cursor ?? null } };
}

const ids = (rows: Obs[]) => rows.map((r) => r.observation_id);
const byKey = (a: Obs, b: Obs) =>
  a.captured_at_ms - b.captured_at_ms || (a.observation_id < b.observation_id ? -1 : a.observation_id > b.observation_id ? 1 : 0);

async function counters(sourceId: string) {
  const v = await (await d.req(`/v1/observation-sources/${sourceId}`)).json();
  return { count: v.active_observation_count, bytes: v.active_byte_length };
}

describe('GET /v1/observations filters', () => {
  const o: Record<string, Obs> = {};
  beforeAll(async () => {
    await createSource(d, sourceBody('fa', TOKEN));
    await createSource(d, sourceBody('fb', TOKEN));
    o.a1 = await upload('fa', 'a1', { captured_at_ms: 1000, stream_id: 's1' });
    o.a2 = await upload('fa', 'a2', { captured_at_ms: 2000, stream_id: 's1' });
    o.a3 = await upload('fa', 'a3', { captured_at_ms: 3000, stream_id: 's2' });
    o.b2 = await upload('fb', 'b2', { captured_at_ms: 2000, stream_id: 's1' });
    o.b4 = await upload('fb', 'b4', { captured_at_ms: 4000 });
  });

  it('source_id narrows to one source, in capture order', async () => {
    expect(ids((await list('source_id=fa')).data)).toEqual(ids([o.a1, o.a2, o.a3]));
    expect(ids((await list('source_id=fb')).data)).toEqual(ids([o.b2, o.b4]));
    expect((await list('source_id=nobody')).data).toEqual([]);
  });

  it('stream_id with source_id narrows to one stream', async () => {
    expect(ids((await list('source_id=fa&stream_id=s1')).data)).toEqual(ids([o.a1, o.a2]));
    expect(ids((await list('source_id=fb&stream_id=s1')).data)).toEqual(ids([o.b2]));
    expect(ids((await list('source_id=fa&stream_id=s2')).data)).toEqual(ids([o.a3]));
  });

  it('stream_id without source_id is 400', async () => {
    await expectProblem(await d.req('/v1/observations?stream_id=s1'), 400, 'validation_failed');
  });

  it('after_ms and before_ms are inclusive bounds on captured_at_ms', async () => {
    const all = ids([o.a1, o.a2, o.b2, o.a3, o.b4].sort(byKey));
    const rows = (q: string) => list(q).then((r) => ids(r.data));
    expect(await rows('')).toEqual(all);
    expect(await rows('after_ms=2000')).toEqual(ids([o.a2, o.b2, o.a3, o.b4].sort(byKey)));
    expect(await rows('before_ms=2000')).toEqual(ids([o.a1, o.a2, o.b2].sort(byKey)));
    expect(await rows('after_ms=2000&before_ms=2000')).toEqual(ids([o.a2, o.b2].sort(byKey)));
    expect(await rows('after_ms=2001&before_ms=3999')).toEqual(ids([o.a3]));
    expect(await rows('after_ms=3001&before_ms=3999')).toEqual([]);
    expect(await rows('source_id=fa&after_ms=1000&before_ms=2999')).toEqual(ids([o.a1, o.a2]));
    expect(await rows('after_ms=4000')).toEqual(ids([o.b4]));
    expect(await rows('after_ms=-5&before_ms=1000')).toEqual(ids([o.a1]));
  });

  it('order=desc reverses the order; order=asc is the default', async () => {
    const asc = ids((await list('')).data);
    expect(ids((await list('order=asc')).data)).toEqual(asc);
    expect(ids((await list('order=desc')).data)).toEqual([...asc].reverse());
  });

  it('refuses bad query parameters with 400', async () => {
    for (const q of [
      'limit=abc',
      'limit=1.5',
      'order=sideways',
      'after_ms=soon',
      'before_ms=1e',
      'after_ms=',
      'after_ms=0x10',
      'before_ms=1e3',
      'after_ms=1.0',
      'after_ms=%201',
      'include_purged=yes',
      'source_id=..',
      'source_id=a%2Fb',
      'limit=1&limit=2',
      'page=maybe',
    ]) {
      const res = await d.req(`/v1/observations?${q}`);
      expect({ q, status: res.status }).toEqual({ q, status: 400 });
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(['bad_request', 'validation_failed']).toContain((await res.json()).code);
    }
  });

  it('clamps limit to 1..1000 as Kheish does, and ignores unknown parameters', async () => {
    expect(await (await d.req('/v1/observations?limit=0')).json()).toHaveLength(1);
    expect(await (await d.req('/v1/observations?limit=-1')).json()).toHaveLength(1);
    expect(await (await d.req('/v1/observations?limit=5000')).json()).toHaveLength(5);
    expect(await (await d.req('/v1/observations?unknown=1')).json()).toHaveLength(5);
  });

  it('accepts limit at both bounds', async () => {
    const one = await list('limit=1');
    expect(one.data).toHaveLength(1);
    expect(one.cursor.next).toEqual(expect.any(String));
    const max = await list('limit=1000');
    expect(max.data).toHaveLength(5);
    expect(max.cursor.next).toBeNull();
  });

  it('bad cursors are 400', async () => {
    await expectProblem(await d.req('/v1/observations?cursor=garbage!!'), 400, 'bad_request');
    await expectProblem(await d.req(`/v1/observations?cursor=${Buffer.from('[1,2,3]').toString('base64url')}`), 400, 'bad_request');
    const forged = Buffer.from(JSON.stringify(['observations:asc', 'not-a-number', 'obs_x'])).toString('base64url');
    await expectProblem(await d.req(`/v1/observations?cursor=${forged}`), 400, 'bad_request');
    // A cursor made by another listing (the audit trail) is refused too.
    const audit = await (await d.req('/v1/observation-audit?limit=1&page=true')).json();
    expect(audit.pagination.next_cursor).toEqual(expect.any(String));
    await expectProblem(await d.req(`/v1/observations?cursor=${audit.pagination.next_cursor}`), 400, 'bad_request');
  });

  it('a cursor from an ascending walk is refused for a descending one (and vice versa)', async () => {
    const asc = await list('limit=2&order=asc');
    await expectProblem(await d.req(`/v1/observations?limit=2&order=desc&cursor=${asc.cursor.next}`), 400, 'bad_request');
    const desc = await list('limit=2&order=desc');
    await expectProblem(await d.req(`/v1/observations?limit=2&cursor=${desc.cursor.next}`), 400, 'bad_request');
    // And each works in its own direction.
    expect((await list(`limit=2&order=desc&cursor=${desc.cursor.next}`)).data).toHaveLength(2);
  });

  it('include_purged shows purged observations, which are hidden by default', async () => {
    await createSource(d, sourceBody('fq', TOKEN, { max_active_observations: 1 }));
    const first = await upload('fq', 'q1', { captured_at_ms: 10 }, makePng(1, 1, 77));
    const second = await upload('fq', 'q2', { captured_at_ms: 20 }, makePng(1, 1, 78));
    expect(ids((await list('source_id=fq')).data)).toEqual([second.observation_id]);
    expect(ids((await list('source_id=fq&include_purged=false')).data)).toEqual([second.observation_id]);
    const withPurged = (await list('source_id=fq&include_purged=true')).data;
    expect(ids(withPurged)).toEqual([first.observation_id, second.observation_id]);
    expect(withPurged.map((r) => r.retention_state)).toEqual(['purged', 'active']);
    expect(ids((await list('source_id=fq&include_purged=1')).data)).toHaveLength(2);
    expect(await counters('fq')).toEqual({ count: 1, bytes: second.byte_length });
    // The purged observation is still readable by id, as purged.
    const got = await (await d.req(`/v1/observations/${first.observation_id}`)).json();
    expect(got.retention_state).toBe('purged');
  });
});

describe('cursor pagination', () => {
  const N = 250;
  let all: Obs[] = [];
  beforeAll(async () => {
    await createSource(d, sourceBody('pg', TOKEN));
    // Capture times repeat (3 per millisecond) so ties fall across page boundaries.
    for (let i = 0; i < N; i += 25) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(25, N - i) }, (_, j) =>
          upload('pg', `p${i + j}`, { captured_at_ms: 100_000 + Math.floor((((i + j) * 7) % N) / 3) }),
        ),
      );
      all.push(...batch);
    }
    all = all.sort(byKey);
    expect(new Set(ids(all)).size).toBe(N);
  });

  async function walk(query: string, limit: number, between?: (page: number) => Promise<void>) {
    const seen: Obs[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await list(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.data.length).toBeLessThanOrEqual(limit);
      seen.push(...page.data);
      cursor = page.cursor.next;
      pages++;
      if (between) await between(pages);
      expect(pages).toBeLessThan(100);
    } while (cursor);
    return { seen, pages };
  }

  it('walks 250 observations in pages of 100: 250 distinct rows in order', async () => {
    const { seen, pages } = await walk('source_id=pg', 100);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(N);
    expect(new Set(ids(seen)).size).toBe(N);
    expect(ids(seen)).toEqual(ids(all));
  });

  it('walks them in descending order too', async () => {
    const { seen } = await walk('source_id=pg&order=desc', 100);
    expect(ids(seen)).toEqual(ids(all).reverse());
  });

  it('defaults to pages of 100', async () => {
    const page = await list('source_id=pg');
    expect(page.data).toHaveLength(100);
    expect(ids(page.data)).toEqual(ids(all.slice(0, 100)));
  });

  it('a walk while uploads continue returns every pre-existing row exactly once', async () => {
    const before = await list('source_id=pg&limit=1000');
    const existing = ids(before.data);
    let k = 0;
    const { seen } = await walk('source_id=pg', 40, async () => {
      // New rows land before, inside and after the walk's position, with tied capture times.
      await Promise.all(
        [99_000, 100_000, 100_040, 100_041, 100_083, 200_000].map((t) => upload('pg', `late-${k++}`, { captured_at_ms: t })),
      );
    });
    const seenIds = ids(seen);
    expect(new Set(seenIds).size).toBe(seenIds.length); // no duplicates at all
    const count = new Map<string, number>();
    for (const id of seenIds) count.set(id, (count.get(id) ?? 0) + 1);
    for (const id of existing) expect(count.get(id)).toBe(1);
    expect([...seen].sort(byKey).map((r) => r.observation_id)).toEqual(seenIds); // still in order
    expect(seen.length).toBeGreaterThan(existing.length); // and some new rows after the position showed up
  });
});

describe('GET and DELETE /v1/observations/{id}', () => {
  beforeAll(async () => {
    await createSource(d, sourceBody('del', TOKEN));
    await createSource(d, sourceBody('del2', TOKEN));
  });

  it('GET: 404 for an unknown id of any form (Kheish ids, ours, malformed ones)', async () => {
    await expectProblem(await d.req(`/v1/observations/obs_${'0'.repeat(26)}`), 404, 'not_found');
    for (const bad of ['nope', 'observation-1', 'obs_123', `src_${'0'.repeat(26)}`, `obs_${'U'.repeat(26)}`, 'a%20b', 'x'.repeat(300)]) {
      await expectProblem(await d.req(`/v1/observations/${bad}`), 404, 'not_found');
    }
    await expectProblem(await d.req(`/v1/observations/obs_${'0'.repeat(26)}`, { method: 'DELETE' }), 404, 'not_found');
    await expectProblem(await d.req('/v1/observations/nope', { method: 'DELETE' }), 404, 'not_found');
  });

  it('DELETE erases the row now (204, then 404) and a blob once nothing shares it; counters stay exact', async () => {
    const shared = makePng(4, 4, 500);
    const own = makePng(4, 4, 501);
    const x = await upload('del', 'x', { canonical_text: 'text of x' }, shared);
    const y = await upload('del2', 'y', {}, shared);
    const z = await upload('del', 'z', { canonical_text: 'text of x' }, own);
    expect(await counters('del')).toEqual({ count: 2, bytes: shared.length + own.length });
    expect(await counters('del2')).toEqual({ count: 1, bytes: shared.length });
    for (const p of [sha256(shared), sha256(own), sha256('text of x')]) expect(existsSync(blobPath(d.dataDir, p))).toBe(true);

    // x shares its bytes with y and its text with z: nothing is erased.
    expect((await d.req(`/v1/observations/${x.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    await expectProblem(await d.req(`/v1/observations/${x.observation_id}`), 404, 'not_found');
    await expectProblem(await d.req(`/v1/observations/${x.observation_id}`, { method: 'DELETE' }), 404, 'not_found');
    expect(ids((await list('source_id=del&include_purged=true')).data)).toEqual([z.observation_id]);
    expect(existsSync(blobPath(d.dataDir, sha256(shared)))).toBe(true);
    expect(existsSync(blobPath(d.dataDir, sha256('text of x')))).toBe(true);
    expect((await d.req(`/v1/assets/${x.asset_id}`)).status).toBe(200);
    expect(await counters('del')).toEqual({ count: 1, bytes: own.length });

    // z was the last holder of its bytes and of the text.
    expect((await d.req(`/v1/observations/${z.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(existsSync(blobPath(d.dataDir, sha256(own)))).toBe(false);
    expect(existsSync(blobPath(d.dataDir, sha256('text of x')))).toBe(false);
    expect((await d.req(`/v1/assets/${z.asset_id}`)).status).toBe(404);
    expect((await d.req(`/v1/assets/${z.canonical_text_asset_id}/content`)).status).toBe(404);
    expect(await counters('del')).toEqual({ count: 0, bytes: 0 });

    // y was the last holder of the shared bytes.
    expect((await d.req(`/v1/observations/${y.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(existsSync(blobPath(d.dataDir, sha256(shared)))).toBe(false);
    expect(await counters('del2')).toEqual({ count: 0, bytes: 0 });

    const events = await (await d.req('/v1/observation-audit?event=observation_deleted&limit=1000')).json();
    expect(events.map((e: { observation_id: string }) => e.observation_id)).toEqual(
      expect.arrayContaining([x.observation_id, y.observation_id, z.observation_id]),
    );
  });

  it('counters are exact through many uploads, replays, rejections and deletes', async () => {
    await createSource(d, sourceBody('cnt', TOKEN));
    const made: Obs[] = [];
    let bytes = 0;
    for (let i = 0; i < 12; i++) {
      const png = makePng(1 + (i % 4), 1 + (i % 3), 900 + i);
      const o = await upload('cnt', `c${i}`, {}, png);
      made.push(o);
      bytes += png.length;
      // A replay and a rejected upload change nothing.
      const replay = await d.req('/v1/observation-sources/cnt/observations', {
        method: 'POST',
        token: TOKEN,
        json: uploadBody(png, `c${i}`),
      });
      expect(replay.status).toBe(200);
      const rej = await d.req('/v1/observation-sources/cnt/observations', {
        method: 'POST',
        token: TOKEN,
        json: uploadBody(png, `bad${i}`, {}, 'image/jpeg'),
      });
      expect(rej.status).toBe(400);
    }
    expect(await counters('cnt')).toEqual({ count: 12, bytes });
    for (const o of made.filter((_, i) => i % 3 === 0)) {
      expect((await d.req(`/v1/observations/${o.observation_id}`, { method: 'DELETE' })).status).toBe(204);
      bytes -= o.byte_length;
    }
    expect(await counters('cnt')).toEqual({ count: 8, bytes });
    const listed = (await list('source_id=cnt&limit=1000')).data;
    expect(listed).toHaveLength(8);
    expect(listed.reduce((s, r) => s + r.byte_length, 0)).toBe(bytes);
  });

  it('deleting a purged observation leaves the active counters alone', async () => {
    await createSource(d, sourceBody('pd', TOKEN, { max_active_observations: 1 }));
    const a = await upload('pd', 'a', {}, makePng(2, 2, 600));
    const b = await upload('pd', 'b', {}, makePng(2, 2, 601));
    expect((await (await d.req(`/v1/observations/${a.observation_id}`)).json()).retention_state).toBe('purged');
    expect(await counters('pd')).toEqual({ count: 1, bytes: b.byte_length });
    expect((await d.req(`/v1/observations/${a.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await counters('pd')).toEqual({ count: 1, bytes: b.byte_length });
    expect(ids((await list('source_id=pd&include_purged=true')).data)).toEqual([b.observation_id]);
  });
});
