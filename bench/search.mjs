// Full-text search at scale: N observations (default 1,000,000) over 10 sources, each with about
// 60 words of screen-like text drawn from a generated 30,000-word vocabulary (Zipf-distributed,
// with numbers, times, versions and paths mixed in), written straight into the SQLite file
// (sources through the API first, so they are real), then:
//   - `GET /v1/search?q=<two words>&limit=20` and `GET /v1/search?q="<phrase>"&limit=20` at
//     concurrency 1 and 8 (targets: p99 <= 20 ms at c=1, <= 50 ms at c=8);
//   - database bytes per observation before and after the index is built;
//   - the CPU the index adds per upload with text: single-row commits of a document into the
//     index (what an upload's transaction does for it) against single-row commits of the
//     observation row itself (the baseline), in-process on the seeded database.
//   node bench/search.mjs [--quick] [--rows 1000000] [--requests 2000]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import {
  agent,
  arg,
  createSource,
  dbFileBytes,
  flag,
  load,
  numArg,
  round,
  row,
  rssOf,
  saveResults,
  startDaemon,
  ulidAt,
  withServerCpu,
} from './lib.mjs';

const QUICK = flag('quick');
const ROWS = numArg('rows', QUICK ? 50_000 : 1_000_000);
const REQUESTS = numArg('requests', QUICK ? 300 : 2000);
/** `--keep`: leave the seeded data directory (its path is printed) for experiments. */
const KEEP = flag('keep');
/** `--data DIR`: re-run only the queries over a directory kept by an earlier `--keep` run. */
const REUSE = arg('data', null);
const SOURCES = 10;
const VOCABULARY = 30_000;
const WORDS_PER_TEXT = 60;
const TARGETS = { c1: 20, c8: 50 };
const DAY = 86_400_000;

const dataDir = REUSE ?? mkdtempSync(join(tmpdir(), 'observd-bench-search-'));
const sourceId = (s) => `search-${String(s).padStart(2, '0')}`;

// ------------------------------------------------------------------ text generator (seeded)
let state = 0x9e3779b9;
/** xorshift32: deterministic, so runs are comparable. */
const rand = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
};
const SYLLABLES = 'ka ri to ne sa mo lu pe di fa go hu ji be zo wa qui stra pla ver con ment ing ion der tal ex pro sta cal log'.split(' ');
const vocab = [];
const seen = new Set();
while (vocab.length < VOCABULARY) {
  let w = '';
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(rand() * SYLLABLES.length)];
  if (!seen.has(w)) seen.add(w), vocab.push(w);
}
// Zipf (s = 1.07) over the vocabulary: a few very common words, a long tail of rare ones.
const cdf = new Float64Array(VOCABULARY);
let total = 0;
for (let i = 0; i < VOCABULARY; i++) cdf[i] = total += 1 / (i + 1) ** 1.07;
for (let i = 0; i < VOCABULARY; i++) cdf[i] /= total;
function zipfIndex() {
  const u = rand();
  let lo = 0;
  let hi = VOCABULARY - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cdf[mid] < u) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
/** The 50 most common words, which queries leave out (as one leaves out "the" and "of"). */
const COMMON = new Set(vocab.slice(0, 50));
/** Non-words screens are full of. */
function noise() {
  const r = rand();
  if (r < 0.3) return String(Math.floor(rand() * 10000));
  if (r < 0.5) return `${String(Math.floor(rand() * 24)).padStart(2, '0')}:${String(Math.floor(rand() * 60)).padStart(2, '0')}`;
  if (r < 0.7) return `v${Math.floor(rand() * 5)}.${Math.floor(rand() * 20)}.${Math.floor(rand() * 10)}`;
  if (r < 0.85) return `/${vocab[zipfIndex()]}/${vocab[zipfIndex()]}.ts`;
  return `#${Math.floor(rand() * 100000)}`;
}
function screenText() {
  const words = [];
  for (let i = 0; i < WORDS_PER_TEXT; i++) words.push(rand() < 0.1 ? noise() : vocab[zipfIndex()]);
  return words.join(' ');
}

