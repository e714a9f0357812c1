// Materialization at scale: 1,000,000 observations across 100 sources (10 streams each, capture
// times shuffled, uploader canonical_text on every one, a few small shared blobs), then
// `latest_from_stream` with 3 observations, measured in-process against the service (resolve
// alone, and the whole materialization: resolve, read texts, compose, record run + journal +
// event; submitter queue), then over HTTP against a real daemon on the same store. Times are
// per call, one at a time.
//   npm run build && node bench/materialize.mjs [--rows 1000000] [--iterations 2000] [--http 500]
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../dist/config/schema.js';
import { createDaemon, openStore } from '../dist/daemon.js';
import { createLogger } from '../dist/logger.js';
import { materializationRequestSchema } from '../dist/materialization/schemas.js';
import { resolveSelection } from '../dist/materialization/selection.js';
import { agent, load, makePng, numArg, percentiles, round, saveResults } from './lib.mjs';

const ROWS = numArg('rows', 1_000_000);
const ITERATIONS = numArg('iterations', 2000);
const HTTP_REQUESTS = numArg('http', 500);
const SOURCES = 100;
const STREAMS = 10;
const SHARED_BLOBS = 16;
const DAY = 86_400_000;

const dataDir = mkdtempSync(join(tmpdir(), 'observd-bench-materialize-'));
const config = parseConfig({
  bind: '127.0.0.1:0',
  data_dir: dataDir,
  log_level: 'silent',
  retention: { min_free_bytes: 0, sweep_interval_ms: 3_600_000 },
});
const now = Date.now();

/** Writes a blob straight into the store and returns its asset row values. */
function putBlob(blobs, bytes) {
  const sha = createHash('sha256').update(bytes).digest('hex');
  const dir = join(blobs.blobDir, sha.slice(0, 2), sha.slice(2, 4));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, sha), bytes);
  return { id: `ast_${sha}`, sha, size: bytes.length };
}

/** Seeds the store: sources through the service, then every asset and observation row in one transaction. */
function seed() {
  const started = performance.now();
  const { services, deps } = openStore(config);
  const { db, blobs } = deps;
  for (let s = 0; s < SOURCES; s++) {
    services.sources.upsert({
      source_id: `src-${s}`,
      display_name: `Source ${s}`,
      kind: 'screen_snapshot',
      upload_token: 'bench-materialize-token-0001',
      max_active_observations: 100_000_000,
      max_active_bytes: 2 ** 50,
      retention_seconds: 10 * 365 * 24 * 3600,
    });
  }
  const images = Array.from({ length: SHARED_BLOBS }, (_, i) => putBlob(blobs, makePng(2048, 7_000 + i)));
  const texts = Array.from({ length: SHARED_BLOBS }, (_, i) =>
    putBlob(blobs, Buffer.from(`Editor window ${i}: build passed, 3 warnings. Terminal shows npm test output; browser on the dashboard.`)),
  );
  const insertAsset = db.prepare(`INSERT OR IGNORE INTO assets VALUES (?, ?, ?, ?, 0)`);
  const insertObs = db.prepare(
    `INSERT INTO observations (observation_id, source_id, kind, sensitivity, retention_state, asset_id, canonical_text_asset_id, file_name,
       media_type, sha256, byte_length, captured_at_ms, received_at_ms, expires_at_ms, blobs_held, stream_id, seq_no, idempotency_key,
       request_fingerprint)
     VALUES (?, ?, 'screen_snapshot', 'sensitive', 'active', ?, ?, 'f.png', 'image/png', ?, ?, ?, ?, ?, 1, ?, ?, ?, 'bench')`,
  );
  const perSource = ROWS / SOURCES;
  db.transaction(() => {
    for (const a of images) insertAsset.run(a.id, a.sha, 'image/png', a.size);
    for (const a of texts) insertAsset.run(a.id, a.sha, 'text/plain; charset=utf-8', a.size);
    let bytes = 0;
    for (let i = 0; i < ROWS; i++) {
      const s = i % SOURCES;
      const k = Math.floor(i / SOURCES);
      const img = images[i % SHARED_BLOBS];
      // Shuffled capture times within the last day; receipt order is insertion order.
      const captured = now - Math.floor(Math.random() * DAY);
      const id = `obs_${i.toString(32).toUpperCase().padStart(26, '0')}`;
      insertObs.run(
        id,
        `src-${s}`,
        img.id,
        texts[i % SHARED_BLOBS].id,
        img.sha,
        img.size,
        captured,
        now - DAY + i,
        now + 365 * DAY,
        `stream-${k % STREAMS}`,
        k,
        `k-${k}`,
      );
      bytes += img.size;
    }
    db.prepare(`UPDATE sources SET active_observation_count = ?, active_byte_length = ?`).run(perSource, bytes / SOURCES);
  })();
  db.pragma('optimize');
  db.close();
  return round((performance.now() - started) / 1000);
}

