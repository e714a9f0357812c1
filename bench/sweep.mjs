// Retention sweep under load: 100,000 expired observations (each with its own blob) are swept
// while 8 uploaders keep uploading; upload latency during the sweep is compared with the same
// uploaders on the same database with nothing to sweep, measured in the same run.
//   node bench/sweep.mjs [--rows 100000] [--quiet-seconds 8]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3-multiple-ciphers';
import { agent, load, makePng, numArg, round, saveResults, startDaemon } from './lib.mjs';

const ROWS = numArg('rows', 100_000);
const QUIET_SECONDS = numArg('quiet-seconds', 8);
const UPLOADERS = 8;
const TOKEN = 'bench-sweep-upload-token';

const dataDir = mkdtempSync(join(tmpdir(), 'observd-bench-sweep-'));
let uploadSeq = 0;
const png = (i) => makePng(16 * 1024, 1_000_000 + i);

function uploader(url) {
  const ag = agent(UPLOADERS);
  return () => {
    const n = uploadSeq++;
    return {
      url: `${url}/v1/observation-sources/live/observations`,
      method: 'POST',
      agent: ag,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        upload: { file_name: `f${n}.png`, media_type: 'image/png', content_base64: png(n).toString('base64') },
        idempotency_key: `live-${n}`,
      }),
    };
  };
}

async function createSources(url) {
  for (const source_id of ['live', 'old']) {
    await fetch(`${url}/v1/observation-sources`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        source_id,
        display_name: source_id,
        kind: 'screen_snapshot',
        upload_token: TOKEN,
        max_active_observations: 10_000_000,
        max_active_bytes: 2 ** 50,
      }),
    });
  }
}

/** Writes `ROWS` observations of source "old", each with its own small blob, straight into the store. */
function seed(expiresAt) {
  const db = new Database(join(dataDir, 'observd.db'));
  const insertAsset = db.prepare(`INSERT INTO assets VALUES (?, ?, 'image/png', ?, 0)`);
  const insertObs = db.prepare(
    `INSERT INTO observations (observation_id, source_id, kind, sensitivity, retention_state, asset_id, file_name, media_type, sha256,
       byte_length, captured_at_ms, received_at_ms, expires_at_ms, blobs_held, idempotency_key, request_fingerprint)
     VALUES (?, 'old', 'screen_snapshot', 'sensitive', 'active', ?, 'f.png', 'image/png', ?, ?, ?, ?, ?, 1, ?, 'x')`,
  );
  let bytes = 0;
  const started = performance.now();
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const content = Buffer.from(`bench blob ${i} ${'x'.repeat(200)}`);
      const sha = createHash('sha256').update(content).digest('hex');
      const dir = join(dataDir, 'blobs', sha.slice(0, 2), sha.slice(2, 4));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, sha), content);
      insertAsset.run(`ast_${sha}`, sha, content.length);
      const id = `obs_${String(i).padStart(26, '0')}`;
      insertObs.run(id, `ast_${sha}`, sha, content.length, 1_700_000_000_000 + i, 1_700_000_000_000 + i, expiresAt, `old-${i}`);
      bytes += content.length;
    }
    db.prepare(`UPDATE sources SET active_observation_count = ?, active_byte_length = ? WHERE source_id = 'old'`).run(ROWS, bytes);
  })();
  db.close();
  return round((performance.now() - started) / 1000);
}

const env = { OBSERVD_SWEEP_INTERVAL_MS: '3600000', OBSERVD_LOG_LEVEL: 'info' };
console.error(`seeding ${ROWS} observations in ${dataDir} ...`);
let d = await startDaemon(dataDir, env);
await createSources(d.url);
await d.stop();
const seedSeconds = seed(8_640_000_000_000_000);

// Quiet: the same database, nothing expired.
d = await startDaemon(dataDir, env);
const quiet = await load({ workers: UPLOADERS, durationMs: QUIET_SECONDS * 1000, make: uploader(d.url) });
await d.stop();

// Sweep: everything of "old" expired; the sweeper starts as the daemon starts, uploads run alongside.
const db = new Database(join(dataDir, 'observd.db'));
db.prepare(`UPDATE observations SET expires_at_ms = 0 WHERE source_id = 'old'`).run();
db.close();
d = await startDaemon(dataDir, env);
const findReport = () => d.lines.find((l) => l.msg === 'retention sweep purged observations');
const during = await load({ workers: UPLOADERS, durationMs: 600_000, until: findReport, make: uploader(d.url) });
const sweepReport = findReport();
await d.stop();

const result = {
  rows: ROWS,
  uploaders: UPLOADERS,
  seed_seconds: seedSeconds,
  sweep: sweepReport
    ? {
        purged: sweepReport.purged,
        duration_ms: sweepReport.duration_ms,
        rows_per_s: Math.round(sweepReport.purged / (sweepReport.duration_ms / 1000)),
        blobs_erased: sweepReport.blobs_erased,
      }
    : null,
  quiet_uploads: quiet,
  uploads_during_sweep: during,
};
if (result.sweep && during) result.p99_ratio_sweep_vs_quiet = round(during.p99_ms / quiet.p99_ms);
rmSync(dataDir, { recursive: true, force: true });
saveResults('sweep', result);
console.log(JSON.stringify(result, null, 2));