// ------------------------------------------------------------------ seeding
const BATCH = 50_000;
const now = Date.now();
const start = now - 7 * DAY;
const step = Math.max(1, Math.floor((7 * DAY - 60_000) / ROWS));
const obsId = (k) => `obs_${ulidAt(start + k * step + 5, k)}`;

/** Observation rows (each with its own text asset row, as an upload with canonical_text has). */
function seedObservations(db) {
  const insertAsset = db.prepare(`INSERT INTO assets VALUES (?, ?, ?, ?, ?)`);
  const insert = db.prepare(
    `INSERT INTO observations (observation_id, source_id, kind, sensitivity, retention_state, asset_id, canonical_text_asset_id, file_name, media_type, sha256,
       byte_length, captured_at_ms, received_at_ms, expires_at_ms, blobs_held, idempotency_key, request_fingerprint, metadata)
     VALUES (?, ?, 'screen_snapshot', 'sensitive', 'active', ?, ?, ?, 'image/png', ?, 65536, ?, ?, ?, 1, ?, ?, ?)`,
  );
  const counts = new Array(SOURCES).fill(0);
  const imageSha = randomBytes(32).toString('hex');
  insertAsset.run(`ast_${imageSha}`, imageSha, 'image/png', 65536, start);
  for (let from = 0; from < ROWS; from += BATCH) {
    const n = Math.min(BATCH, ROWS - from);
    const rnd = randomBytes(96 * n).toString('hex');
    db.transaction(() => {
      for (let j = 0; j < n; j++) {
        const k = from + j;
        const s = k % SOURCES;
        counts[s]++;
        const at = start + k * step;
        const textSha = rnd.slice(j * 192, j * 192 + 64);
        insertAsset.run(`ast_${textSha}`, textSha, 'text/plain; charset=utf-8', 400, at);
        insert.run(
          obsId(k),
          sourceId(s),
          `ast_${imageSha}`,
          `ast_${textSha}`,
          `screen-${k}.png`,
          imageSha,
          at,
          at + 5,
          now + 30 * DAY,
          rnd.slice(j * 192 + 64, j * 192 + 96),
          rnd.slice(j * 192 + 96, j * 192 + 160),
          `{"window":"${['editor', 'browser', 'terminal', 'chat'][k % 4]}"}`,
        );
      }
    })();
  }
  const update = db.prepare(`UPDATE sources SET active_observation_count = ?, active_byte_length = ? WHERE source_id = ?`);
  db.transaction(() => counts.forEach((c, s) => update.run(c, c * 65536, sourceId(s))))();
}

/** The index: one document per observation, through the same table and triggers the daemon uses. */
function seedIndex(db) {
  const insert = db.prepare(`INSERT INTO search_documents (observation_id, body) VALUES (?, ?)`);
  let chars = 0;
  const phrases = [];
  for (let from = 0; from < ROWS; from += BATCH) {
    const n = Math.min(BATCH, ROWS - from);
    db.transaction(() => {
      for (let j = 0; j < n; j++) {
        const text = screenText();
        chars += text.length;
        // Two adjacent words of a real text, neither among the 50 most common: a phrase that exists.
        if (phrases.length < 5000 && rand() < 0.05) {
          const w = text.split(' ');
          for (let i = 0; i < w.length - 1; i++) {
            if (!COMMON.has(w[i]) && !COMMON.has(w[i + 1]) && /^[a-z]+$/.test(w[i]) && /^[a-z]+$/.test(w[i + 1])) {
              phrases.push(`${w[i]} ${w[i + 1]}`);
              break;
            }
          }
        }
        insert.run(obsId(from + j), text);
      }
    })();
    if ((from / BATCH) % 4 === 0) console.error(`search: indexed ${from + n}`);
  }
  return { avgTextBytes: Math.round(chars / ROWS), phrases };
}

