// Listing at scale: 1,000,000 observations over 100 sources, written straight into the SQLite
// file (the 100 sources are created through the API first, so they are real), then
// `GET /v1/observations?source_id=..&order=desc&limit=100` for random sources (first page) and
// pages of cursor walks (`page=true`, following pagination.next_cursor), each at concurrency 1 and 8. Target: p99 <= 10 ms.
// Also reported: database bytes per observation (observd.db + WAL after a checkpoint / rows).
// Status filter: every seeded row has a processing_status (1 in 1,000 `failed`, 1 in 100
// `pending`, the rest `completed`); `GET /v1/observations?processing_status=failed&order=desc&limit=100`
// (first pages, cursor pages of 25, and with a random source_id) is timed like the source listing,
// with its p99 as a ratio to the source listing's first page measured in the same run.
// Seeded rows share 1,000 asset rows and have no blobs (listing never reads them) and no audit
// or outbox rows (bench/ingest.mjs reports the per-upload size with those).
// Each case also records the machine's load average (other work on the same cores moves p99).
//   node bench/listing.mjs [--quick] [--rows 1000000] [--sources 100] [--requests 2000] [--data-dir DIR]
//                          [--read-workers N|auto] [--source-only]
// With --data-dir, a store seeded there by an earlier run is reused (and kept), to iterate quickly.
// --read-workers sets `server.read_workers` (default: the daemon's own default); --source-only
// skips the processing_status cases (for before/after rounds of the source listing).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { existsSync } from 'node:fs';
import {
  agent,
  arg,
  cpuSecondsOf,
  createSource,
  dbFileBytes,
  flag,
  load,
  numArg,
  percentiles,
  request,
  round,
  row,
  rssOf,
  saveResults,
  startDaemon,
  ulidAt,
  withServerCpu,
} from './lib.mjs';

const QUICK = flag('quick');
const ROWS = numArg('rows', QUICK ? 100_000 : 1_000_000);
const SOURCES = numArg('sources', 100);
const REQUESTS = numArg('requests', QUICK ? 300 : 2000);
const ASSETS = 1000;
const TARGET_P99_MS = 10;
const DAY = 86_400_000;

const READ_WORKERS = arg('read-workers');
const SOURCE_ONLY = flag('source-only');
const KEEP_DIR = arg('data-dir');
const reuse = KEEP_DIR && existsSync(join(KEEP_DIR, 'observd.db'));
const dataDir = KEEP_DIR ?? mkdtempSync(join(tmpdir(), 'observd-bench-listing-'));
const sourceId = (s) => `listing-${String(s).padStart(3, '0')}`;

/** The seeded processing status of row `k`: 0.1% failed, 1% pending, the rest completed. */
const statusOf = (k) => (k % 1000 === 7 ? 'failed' : k % 100 === 3 ? 'pending' : 'completed');

