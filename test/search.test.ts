import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ObservationView } from '../src/observations/schemas.js';
import { backfillSearchIndex } from '../src/search/backfill.js';
import type { SearchHit } from '../src/search/schemas.js';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { content, eventually, upload } from './helpers/derivations.js';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fake-openai.js';
import { createSource } from './helpers/fixtures.js';
import { makePng, makeWav } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';
import { byIds, materialize } from './helpers/runs.js';
import { textPng } from './helpers/text-png.js';

const ADMIN = 'search-admin-token-0001';
const READER = 'search-reader-token-001';
const KEY_ENV = 'OBSERVD_TEST_SEARCH_STT_KEY';
process.env[KEY_ENV] = 'sk-test-not-a-real-key';

let seed = 1;
/** Uploads a tiny PNG with uploader text; returns the observation. */
async function put(d: TestDaemon, source: string, token: string, text: string, extra: Record<string, unknown> = {}) {
  return upload(d, source, token, makePng(2, 2, seed++), `k-${seed}`, 'image/png', { canonical_text: text, ...extra });
}

async function search(d: TestDaemon, query: string, token = ADMIN): Promise<SearchHit[]> {
  const r = await d.req(`/v1/search?${query}`, { token });
  expect(r.status, await r.clone().text()).toBe(200);
  return r.json();
}
const ids = (hits: SearchHit[]) => hits.map((h) => h.observation.observation_id);
const q = (s: string) => `q=${encodeURIComponent(s)}`;