const body = (i) => ({
  target_session_id: `bench-${i % 50}`,
  selection: {
    type: 'latest_from_stream',
    source_id: `src-${Math.floor(Math.random() * SOURCES)}`,
    stream_id: `stream-${Math.floor(Math.random() * STREAMS)}`,
    max_observations: 3,
    lookback_seconds: 86_400,
  },
  request: { content: 'Summarize what changed on the screen.', generation: { model: 'gpt-5.4' } },
  raw_asset_policy: 'auto',
});

async function inProcess() {
  const { services, deps } = openStore(config);
  const plan = deps.db
    .prepare(
      `EXPLAIN QUERY PLAN SELECT * FROM observations WHERE source_id = ? AND stream_id = ? AND captured_at_ms >= ? AND retention_state = 'active'
       ORDER BY captured_at_ms DESC, observation_id DESC LIMIT ?`,
    )
    .all('src-1', 'stream-1', 0, 3)
    .map((r) => r.detail);
  const resolveMs = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const req = materializationRequestSchema.parse(body(i));
    const t0 = performance.now();
    const sel = resolveSelection(deps.db, req.selection, Date.now());
    resolveMs.push(performance.now() - t0);
    if (sel.observations.length !== 3) throw new Error(`expected 3 observations, got ${sel.observations.length}`);
  }
  // Resolve and compose (read the 3 uploader texts, build the input), recording nothing.
  const composeMs = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = performance.now();
    const { input } = await services.materializations.prepare(materializationRequestSchema.parse(body(i)));
    composeMs.push(performance.now() - t0);
    if (input.observations.length !== 3 || input.attachments.length !== 3) throw new Error('unexpected input shape');
  }
  // Warm-up (statement cache, OS page cache), not measured.
  for (let i = 0; i < 50; i++) await services.materializations.materialize(materializationRequestSchema.parse(body(i)));
  await services.materializations.flushJournal();
  // The whole materialization: also the durable record (run, journal entry, held assets, event).
  // Each iteration waits for its journal text (written after the commit, off the response path)
  // so one run's background fsyncs do not land in the next one's measurement.
  const materializeMs = [];
  const journalMs = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = performance.now();
    const run = await services.materializations.materialize(materializationRequestSchema.parse(body(i)));
    const t1 = performance.now();
    await services.materializations.flushJournal();
    materializeMs.push(t1 - t0);
    journalMs.push(performance.now() - t1);
    if (run.observation_ids.length !== 3 || run.asset_ids.length !== 3) throw new Error('unexpected run shape');
  }
  // Back to back: the journal text writes of earlier runs compete with later ones.
  const backToBackMs = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = performance.now();
    await services.materializations.materialize(materializationRequestSchema.parse(body(i)));
    backToBackMs.push(performance.now() - t0);
  }
  await services.materializations.close();
  await services.derivations.close();
  deps.db.close();
  return {
    query_plan: plan,
    iterations: ITERATIONS,
    resolve: percentiles(resolveMs),
    resolve_and_compose: percentiles(composeMs),
    materialize: percentiles(materializeMs),
    journal_text_after_commit: percentiles(journalMs),
    materialize_back_to_back: percentiles(backToBackMs),
  };
}

async function overHttp() {
  if (!HTTP_REQUESTS) return null;
  const daemon = createDaemon(config, { logger: createLogger('silent') });
  const { url } = await daemon.start();
  const ag = agent(1);
  const make = (i) => ({
    url: `${url}/v1/observation-materializations`,
    method: 'POST',
    agent: ag,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body(i)),
  });
  await load({ workers: 1, total: 50, make });
  const r = await load({ workers: 1, total: HTTP_REQUESTS, make });
  await daemon.close();
  return r;
}

console.error(`seeding ${ROWS} observations across ${SOURCES} sources in ${dataDir} ...`);
const seedSeconds = seed();
console.error(`seeded in ${seedSeconds} s; measuring ...`);
const inproc = await inProcess();
const http = await overHttp();
const result = {
  rows: ROWS,
  sources: SOURCES,
  streams_per_source: STREAMS,
  seed_seconds: seedSeconds,
  selection: 'latest_from_stream, max_observations 3, lookback 86400 s, raw_asset_policy auto, submitter queue',
  ...inproc,
  http_sequential: http,
  target: 'p99 < 10 ms',
  target_met: { resolve_and_compose: inproc.resolve_and_compose.p99_ms < 10, materialize: inproc.materialize.p99_ms < 10 },
};
rmSync(dataDir, { recursive: true, force: true });
saveResults('materialize', result);
console.log(JSON.stringify(result, null, 2));
