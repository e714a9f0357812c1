import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { observationPageSql } from '../src/observations/repo.js';
import { observationListQuerySchema } from '../src/observations/schemas.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { allPages, createSource, sourceBody, upload } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const TOKEN = 'status-filter-token-0123';
const STATUSES = ['pending', 'processing', 'completed', 'failed', null] as const;

interface Obs {
  observation_id: string;
  source_id: string;
  stream_id: string | null;
  captured_at_ms: number;
  processing_status: string | null;
}

let d: TestDaemon;
/** Every observation made, with the status the test gave it. */
const made: Obs[] = [];

beforeAll(async () => {
  d = await startDaemon();
  for (const id of ['a', 'b']) await createSource(d, sourceBody(id, TOKEN));
  // 40 observations: statuses cycle over the five values, two sources, two streams on "a".
  const setStatus = d.daemon.services.db.prepare(`UPDATE observations SET processing_status = ? WHERE observation_id = ?`);
  for (let i = 0; i < 40; i++) {
    const source = i % 2 ? 'b' : 'a';
    const extra = {
      captured_at_ms: 1_000 + i * 10,
      canonical_text: `shelf label number ${i}`,
      ...(source === 'a' ? { stream_id: i % 4 ? 's1' : 's2' } : {}),
    };
    const view = await upload(d, source, TOKEN, makePng(1, 1, i), `k${i}`, 'image/png', extra);
    const o: Obs = { ...view, processing_status: STATUSES[i % STATUSES.length] };
    // The derivation queue moves this column; the fixture sets it directly.
    setStatus.run(o.processing_status, o.observation_id);
    made.push(o);
  }
});
afterAll(() => d.close());