/** Writes ROWS observations in capture order (sources interleaved at random), 100k rows a transaction. */
function seed() {
  const db = new Database(join(dataDir, 'observd.db'));
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1048576');
  const now = Date.now();
  const start = now - 7 * DAY;
  const step = Math.floor((7 * DAY - 60_000) / ROWS);
  const assetSha = Array.from({ length: ASSETS }, () => randomBytes(32).toString('hex'));
  const insertAsset = db.prepare(`INSERT INTO assets VALUES (?, ?, 'image/png', 65536, ?)`);
  db.transaction(() => assetSha.forEach((sha) => insertAsset.run(`ast_${sha}`, sha, start)))();
  const insert = db.prepare(
    `INSERT INTO observations (observation_id, source_id, kind, sensitivity, retention_state, asset_id, file_name, media_type, sha256,
       byte_length, captured_at_ms, received_at_ms, expires_at_ms, blobs_held, idempotency_key, request_fingerprint, processing_status)
     VALUES (?, ?, 'screen_snapshot', 'sensitive', 'active', ?, ?, 'image/png', ?, 65536, ?, ?, ?, 1, ?, ?, ?)`,
  );
  const counts = new Array(SOURCES).fill(0);
  const BATCH = 100_000;
  const started = performance.now();
  for (let from = 0; from < ROWS; from += BATCH) {
    const n = Math.min(BATCH, ROWS - from);
    const fingerprints = randomBytes(32 * n).toString('hex');
    const keys = randomBytes(16 * n).toString('hex');
    db.transaction(() => {
      for (let j = 0; j < n; j++) {
        const k = from + j;
        const s = (Math.random() * SOURCES) | 0;
        counts[s]++;
        const at = start + k * step;
        const sha = assetSha[k % ASSETS];
        const key = keys.slice(j * 32, j * 32 + 32);
        insert.run(
          `obs_${ulidAt(at + 5, k)}`,
          sourceId(s),
          `ast_${sha}`,
          `screen-${k}.png`,
          sha,
          at,
          at + 5,
          now + 30 * DAY,
          // A UUID-shaped idempotency key, as capture agents typically send.
          `${key.slice(0, 8)}-${key.slice(8, 12)}-${key.slice(12, 16)}-${key.slice(16, 20)}-${key.slice(20)}`,
          fingerprints.slice(j * 64, j * 64 + 64),
          statusOf(k),
        );
      }
    })();
  }
  const update = db.prepare(`UPDATE sources SET active_observation_count = ?, active_byte_length = ? WHERE source_id = ?`);
  db.transaction(() => counts.forEach((c, s) => update.run(c, c * 65536, sourceId(s))))();
  const seedSeconds = round((performance.now() - started) / 1000);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const bytes = dbFileBytes(dataDir);
  return { seed_seconds: seedSeconds, db_bytes: bytes, db_bytes_per_observation: Math.round(bytes / ROWS) };
}

const listUrl = (url, s, cursor) =>
  `${url}/v1/observations?source_id=${sourceId(s)}&order=desc&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : '&page=true'}`;
const randomSource = () => (Math.random() * SOURCES) | 0;
// Cursor walks over the failed ones page by 25, so even --quick's 100 failed rows make pages to follow.
const failedUrl = (url, s, cursor, limit = 100) =>
  `${url}/v1/observations?processing_status=failed${s === null ? '' : `&source_id=${sourceId(s)}`}&order=desc&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : '&page=true'}`;

/** First pages of random sources. */
function firstPages(url, concurrency, makeUrl = (s) => listUrl(url, s)) {
  const ag = agent(concurrency);
  return load({ workers: concurrency, total: REQUESTS, make: () => ({ url: makeUrl(randomSource()), agent: ag }) });
}

/**
 * Cursor walks: each worker walks a random source newest-first, page by page, starting again on
 * another source when a walk ends; only pages fetched with a cursor are timed.
 */
async function cursorPages(url, concurrency, makeUrl = (s, cursor) => listUrl(url, s, cursor)) {
  const ag = agent(concurrency);
  const latencies = [];
  const statuses = {};
  let sent = 0;
  let tries = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      let s = randomSource();
      let cursor = null;
      for (;;) {
        // A daemon that stops answering with cursors must not keep the walk going for ever.
        if ((cursor && sent++ >= REQUESTS) || ++tries > REQUESTS * 4) break;
        const r = await request(makeUrl(s, cursor), { agent: ag });
        if (cursor) {
          latencies.push(r.ms);
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        }
        cursor = r.status === 200 ? (JSON.parse(r.body).pagination.next_cursor ?? null) : null;
        if (!cursor) s = randomSource();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: latencies.length,
    seconds: round(seconds),
    rps: round(latencies.length / seconds),
    ...percentiles(latencies),
    statuses,
  };
}

/**
 * The query behind `processing_status=failed&order=desc&limit=100`, in process: as planned (on
 * the status index, observations_status_captured) and forced onto the capture-time index, as it ran before
 * that index existed (a walk filtering rows until 101 failed ones are found).
 */
