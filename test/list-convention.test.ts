import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAM_PAGE_ROWS } from '../src/http/list.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody, upload as uploadView } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';

/**
 * The one list convention of every list route: a bare array by default (every row, streamed),
 * `limit` truncates it, `page=true` or a `cursor` answers Kheish's ListPage envelope, and a
 * cursor walk sees every row exactly once while uploads continue.
 */
const TOKEN = 'list-upload-token-0123456789';
let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
  await createSource(d, sourceBody('lc', TOKEN, { display_name: 'LC' }));
  for (let i = 0; i < 12; i++) await upload(`seed-${i}`, 1_000 + i);
});
afterAll(() => d.close());

const upload = (key: string, captured: number) =>
  uploadView(d, 'lc', TOKEN, makePng(1, 1, captured), key, 'image/png', { captured_at_ms: captured });

type Obs = { observation_id: string; captured_at_ms: number };

describe('list convention', () => {
  it('answers a bare JSON array without parameters, and every row', async () => {
    const res = await d.req('/v1/observations?source_id=lc');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const rows = (await res.json()) as Obs[];
    expect(Array.isArray(rows)).toBe(true);
    expect(rows).toHaveLength(12);
  });

  it('truncates the array with limit alone', async () => {
    const rows = (await (await d.req('/v1/observations?source_id=lc&limit=5')).json()) as Obs[];
    expect(rows.map((r) => r.captured_at_ms)).toEqual([1000, 1001, 1002, 1003, 1004]);
  });

  it('answers the ListPage envelope with page=true', async () => {
    const page = await (await d.req('/v1/observations?source_id=lc&page=true&limit=5')).json();
    expect(Object.keys(page).sort()).toEqual(['items', 'pagination']);
    expect(page.items).toHaveLength(5);
    expect(page.pagination).toEqual({ limit: 5, total_count: 12, has_more: true, next_cursor: expect.any(String), order: 'asc' });
    const last = await (await d.req(`/v1/observations?source_id=lc&limit=10&cursor=${page.pagination.next_cursor}`)).json();
    expect(last.items).toHaveLength(7);
    // The last page has no next_cursor at all (Kheish omits it), and has_more false.
    expect(last.pagination).toEqual({ limit: 10, total_count: 12, has_more: false, order: 'asc' });
    const desc = await (await d.req('/v1/observations?source_id=lc&page=true&order=desc&limit=1')).json();
    expect(desc.pagination.order).toBe('desc');
    expect(desc.items[0].captured_at_ms).toBe(1011);
  });

  it('a cursor walk returns every row exactly once while uploads continue', async () => {
    const existing = ((await (await d.req('/v1/observations?source_id=lc')).json()) as Obs[]).map((o) => o.observation_id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let n = 0;
    do {
      const q = `source_id=lc&limit=3&${cursor ? `cursor=${cursor}` : 'page=true'}`;
      const page = await (await d.req(`/v1/observations?${q}`)).json();
      seen.push(...page.items.map((o: Obs) => o.observation_id));
      cursor = page.pagination.next_cursor;
      // Uploads land before, at and after the walk's position while it goes on.
      await Promise.all([upload(`w-${n}-a`, 999 - n), upload(`w-${n}-b`, 1_005), upload(`w-${n}-c`, 5_000 + n)]);
      n++;
    } while (cursor && n < 50);
    expect(cursor).toBeUndefined();
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of existing) expect(seen.filter((s) => s === id)).toHaveLength(1);
  });

  it('streams an unlimited list over several internal pages as one valid array', async () => {
    // Enough audit records for several internal pages, written straight into the store.
    const db = d.daemon.services.db;
    const insert = db.prepare(
      `INSERT INTO audit_events (audit_id, at_ms, event, source_id, observation_id, detail) VALUES (?, ?, 'source_updated', 'bulk', NULL, '{}')`,
    );
    const total = STREAM_PAGE_ROWS * 2 + 7;
    db.transaction(() => {
      for (let i = 0; i < total; i++) insert.run(`aud_bulk_${String(i).padStart(6, '0')}`, 1_000 + i);
    })();
    const rows = (await (await d.req('/v1/observation-audit?source_id=bulk')).json()) as Array<{ recorded_at_ms: number }>;
    expect(rows).toHaveLength(total);
    expect(rows[0].recorded_at_ms).toBe(1_000 + total - 1); // newest first
    expect((await (await d.req('/v1/observation-audit?source_id=bulk&limit=2')).json()).length).toBe(2);
    expect((await (await d.req('/v1/observation-audit?source_id=bulk&page=true')).json()).pagination.total_count).toBe(total);
  });

  it('every list route answers a bare array', async () => {
    for (const path of ['/v1/observation-sources', '/v1/observations', '/v1/observation-audit', '/v1/derivations', '/v1/runs']) {
      expect(Array.isArray(await (await d.req(path)).json()), path).toBe(true);
      expect(Array.isArray(await (await d.req(`${path}?limit=1`)).json()), path).toBe(true);
      expect(Object.keys(await (await d.req(`${path}?page=true`)).json()).sort(), path).toEqual(['items', 'pagination']);
    }
  });
});