let bytesWithout = null;
let bytesWith = null;
let seedObsSeconds = null;
let indexSeconds = null;
let avgTextBytes = null;
let phrases = [];
let rowCpu = null;
let indexCpu = null;
if (REUSE) {
  // Phrases from a sample of the stored texts, as seeding would have picked them.
  const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
  for (const text of db.prepare(`SELECT body FROM search_documents WHERE doc_id % 200 = 0`).pluck().all()) {
    const w = text.split(' ');
    for (let i = 0; i < w.length - 1 && phrases.length < 5000; i++) {
      if (!COMMON.has(w[i]) && !COMMON.has(w[i + 1]) && /^[a-z]+$/.test(w[i]) && /^[a-z]+$/.test(w[i + 1])) {
        phrases.push(`${w[i]} ${w[i + 1]}`);
        break;
      }
    }
  }
  db.close();
} else {
  console.error(`search: creating ${SOURCES} sources in ${dataDir}`);
  const d0 = await startDaemon(dataDir);
  for (let s = 0; s < SOURCES; s++) await createSource(d0.url, sourceId(s), `bench-search-token-${s}`);
  await d0.stop();

  const db = new Database(join(dataDir, 'observd.db'));
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -1048576');
  console.error(`search: seeding ${ROWS} observations`);
  let t = performance.now();
  seedObservations(db);
  db.pragma('wal_checkpoint(TRUNCATE)');
  bytesWithout = dbFileBytes(dataDir);
  seedObsSeconds = round((performance.now() - t) / 1000);
  console.error(`search: indexing ${ROWS} texts`);
  t = performance.now();
  ({ avgTextBytes, phrases } = seedIndex(db));
  indexSeconds = round((performance.now() - t) / 1000);
  db.pragma('wal_checkpoint(TRUNCATE)');
  bytesWith = dbFileBytes(dataDir);

  // CPU the index adds to an upload: one document per commit (as one upload commits), against one
  // observation row per commit, on the full database, with the daemon's pragmas.
  db.pragma('synchronous = NORMAL');
  db.pragma('cache_size = -65536');
  const UPLOADS = QUICK ? 500 : 2000;
  const cpuMs = (fn) => {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000 / UPLOADS;
  };
  const extra = db.prepare(
    `INSERT INTO observations (observation_id, source_id, kind, sensitivity, retention_state, asset_id, file_name, media_type, sha256,
       byte_length, captured_at_ms, received_at_ms, expires_at_ms, blobs_held, idempotency_key, request_fingerprint)
     SELECT ?, source_id, kind, sensitivity, 'active', asset_id, 'x.png', media_type, sha256, byte_length, ?, ?, expires_at_ms, 1, ?, 'f' FROM observations LIMIT 1`,
  );
  const extraIds = Array.from({ length: UPLOADS }, (_, i) => obsId(ROWS + i));
  rowCpu = cpuMs(() => extraIds.forEach((id, i) => db.transaction(() => extra.run(id, now + i, now + i, `extra-${i}`))()));
  const doc = db.prepare(`INSERT INTO search_documents (observation_id, body) VALUES (?, ?)`);
  const texts = extraIds.map(() => screenText());
  indexCpu = cpuMs(() => extraIds.forEach((id, i) => db.transaction(() => doc.run(id, texts[i]))()));
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

// ------------------------------------------------------------------ queries over HTTP
const t = performance.now();
const d = await startDaemon(dataDir, { OBSERVD_SWEEP_INTERVAL_MS: '3600000' });
const startupMs = Math.round(performance.now() - t);
/** Two words of the Zipf text distribution past the 50 most common ones (what someone would type to find a screen). */
function twoWords() {
  const pick = () => {
    for (;;) {
      const i = zipfIndex();
      if (i >= 50) return vocab[i];
    }
  };
  return `${pick()} ${pick()}`;
}
const url = (q) => `${d.url}/v1/search?q=${encodeURIComponent(q)}&limit=20`;
const cases = {
  two_words: () => twoWords(),
  phrase: () => `"${phrases[Math.floor(rand() * phrases.length)]}"`,
};
/** The worst case: two of the 10 most common words, matching most of the store (ranked within search.rank_window). */
const commonWords = () => `${vocab[Math.floor(rand() * 10)]} ${vocab[Math.floor(rand() * 10)]}`;
// Warm-up: page cache and prepared statements.
await load({ workers: 2, total: 100, make: () => ({ url: url(cases.two_words()) }) });
const hitCounts = [];
for (let i = 0; i < 50; i++) {
  const r = await fetch(`${url(cases.two_words())}&page=true`);
  hitCounts.push((await r.json()).pagination?.total_count ?? 0);
}
hitCounts.sort((a, b) => a - b);

const results = {
  rows: ROWS,
  vocabulary: VOCABULARY,
  words_per_text: WORDS_PER_TEXT,
  avg_text_bytes: avgTextBytes,
  requests_per_case: REQUESTS,
  quick: QUICK,
  seed_observations_seconds: seedObsSeconds,
  index_build_seconds: indexSeconds,
  db_bytes_without_index: bytesWithout,
  db_bytes_with_index: bytesWith,
  db_bytes_per_observation_without_index: REUSE ? null : Math.round(bytesWithout / ROWS),
  db_bytes_per_observation_with_index: REUSE ? null : Math.round(bytesWith / ROWS),
  index_cpu_ms_per_upload: REUSE ? null : round(indexCpu, 3),
  observation_row_cpu_ms_per_upload: REUSE ? null : round(rowCpu, 3),
  reused_data: !!REUSE,
  daemon_startup_ms: startupMs,
  two_word_matches: { p50: hitCounts[Math.floor(hitCounts.length / 2)], max: hitCounts[hitCounts.length - 1] },
  cases: {},
};
for (const [name, make] of Object.entries(cases)) {
  results.cases[name] = {};
  for (const c of [1, 8]) {
    console.error(`search: ${name}, concurrency ${c}`);
    const ag = agent(c);
    results.cases[name][`c${c}`] = await withServerCpu(d.pid, () =>
      load({ workers: c, total: REQUESTS, make: () => ({ url: url(make()), agent: ag }) }),
    );
  }
}
{
  console.error('search: common words (worst case), concurrency 1');
  const c1 = await withServerCpu(d.pid, () =>
    load({ workers: 1, total: Math.ceil(REQUESTS / 10), make: () => ({ url: url(commonWords()) }) }),
  );
  results.cases.common_words = { c1 };
}
results.daemon_rss = rssOf(d.pid);
await d.stop();
if (KEEP || REUSE) console.error(`search: data kept in ${dataDir}`);
else rmSync(dataDir, { recursive: true, force: true });

const n = ROWS.toLocaleString('en');
results.summary = [];
for (const [name, label] of [
  ['two_words', 'two words'],
  ['phrase', 'phrase'],
]) {
  for (const c of [1, 8]) {
    const r = results.cases[name][`c${c}`];
    const target = TARGETS[`c${c}`];
    results.summary.push(
      row(`search ${label} (${n} obs), concurrency ${c}: p50 / p99`, `${r.p50_ms} / ${r.p99_ms}`, 'ms', {
        target: `p99 <= ${target} ms`,
        met: r.p99_ms <= target,
        note: `${r.rps} req/s${Object.keys(r.statuses).some((s) => s !== '200') ? `; statuses ${JSON.stringify(r.statuses)}` : ''}`,
      }),
    );
  }
}
{
  const r = results.cases.common_words.c1;
  results.summary.push(
    row(`search two of the 10 commonest words (${n} obs), concurrency 1: p50 / p99`, `${r.p50_ms} / ${r.p99_ms}`, 'ms', {
      note: 'worst case, no target; matches most of the store',
    }),
  );
}
if (!REUSE)
  results.summary.push(
    row('search index CPU per upload with text', results.index_cpu_ms_per_upload, 'ms', {
      baseline: results.observation_row_cpu_ms_per_upload,
      ratio: round(results.index_cpu_ms_per_upload / results.observation_row_cpu_ms_per_upload),
      note: `baseline: committing the observation row alone; ~${avgTextBytes} B of text`,
    }),
    row('database bytes per observation with the index', results.db_bytes_per_observation_with_index, 'B', {
      baseline: results.db_bytes_per_observation_without_index,
      ratio: round(results.db_bytes_per_observation_with_index / results.db_bytes_per_observation_without_index),
      note: 'baseline: without it; the index holds the text too (for snippets and exact deletes)',
    }),
  );
saveResults('search', results);
console.log(JSON.stringify(results, null, 2));