function failedQueryWithoutIndex() {
  const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
  const sql = (hint) =>
    `SELECT * FROM observations ${hint} WHERE processing_status IN ('failed') AND retention_state = 'active' ORDER BY captured_at_ms DESC, observation_id DESC LIMIT 101`;
  const time = (stmt) => {
    const ms = [];
    for (let i = 0; i < 60; i++) {
      const t = performance.now();
      stmt.all();
      if (i >= 10) ms.push(performance.now() - t);
    }
    return percentiles(ms);
  };
  const indexed = db.prepare(sql(''));
  const plan = db
    .prepare(`EXPLAIN QUERY PLAN ${sql('')}`)
    .all()
    .map((r) => r.detail)
    .join('; ');
  const out = { plan, with_status_index: time(indexed), capture_index_only: time(db.prepare(sql('INDEXED BY observations_captured'))) };
  db.close();
  return out;
}

let d;
let seeded;
if (reuse) {
  console.error(`listing: reusing the store in ${dataDir}`);
  const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
  const rows = db.prepare('SELECT count(*) FROM observations').pluck().get();
  db.close();
  const bytes = dbFileBytes(dataDir);
  seeded = { reused: true, db_bytes: bytes, db_bytes_per_observation: rows ? Math.round(bytes / rows) : null };
  console.error(`listing: ${rows} observations, ${seeded.db_bytes_per_observation} B/observation`);
} else {
  console.error(`listing: creating ${SOURCES} sources in ${dataDir}`);
  d = await startDaemon(dataDir);
  for (let s = 0; s < SOURCES; s++) await createSource(d.url, sourceId(s), `bench-listing-token-${s}`);
  await d.stop();
  console.error(`listing: seeding ${ROWS} observations`);
  seeded = seed();
  console.error(`listing: seeded in ${seeded.seed_seconds}s, ${seeded.db_bytes_per_observation} B/observation`);
}

const t0 = performance.now();
const configArgs = [];
if (READ_WORKERS !== undefined) {
  const file = join(dataDir, 'config.toml');
  writeFileSync(file, `[server]\nread_workers = ${READ_WORKERS === 'auto' ? '"auto"' : Number(READ_WORKERS)}\n`);
  configArgs.push('--config', file);
}
d = await startDaemon(dataDir, { OBSERVD_SWEEP_INTERVAL_MS: '3600000' }, configArgs);
const startupMs = Math.round(performance.now() - t0);
// Warm-up: page cache and prepared statements.
await load({ workers: 2, total: 100, make: () => ({ url: listUrl(d.url, randomSource()) }) });
const check = JSON.parse((await request(listUrl(d.url, 0))).body);

const results = {
  rows: ROWS,
  sources: SOURCES,
  requests_per_case: REQUESTS,
  quick: QUICK,
  read_workers: READ_WORKERS ?? 'default',
  ...seeded,
  daemon_startup_ms: startupMs,
  page_rows: check.items?.length ?? null,
  first_page: {},
  cursor_page: {},
  failed_rows: Math.floor((ROWS + 992) / 1000),
  failed_first_page: {},
  failed_cursor_page: {},
  failed_source_page: {},
};
/**
 * Runs one case and adds the daemon's CPU time per request (user + system, every thread), the
 * part of it spent on the event loop (the main thread's own counters), and the load average after it.
 */