describe('GET /v1/search', () => {
  const clock = testClock(Date.UTC(2026, 5, 1));
  let d: TestDaemon;
  let screen: string;
  let other: string;
  const obs: Record<string, ObservationView> = {};

  beforeAll(async () => {
    d = await startDaemon({ admin_token: ADMIN, readonly_token: READER }, { now: clock });
    screen = await createSource(
      d,
      { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot', sensitivity: 'standard' },
      ADMIN,
    );
    other = await createSource(d, { source_id: 'webcam', display_name: 'Cam', kind: 'webcam_snapshot', sensitivity: 'standard' }, ADMIN);
    obs.editor = await put(d, 'screen', screen, 'Editing search.ts in the editor: export function parseQuery', {
      captured_at_ms: 1000,
      stream_id: 'main',
      metadata: { window: 'editor', monitor: 2, focused: true },
    });
    obs.browser = await put(d, 'screen', screen, 'Browser tab: SQLite FTS5 documentation, full-text query syntax', {
      captured_at_ms: 2000,
      stream_id: 'side',
      metadata: { window: 'browser', monitor: 1 },
    });
    obs.terminal = await put(d, 'screen', screen, 'Terminal: npm run bench, query latency p99 under budget; query query query', {
      captured_at_ms: 3000,
      stream_id: 'main',
      metadata: { window: 'terminal' },
    });
    obs.cam = await put(d, 'webcam', other, 'Whiteboard photo: search query plan sketch', { captured_at_ms: 4000 });
    obs.twinOld = await put(d, 'screen', screen, 'identical twin text zebra', { captured_at_ms: 5000 });
    obs.twinNew = await put(d, 'screen', screen, 'identical twin text zebra', { captured_at_ms: 6000 });
  });
  afterAll(() => d?.close());

  it('answers hits with the observation view, a score and a snippet with the matches marked', async () => {
    const hits = await search(d, q('documentation'));
    expect(ids(hits)).toEqual([obs.browser.observation_id]);
    expect(hits[0].observation).toEqual(obs.browser);
    expect(hits[0].score).toBeGreaterThan(0);
    expect(hits[0].snippet).toContain('«documentation»');
  });

  it('ranks by relevance, then the newest capture first among equals', async () => {
    const hits = await search(d, q('query'));
    expect(ids(hits)[0]).toBe(obs.terminal.observation_id); // four occurrences
    const twins = await search(d, q('zebra'));
    expect(ids(twins)).toEqual([obs.twinNew.observation_id, obs.twinOld.observation_id]);
    expect(twins[0].score).toBe(twins[1].score);
  });

  it('reads words (all must match), "phrases", prefix* and -exclusions', async () => {
    expect(ids(await search(d, q('query syntax')))).toEqual([obs.browser.observation_id]);
    expect(ids(await search(d, q('query nothinglikethis')))).toEqual([]);
    expect(ids(await search(d, q('"query plan"')))).toEqual([obs.cam.observation_id]);
    expect(ids(await search(d, q('"plan query"')))).toEqual([]);
    expect(ids(await search(d, q('docum*')))).toEqual([obs.browser.observation_id]);
    expect(new Set(ids(await search(d, q('query -terminal -"plan sketch"'))))).toEqual(new Set([obs.browser.observation_id]));
    // Case and diacritics do not matter.
    expect(ids(await search(d, q('SQLITE fts5 Documëntation')))).toEqual([obs.browser.observation_id]);
  });

  it('treats FTS operators and stray syntax as words', async () => {
    for (const odd of [
      'query OR nothing',
      'NEAR(query syntax)',
      'query AND',
      'body:query',
      '(query',
      'query"',
      '^query',
      '{query}',
      'query*  *',
      '"unterminated query',
    ]) {
      const r = await d.req(`/v1/search?${q(odd)}`, { token: ADMIN });
      expect(r.status, odd).toBe(200);
    }
    expect(ids(await search(d, q('query OR nothing')))).toEqual([]); // "or" and "nothing" are words that must match
  });

  it('filters by source, stream, kind, capture time and metadata', async () => {
    expect(new Set(ids(await search(d, `${q('query')}&source_id=webcam`)))).toEqual(new Set([obs.cam.observation_id]));
    expect(new Set(ids(await search(d, `${q('query')}&kind=webcam_snapshot`)))).toEqual(new Set([obs.cam.observation_id]));
    expect(new Set(ids(await search(d, `${q('query')}&source_id=screen&stream_id=side`)))).toEqual(new Set([obs.browser.observation_id]));
    expect(new Set(ids(await search(d, `${q('query')}&after_ms=2000&before_ms=3000`)))).toEqual(
      new Set([obs.browser.observation_id, obs.terminal.observation_id]),
    );
    expect(ids(await search(d, `${q('query')}&metadata.window=terminal`))).toEqual([obs.terminal.observation_id]);
    expect(ids(await search(d, `${q('editor')}&metadata.monitor=2&metadata.focused=true`))).toEqual([obs.editor.observation_id]);
    expect(ids(await search(d, `${q('editor')}&metadata.monitor=1`))).toEqual([]);
    expect(ids(await search(d, `${q('editor')}&metadata.absent=x`))).toEqual([]);
  });

  it('refuses bad parameters with a 400 problem', async () => {
    await expectProblem(await d.req(`/v1/search?${q('query')}&stream_id=main`, { token: ADMIN }), 400, 'validation_failed');
    await expectProblem(await d.req(`/v1/search`, { token: ADMIN }), 400, 'validation_failed');
    await expectProblem(await d.req(`/v1/search?q=%20%20`, { token: ADMIN }), 400, 'validation_failed');
    await expectProblem(await d.req(`/v1/search?${q('-query')}`, { token: ADMIN }), 400, 'bad_request');
    await expectProblem(await d.req(`/v1/search?${q('!!! ???')}`, { token: ADMIN }), 400, 'bad_request');
    await expectProblem(await d.req(`/v1/search?${q('query')}&kind=fax`, { token: ADMIN }), 400, 'validation_failed');
    await expectProblem(await d.req(`/v1/search?${q('query')}&after_ms=soon`, { token: ADMIN }), 400, 'validation_failed');
    await expectProblem(await d.req(`/v1/search?${q('query')}&metadata.a%22b=1`, { token: ADMIN }), 400, 'validation_failed');
    await expectProblem(await d.req(`/v1/search?${q('query')}&q=again`, { token: ADMIN }), 400, 'bad_request');
    await expectProblem(await d.req(`/v1/search?${q('query')}&cursor=bogus`, { token: ADMIN }), 400, 'bad_request');
    await expectProblem(await d.req(`/v1/search?${q('query')}`), 401, 'unauthorized');
  });

  it('follows the list convention: bare array, limit truncates, page=true and cursors page', async () => {
    const every = await search(d, q('query'));
    expect(every.length).toBe(3); // "parseQuery" is one word, not "query"
    expect(ids(await search(d, `${q('query')}&limit=1`))).toEqual(ids(every).slice(0, 1));
    const first = await (await d.req(`/v1/search?${q('query')}&page=true&limit=2`, { token: ADMIN })).json();
    expect(first.pagination).toMatchObject({ limit: 2, total_count: 3, has_more: true, order: 'relevance' });
    expect(ids(first.items)).toEqual(ids(every).slice(0, 2));
    const second = await (await d.req(`/v1/search?${q('query')}&limit=2&cursor=${first.pagination.next_cursor}`, { token: ADMIN })).json();
    expect(ids(second.items)).toEqual(ids(every).slice(2));
    expect(second.pagination).toMatchObject({ has_more: false });
    // A cursor belongs to its search.
    await expectProblem(
      await d.req(`/v1/search?${q('zebra')}&cursor=${first.pagination.next_cursor}`, { token: ADMIN }),
      400,
      'bad_request',
    );
  });

  it('leaves an observation out once it is deleted, and its source with it', async () => {
    const gone = await put(d, 'screen', screen, 'ephemeral walrus marker');
    expect(ids(await search(d, q('walrus')))).toEqual([gone.observation_id]);
    expect((await d.req(`/v1/observations/${gone.observation_id}`, { method: 'DELETE', token: ADMIN })).status).toBe(204);
    expect(await search(d, q('walrus'))).toEqual([]);
    expect(indexed(d, 'walrus')).toBe(0);
  });
});

/** Rows of the FTS index (not only of the joined search) that still match a term. */
function indexed(d: TestDaemon, term: string): number {
  return d.daemon.services.db.prepare(`SELECT count(*) FROM search_index WHERE search_index MATCH ?`).pluck().get(`"${term}"`) as number;
}

describe('the MCP tool search_observations', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it("calls the same search, with the caller's read rights", async () => {
    d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
    const open = await createSource(
      d,
      { source_id: 'open', display_name: 'Open', kind: 'screen_snapshot', sensitivity: 'standard' },
      ADMIN,
    );
    const closed = await createSource(d, { source_id: 'closed', display_name: 'Closed', kind: 'screen_snapshot' }, ADMIN);
    const a = await put(d, 'open', open, 'quarterly invoice due friday', { metadata: { window: 'editor' } });
    const b = await put(d, 'open', open, 'quarterly report draft', { metadata: { window: 'mail' } });
    await put(d, 'closed', closed, 'quarterly salary review');
    const hits = async (token: string, args: Record<string, unknown> = {}) => {
      const client = new Client({ name: 'search-test', version: '1.0.0' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
      );
      try {
        const r = (await client.callTool({ name: 'search_observations', arguments: { query: 'quarterly', ...args } })) as CallToolResult;
        expect(r.isError).toBeFalsy();
        return (r.structuredContent as { hits: SearchHit[] }).hits;
      } finally {
        await client.close();
      }
    };
    expect((await hits(ADMIN)).length).toBe(3);
    const reader = await hits(READER);
    expect(ids(reader).sort()).toEqual([a.observation_id, b.observation_id].sort());
    expect(reader[0].snippet).toContain('«quarterly»');
    // Metadata equality filters reach the route as metadata.<key>=value.
    expect(ids(await hits(READER, { metadata: { window: 'editor' } }))).toEqual([a.observation_id]);
  });
});

describe('text observd derives', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it('indexes OCR text when auto_derive completes', async () => {
    d = await startDaemon({ derivations: { ocr_workers: 1 } });
    const t = await createSource(d, { source_id: 'ocr', display_name: 'O', kind: 'screen_snapshot', auto_derive: ['canonical_text'] });
    const png = await textPng(['Invoice overdue today'], { width: 900, height: 160, baseline: 100 });
    const o = await upload(d, 'ocr', t, png, 'ocr-1');
    const hits = await eventually(async () => {
      const h = await search(d, q('invoice overdue'));
      return h.length ? h : undefined;
    }, 60_000);
    expect(ids(hits)).toEqual([o.observation_id]);
    expect(hits[0].snippet.toLowerCase()).toContain('«invoice» «overdue»');
  });
});