/** The bare array of a list without paging. */
async function list(query: string): Promise<Obs[]> {
  const res = await d.req(`/v1/observations?${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

/** Follows `pagination.next_cursor` from `page=true` to the end; returns every row seen. */
async function walk(query: string): Promise<Obs[]> {
  return (await allPages<Obs>(d.url, `/v1/observations?${query}`)).flatMap((p) => p.items);
}

const ids = (rows: Obs[]) => rows.map((o) => o.observation_id);
const expected = (pred: (o: Obs) => boolean, desc = false) => {
  const rows = made.filter(pred).sort((x, y) => x.captured_at_ms - y.captured_at_ms);
  return ids(desc ? rows.reverse() : rows);
};

describe('GET /v1/observations?processing_status=', () => {
  it('returns only observations in the status asked for', async () => {
    for (const s of ['pending', 'processing', 'completed', 'failed']) {
      const data = await list(`processing_status=${s}`);
      expect(ids(data)).toEqual(expected((o) => o.processing_status === s));
      expect(data.every((o) => o.processing_status === s)).toBe(true);
    }
  });

  it('takes several statuses comma-separated or repeated, in capture order', async () => {
    const want = expected((o) => o.processing_status === 'failed' || o.processing_status === 'pending');
    expect(ids(await list('processing_status=failed,pending'))).toEqual(want);
    expect(ids(await list('processing_status=pending&processing_status=failed'))).toEqual(want);
    expect(ids(await list('processing_status=failed,pending&processing_status=failed'))).toEqual(want);
  });

  it('combines with source, stream, time bounds and order', async () => {
    const q = 'processing_status=failed,completed&source_id=a&stream_id=s1&after_ms=1050&before_ms=1350&order=desc';
    const want = expected(
      (o) =>
        ['failed', 'completed'].includes(o.processing_status ?? '') &&
        o.source_id === 'a' &&
        o.stream_id === 's1' &&
        o.captured_at_ms >= 1050 &&
        o.captured_at_ms <= 1350,
      true,
    );
    expect(want.length).toBeGreaterThan(0);
    expect(ids(await list(q))).toEqual(want);
  });

  it('pages with page=true and cursor, each matching row exactly once; limit alone truncates', async () => {
    expect(ids(await list('processing_status=failed&limit=2'))).toEqual(expected((o) => o.processing_status === 'failed').slice(0, 2));
    const rows = await walk('processing_status=failed,processing&limit=3');
    expect(ids(rows)).toEqual(expected((o) => o.processing_status === 'failed' || o.processing_status === 'processing'));
    const desc = await walk('processing_status=completed&limit=2&order=desc&source_id=b');
    expect(ids(desc)).toEqual(expected((o) => o.processing_status === 'completed' && o.source_id === 'b', true));
    const first = await (await d.req('/v1/observations?processing_status=failed&page=true&limit=3')).json();
    expect(first.pagination).toMatchObject({
      limit: 3,
      total_count: expected((o) => o.processing_status === 'failed').length,
      has_more: true,
    });
    // With a source as well: counted over the filter, not the source's own counter of every active row.
    const ofSource = await (await d.req('/v1/observations?processing_status=failed&source_id=a&page=true&limit=1')).json();
    expect(ofSource.pagination.total_count).toBe(expected((o) => o.processing_status === 'failed' && o.source_id === 'a').length);
  });

  it('includes purged observations only with include_purged', async () => {
    const victim = made.find((o) => o.processing_status === 'failed')!;
    const del = d.daemon.services.db.prepare(
      `UPDATE observations SET retention_state = 'purged', purged_at_ms = 1 WHERE observation_id = ?`,
    );
    del.run(victim.observation_id);
    try {
      expect(ids(await list('processing_status=failed'))).not.toContain(victim.observation_id);
      expect(ids(await list('processing_status=failed&include_purged=true'))).toContain(victim.observation_id);
    } finally {
      d.daemon.services.db
        .prepare(`UPDATE observations SET retention_state = 'active', purged_at_ms = NULL WHERE observation_id = ?`)
        .run(victim.observation_id);
    }
  });

  it.each(['done', 'FAILED', '', 'failed,', 'failed,nope'])('refuses processing_status=%j with 400', async (v) => {
    const body = await expectProblem(await d.req(`/v1/observations?processing_status=${encodeURIComponent(v)}`), 400, 'validation_failed');
    expect(JSON.stringify(body.errors)).toContain('processing_status');
  });

  it('still refuses other repeated parameters', async () => {
    await expectProblem(await d.req('/v1/observations?source_id=a&source_id=b'), 400, 'bad_request');
  });

  it('finds the failed ones through the status index, in index order (no scan, no sort)', () => {
    const db = d.daemon.services.db;
    const plan = (query: Record<string, string>) => {
      const { limit: _l, page: _p, cursor, ...filter } = observationListQuerySchema.parse(query);
      const { sql, args } = observationPageSql(filter, cursor, 100);
      return (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...args) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
    };
    const queries: Array<Record<string, string>> = [
      { processing_status: 'failed' },
      { processing_status: 'failed', order: 'desc' },
      { processing_status: 'failed', after_ms: '5', before_ms: '100000' },
      { processing_status: 'failed', cursor: Buffer.from(JSON.stringify(['observations:asc', 5, 'obs_x'])).toString('base64url') },
    ];
    for (const query of queries) {
      const p = plan(query);
      expect(p, JSON.stringify(query)).toMatch(/USING INDEX observations_status_captured/);
      expect(p, JSON.stringify(query)).not.toMatch(/TEMP B-TREE/);
    }
    // Several statuses: one index range each, merged by a sort of the matches only.
    expect(plan({ processing_status: 'failed,pending' })).toMatch(/USING INDEX observations_status_captured/);
  });
});

describe('GET /v1/search?processing_status=', () => {
  /** The observation ids of every hit (one page of up to 100), sorted. */
  async function search(query: string): Promise<string[]> {
    const res = await d.req(`/v1/search?q=shelf&limit=100&${query}`);
    expect(res.status, await res.clone().text()).toBe(200);
    const hits = (await res.json()) as Array<{ observation: Obs }>;
    return hits.map((h) => h.observation.observation_id).sort();
  }
  // The observations whose text is indexed (the include_purged test above purged one for a
  // moment, and a purge drops its text from the index for good).
  let indexed = new Set<string>();
  const want = (pred: (o: Obs) => boolean) => ids(made.filter((o) => indexed.has(o.observation_id) && pred(o))).sort();

  it('finds only matches in the statuses asked for, comma-separated or repeated, with the other filters', async () => {
    indexed = new Set(await search(''));
    expect(indexed.size).toBeGreaterThanOrEqual(made.length - 1);
    expect(await search('processing_status=failed')).toEqual(want((o) => o.processing_status === 'failed'));
    const failedOrPending = want((o) => o.processing_status === 'failed' || o.processing_status === 'pending');
    expect(await search('processing_status=failed,pending')).toEqual(failedOrPending);
    expect(await search('processing_status=pending&processing_status=failed')).toEqual(failedOrPending);
    expect(await search('processing_status=completed&source_id=a&after_ms=1100')).toEqual(
      want((o) => o.processing_status === 'completed' && o.source_id === 'a' && o.captured_at_ms >= 1100),
    );
  });

  it('refuses an unknown status with 400, and still refuses other repeated parameters', async () => {
    const body = await expectProblem(await d.req('/v1/search?q=shelf&processing_status=done'), 400, 'validation_failed');
    expect(JSON.stringify(body.errors)).toContain('processing_status');
    await expectProblem(await d.req('/v1/search?q=shelf&source_id=a&source_id=b'), 400, 'bad_request');
  });
});