async function withCpu(run) {
  const loop = `${d.pid}/task/${d.pid}`;
  const loop0 = cpuSecondsOf(loop);
  const r = await withServerCpu(d.pid, run);
  return {
    ...r,
    event_loop_cpu_ms_per_request: round(((cpuSecondsOf(loop) - loop0) * 1000) / r.requests),
    load_average_1m: round(loadavg()[0]),
  };
}
for (const c of [1, 8]) {
  console.error(`listing: first pages, concurrency ${c}`);
  results.first_page[`c${c}`] = await withCpu(() => firstPages(d.url, c));
  console.error(`listing: cursor pages, concurrency ${c}`);
  results.cursor_page[`c${c}`] = await withCpu(() => cursorPages(d.url, c));
  if (SOURCE_ONLY) continue;
  console.error(`listing: failed observations, concurrency ${c}`);
  results.failed_first_page[`c${c}`] = await withCpu(() => firstPages(d.url, c, () => failedUrl(d.url, null)));
  results.failed_cursor_page[`c${c}`] = await withCpu(() => cursorPages(d.url, c, (_s, cursor) => failedUrl(d.url, null, cursor, 25)));
  results.failed_source_page[`c${c}`] = await withCpu(() => firstPages(d.url, c, (s) => failedUrl(d.url, s)));
}
results.daemon_rss = rssOf(d.pid);
await d.stop();
if (!SOURCE_ONLY) results.failed_query = failedQueryWithoutIndex();
if (!KEEP_DIR) rmSync(dataDir, { recursive: true, force: true });

results.summary = [];
for (const [kind, label] of [
  ['first_page', 'first page'],
  ['cursor_page', 'cursor page'],
]) {
  for (const c of [1, 8]) {
    const r = results[kind][`c${c}`];
    results.summary.push(
      row(`listing ${label} (${ROWS.toLocaleString('en')} rows), concurrency ${c}: p50 / p99`, `${r.p50_ms} / ${r.p99_ms}`, 'ms', {
        target: `p99 <= ${TARGET_P99_MS} ms`,
        met: r.p99_ms <= TARGET_P99_MS,
        note: `${r.rps} req/s, daemon CPU ${r.server_cpu_ms_per_request} ms/request (event loop ${r.event_loop_cpu_ms_per_request}), load average ${r.load_average_1m}, read workers ${results.read_workers}`,
      }),
    );
  }
}
for (const [kind, label] of SOURCE_ONLY
  ? []
  : [
      ['failed_first_page', 'processing_status=failed, first page'],
      ['failed_cursor_page', 'processing_status=failed, cursor page of 25'],
      ['failed_source_page', 'processing_status=failed&source_id, first page'],
    ]) {
  for (const c of [1, 8]) {
    const r = results[kind][`c${c}`];
    const base = results.first_page[`c${c}`];
    results.summary.push(
      row(
        `listing ${label} (${results.failed_rows.toLocaleString('en')} failed among ${ROWS.toLocaleString('en')}), concurrency ${c}: p50 / p99`,
        `${r.p50_ms} / ${r.p99_ms}`,
        'ms',
        {
          baseline: base.p99_ms,
          ratio: round(r.p99_ms / base.p99_ms),
          target: `p99 <= ${TARGET_P99_MS} ms`,
          met: r.p99_ms <= TARGET_P99_MS,
          note: `baseline and ratio: p99 of the source listing's first page in the same run; ${r.rps} req/s, daemon CPU ${r.server_cpu_ms_per_request} ms/request`,
        },
      ),
    );
  }
}
if (!SOURCE_ONLY) {
  const { with_status_index: a, capture_index_only: b } = results.failed_query;
  results.summary.push(
    row(`failed among ${ROWS.toLocaleString('en')}: first 100, in process, status index: p50 / p99`, `${a.p50_ms} / ${a.p99_ms}`, 'ms', {
      baseline: b.p99_ms,
      ratio: round(a.p99_ms / b.p99_ms, 4),
      note: `baseline: the same query forced onto the capture-time index (before its status index), p50 / p99 ${b.p50_ms} / ${b.p99_ms} ms`,
    }),
  );
}
results.summary.push(
  row('listing: database bytes per observation', results.db_bytes_per_observation, 'B', { note: 'seeded rows, no audit/outbox rows' }),
);
saveResults('listing', results);
console.log(JSON.stringify(results, null, 2));