describe('text stored before the index existed', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it('is indexed by the backfill job, in batches, active observations only', async () => {
    d = await startDaemon({});
    const t = await createSource(d, { source_id: 'old', display_name: 'O', kind: 'screen_snapshot' });
    const kept = [];
    for (let i = 0; i < 5; i++) kept.push(await put(d, 'old', t, `archived pangolin ${i}`));
    const gone = await put(d, 'old', t, 'archived pangolin deleted');
    await upload(d, 'old', t, makePng(2, 2, 777), 'no-text'); // an image with no text yet
    const db = d.daemon.services.db;
    // As a store upgraded to migration 011 looks: text in blobs, nothing indexed, a cursor to walk.
    db.exec(`DELETE FROM search_documents`);
    expect((await d.req(`/v1/observations/${gone.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(await search(d, q('pangolin'))).toEqual([]);
    // The daemon's own backfill job must not run in between the steps below.
    await d.daemon.jobs.stop();
    db.exec(`INSERT INTO search_backfill (id, after_observation_id) VALUES (1, '')`);
    expect(await backfillSearchIndex(d.daemon.deps, 3)).toEqual({ indexed: 3, done: false });
    expect(await backfillSearchIndex(d.daemon.deps, 3)).toEqual({ indexed: 2, done: false });
    expect(await backfillSearchIndex(d.daemon.deps, 3)).toEqual({ indexed: 0, done: true });
    expect(await backfillSearchIndex(d.daemon.deps, 3)).toEqual({ indexed: 0, done: true });
    expect(new Set(ids(await search(d, q('pangolin'))))).toEqual(new Set(kept.map((o) => o.observation_id)));
    expect(db.prepare(`SELECT count(*) FROM search_backfill`).pluck().get()).toBe(0);
  });

  it('is indexed by its real words in an encrypted store, where the blobs hold ciphertext', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'observd-search-enc-'));
    try {
      const keyFile = join(scratch, 'key');
      writeFileSync(keyFile, randomBytes(32));
      d = await startDaemon({ encryption: { key_file: keyFile } });
      const t = await createSource(d, { source_id: 'sealed', display_name: 'S', kind: 'screen_snapshot' });
      const o = await put(d, 'sealed', t, 'encrypted narwhal ledger');
      const db = d.daemon.services.db;
      await d.daemon.jobs.stop();
      db.exec(`DELETE FROM search_documents`);
      db.exec(`INSERT INTO search_backfill (id, after_observation_id) VALUES (1, '')`);
      expect(await search(d, q('narwhal'))).toEqual([]);
      expect(await backfillSearchIndex(d.daemon.deps)).toEqual({ indexed: 1, done: true });
      expect(ids(await search(d, q('narwhal ledger')))).toEqual([o.observation_id]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('the rank window', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it('ranks the newest matches by relevance, then lists older ones newest first, each once', async () => {
    d = await startDaemon({ search: { rank_window: 2 } });
    const t = await createSource(d, { source_id: 'w', display_name: 'W', kind: 'screen_snapshot' });
    const a = await put(d, 'w', t, 'otter otter otter otter'); // most relevant, but oldest
    const b = await put(d, 'w', t, 'otter one');
    const c = await put(d, 'w', t, 'otter otter two');
    const e = await put(d, 'w', t, 'otter three');
    expect(ids(await search(d, q('otter')))).toEqual([c, e, b, a].map((o) => o.observation_id));
    const walked: string[] = [];
    let cursor = '';
    for (;;) {
      const page = await (await d.req(`/v1/search?${q('otter')}&limit=1&page=true${cursor ? `&cursor=${cursor}` : ''}`)).json();
      walked.push(...ids(page.items));
      if (!page.pagination.has_more) break;
      cursor = page.pagination.next_cursor;
    }
    expect(walked).toEqual([c, e, b, a].map((o) => o.observation_id));
  });
});

describe('sensitive sources', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it('are searchable with the admin token only (as their asset content is)', async () => {
    d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
    const open = await createSource(
      d,
      { source_id: 'open', display_name: 'Open', kind: 'screen_snapshot', sensitivity: 'standard' },
      ADMIN,
    );
    const secret = await createSource(d, { source_id: 'private', display_name: 'Private', kind: 'screen_snapshot' }, ADMIN); // sensitive by default
    const a = await put(d, 'open', open, 'quarterly roadmap draft');
    const b = await put(d, 'private', secret, 'quarterly salary review');
    expect(new Set(ids(await search(d, q('quarterly'), ADMIN)))).toEqual(new Set([a.observation_id, b.observation_id]));
    expect(ids(await search(d, q('quarterly'), READER))).toEqual([a.observation_id]);
    expect(await search(d, q('salary'), READER)).toEqual([]);
    const paged = await (await d.req(`/v1/search?${q('quarterly')}&page=true`, { token: READER })).json();
    expect(paged.pagination.total_count).toBe(1);
    // The same rule as the asset route: the reader may not read that text either.
    expect((await d.req(`/v1/assets/${b.canonical_text_asset_id}/content`, { token: READER })).status).toBe(403);
  });
});

describe('the index follows the observation', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it('drops text when the retention sweep purges, when the quota evicts, and when the source is deleted', async () => {
    const clock = testClock();
    d = await startDaemon({ retention: { sweep_interval_ms: 60_000 } }, { now: clock });
    const t = await createSource(d, {
      source_id: 'short',
      display_name: 'S',
      kind: 'screen_snapshot',
      retention_seconds: 10,
      max_active_observations: 2,
    });
    await put(d, 'short', t, 'evicted pelican');
    await put(d, 'short', t, 'retained heron');
    await put(d, 'short', t, 'retained heron again'); // evicts the pelican (max 2)
    expect(await search(d, q('pelican'))).toEqual([]);
    expect(indexed(d, 'pelican')).toBe(0);
    expect((await search(d, q('heron'))).length).toBe(2);
    clock.advance(11_000);
    const { sweepOnce } = await import('../src/retention/sweep.js');
    sweepOnce(d.daemon.deps, clock());
    expect(await search(d, q('heron'))).toEqual([]);
    expect(indexed(d, 'heron')).toBe(0);
    const u = await createSource(d, { source_id: 'doomed', display_name: 'D', kind: 'screen_snapshot' });
    await put(d, 'doomed', u, 'source level flamingo');
    expect((await search(d, q('flamingo'))).length).toBe(1);
    expect((await d.req('/v1/observation-sources/doomed', { method: 'DELETE' })).status).toBe(204);
    expect(indexed(d, 'flamingo')).toBe(0);
    expect(d.daemon.services.db.prepare(`SELECT count(*) FROM search_documents`).pluck().get()).toBe(0);
  });
});

describe('no residue in the index (FTS5 secure-delete)', () => {
  let d: TestDaemon;
  afterEach(() => d?.close());

  it('keeps no term of a deleted observation in any search table or shadow table', async () => {
    d = await startDaemon({});
    const t = await createSource(d, { source_id: 'res', display_name: 'R', kind: 'screen_snapshot' });
    for (let i = 0; i < 30; i++) await put(d, 'res', t, `filler words number ${i} about nothing in particular`);
    const o = await put(d, 'res', t, 'the uniquemarkerqx lives here');
    const db = d.daemon.services.db;
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'search_%'`).pluck().all() as string[];
    expect(tables).toEqual(expect.arrayContaining(['search_documents', 'search_index_data', 'search_index_idx']));
    const holding = () =>
      tables.filter((tbl) => {
        const cols = (db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(tbl) as string[]).map(
          (c) => `instr(CAST("${c}" AS BLOB), CAST('markerqx' AS BLOB)) > 0`,
        );
        return (
          (db
            .prepare(`SELECT count(*) FROM "${tbl}" WHERE ${cols.join(' OR ')}`)
            .pluck()
            .get() as number) > 0
        );
      });
    expect(holding()).toEqual(expect.arrayContaining(['search_documents', 'search_index_data']));
    expect((await d.req(`/v1/observations/${o.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(holding()).toEqual([]);
  });
});

describe('PII redaction before storage and indexing', () => {
  let d: TestDaemon;
  let fake: FakeOpenAI;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
  });
  afterAll(() => fake?.close());
  afterEach(() => d?.close());

  it('redacts uploader text per source: stored, returned and indexed as placeholders', async () => {
    d = await startDaemon({});
    const t = await createSource(d, { source_id: 'red', display_name: 'R', kind: 'screen_snapshot', redact: ['email', 'secret'] });
    const plain = await createSource(d, { source_id: 'plain', display_name: 'P', kind: 'screen_snapshot' });
    const o = await put(d, 'red', t, 'Contact carol.jones@example.com, key AKIAIOSFODNN7EXAMPLE, room 42');
    const text = (await content(d, o.canonical_text_asset_id)).toString('utf8');
    expect(text).toBe('Contact [email], key [secret], room 42');
    expect(await search(d, q('carol'))).toEqual([]);
    expect(await search(d, q('"carol.jones@example.com"'))).toEqual([]);
    expect(await search(d, q('AKIAIOSFODNN7EXAMPLE'))).toEqual([]);
    expect(ids(await search(d, q('contact room')))).toEqual([o.observation_id]);
    // Another source without redaction keeps its text as sent.
    const p = await put(d, 'plain', plain, 'Contact carol.jones@example.com');
    expect(ids(await search(d, q('carol')))).toEqual([p.observation_id]);
    const view = await (await d.req('/v1/observation-sources/red')).json();
    expect(view.redact).toEqual(['email', 'secret']);
    // A run composed from it carries the placeholders too.
    const run = await materialize(d, byIds([o.observation_id]));
    expect(run.status).toBeLessThan(300);
    expect(JSON.stringify(run.body.input)).toContain('Contact [email], key [secret], room 42');
    expect(JSON.stringify(run.body)).not.toContain('carol.jones');
  });

  it('takes privacy.redact from the config when the source sets nothing, and null resets to it', async () => {
    d = await startDaemon({ privacy: { redact: ['phone'] } });
    const t = await createSource(d, { source_id: 'dflt', display_name: 'D', kind: 'screen_snapshot' });
    const o = await put(d, 'dflt', t, 'call +44 7700 900123 or mail dan@example.org');
    expect((await content(d, o.canonical_text_asset_id)).toString('utf8')).toBe('call [phone] or mail dan@example.org');
    expect((await d.req('/v1/observation-sources/dflt', { method: 'PATCH', json: { redact: [] } })).status).toBe(200);
    const o2 = await put(d, 'dflt', t, 'call +44 7700 900123');
    expect((await content(d, o2.canonical_text_asset_id)).toString('utf8')).toBe('call +44 7700 900123');
    const r = await d.req('/v1/observation-sources/dflt', { method: 'PATCH', json: { redact: null } });
    expect((await r.json()).redact).toBeNull();
    await expectProblem(
      await d.req('/v1/observation-sources/dflt', { method: 'PATCH', json: { redact: ['ssn'] } }),
      400,
      'validation_failed',
    );
  });

  it('redacts transcripts from auto_derive before they are stored and indexed', async () => {
    fake.reply = {
      text: 'Sure, my email is erin@example.net and the token is ghp_1A2b3C4d5E6f7G8h9I0jK1lM2nO3pQ4rS5tU, see you at the standup',
    };
    d = await startDaemon({ transcription: { base_url: fake.baseUrl, model: 'whisper-x', api_key_env: KEY_ENV, max_retries: 0 } });
    const t = await createSource(d, {
      source_id: 'mic',
      display_name: 'Mic',
      kind: 'microphone_segment',
      auto_derive: ['canonical_text'],
      redact: ['email', 'secret'],
      // Sensitive by default: the transcription backend is external processing, which it must allow.
      allow_external_processing: true,
    });
    const o = await upload(d, 'mic', t, makeWav(0.3), 'wav-1', 'audio/wav');
    const hits = await eventually(async () => {
      const h = await search(d, q('standup'));
      return h.length ? h : undefined;
    });
    expect(ids(hits)).toEqual([o.observation_id]);
    expect(hits[0].snippet).toContain('[email]');
    expect(hits[0].snippet).not.toContain('erin');
    expect(await search(d, q('erin'))).toEqual([]);
    expect(await search(d, q('ghp_1A2b3C4d5E6f7G8h9I0jK1lM2nO3pQ4rS5tU'))).toEqual([]);
    const der = await (await d.req(`/v1/derivations?profile=canonical_text`)).json();
    const text = (await content(d, der[0].result_asset_id)).toString('utf8');
    expect(text).toBe('Sure, my email is [email] and the token is [secret], see you at the standup');
  });
});
