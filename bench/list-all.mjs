// An unlimited list: 200,000 observations of one source written straight into the SQLite file,
// then `GET /v1/observations?source_id=..` with no limit and no paging, which answers every row
// as one JSON array streamed page by page. Reported: the daemon's peak RSS during the answer
// (target < 300 MiB), against its peak RSS after startup and a warm-up page (the baseline,
// measured in the same run), the time to the last byte and the body size. Also the streaming
// rate of the unlimited list of a 10,000-observation source (target >= 50,000 rows/s), the
// median of 5 reads.
//   node bench/list-all.mjs [--quick] [--rows 200000]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { cpuSecondsOf, createSource, flag, memoryOf, numArg, request, round, row, rssOf, saveResults, startDaemon } from './lib.mjs';

/** Peak RSS, and RSS split into anonymous memory and file pages (SQLite's mmap of the database), in MiB. */
function rssParts(pid) {
  const { peak_rss_mib, rss_anon_mib, rss_file_mib } = memoryOf(pid);
  return { peak_rss_mib, rss_anon_mib, rss_file_mib };
}

const QUICK = flag('quick');
const ROWS = numArg('rows', QUICK ? 20_000 : 200_000);
const TARGET_MIB = 300;
const SOURCE = 'list-all';
const SMALL_SOURCE = 'list-10k';
const SMALL_ROWS = 10_000;
const TARGET_ROWS_PER_S = 50_000;
const dataDir = mkdtempSync(join(tmpdir(), 'observd-bench-list-all-'));
// The 10,000-row source lives in a store of its own, so the big list's memory figures are as before.
const smallDir = mkdtempSync(join(tmpdir(), 'observd-bench-list-10k-'));

/** Writes `rows` observations of `source` straight into the store in `dir`. */
function seed(dir, source, rows) {
  const db = new Database(join(dir, 'observd.db'));
  db.pragma('synchronous = OFF');
  const now = Date.now();
  const sha = randomBytes(32).toString('hex');
  db.prepare(`INSERT INTO assets VALUES (?, ?, 'image/png', 65536, ?)`).run(`ast_${sha}`, sha, now);
  const insert = db.prepare(
    `INSERT INTO observations (observation_id, source_id, kind, sensitivity, retention_state, asset_id, file_name, media_type, sha256,
       byte_length, captured_at_ms, received_at_ms, expires_at_ms, blobs_held, idempotency_key, request_fingerprint, stream_id, seq_no, metadata)
     VALUES (?, ?, 'screen_snapshot', 'sensitive', 'active', ?, ?, 'image/png', ?, 65536, ?, ?, ?, 1, ?, ?, 'display-1', ?, '{"window":"editor"}')`,
  );
  const fp = randomBytes(32).toString('hex');
  db.transaction(() => {
    for (let k = 0; k < rows; k++) {
      const at = now - rows + k;
      insert.run(
        `obs_${String(k).padStart(26, '0')}`,
        source,
        `ast_${sha}`,
        `screen-${k}.png`,
        sha,
        at,
        at,
        now + 86_400_000,
        `key-${k}`,
        fp,
        k,
      );
    }
  })();
  db.prepare(`UPDATE sources SET active_observation_count = ?, active_byte_length = ? WHERE source_id = ?`).run(rows, rows * 65536, source);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

/** Reads the whole answer, counting bytes and rows without keeping it, while sampling the daemon's RSS. */
function readAll(url, pid) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let bytes = 0;
    let rows = 0;
    let maxRss = 0;
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssOf(pid).rss_mib)), 20);
    http
      .get(url, (res) => {
        let tail = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          bytes += Buffer.byteLength(chunk);
          const text = tail + chunk;
          rows += text.split('"observation_id":').length - 1;
          tail = text.slice(-20);
          rows -= tail.split('"observation_id":').length - 1;
        });
        res.on('end', () => {
          clearInterval(sampler);
          rows += tail.split('"observation_id":').length - 1;
          const exact = (performance.now() - started) / 1000;
          resolve({
            status: res.statusCode,
            bytes,
            rows,
            seconds: round(exact),
            exact_seconds: exact,
            sampled_max_rss_mib: maxRss,
            json_array: true,
          });
        });
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

console.error(`list-all: creating the source in ${dataDir}`);
let d = await startDaemon(dataDir);
await createSource(d.url, SOURCE, 'bench-list-all-token-0001');
await d.stop();
d = await startDaemon(smallDir);
await createSource(d.url, SMALL_SOURCE, 'bench-list-all-token-0002');
await d.stop();
console.error(`list-all: seeding ${ROWS} + ${SMALL_ROWS} observations`);
seed(dataDir, SOURCE, ROWS);
seed(smallDir, SMALL_SOURCE, SMALL_ROWS);
d = await startDaemon(dataDir, { OBSERVD_SWEEP_INTERVAL_MS: '3600000' });
// Baseline: the same daemon after a warm-up page, before the unlimited list.
await request(`${d.url}/v1/observations?source_id=${SOURCE}&limit=100`);
const baseline = rssParts(d.pid);
console.error(`list-all: listing every row (baseline peak RSS ${baseline.peak_rss_mib} MiB)`);
const answer = await readAll(`${d.url}/v1/observations?source_id=${SOURCE}`, d.pid);
const after = rssParts(d.pid);
await d.stop();
d = await startDaemon(smallDir, { OBSERVD_SWEEP_INTERVAL_MS: '3600000' });
console.error(`list-all: listing a ${SMALL_ROWS}-row source 5 times`);
const small = [];
for (let i = 0; i < 5; i++) {
  const cpu0 = cpuSecondsOf(d.pid);
  const r = await readAll(`${d.url}/v1/observations?source_id=${SMALL_SOURCE}`, d.pid);
  small.push({ ...r, rows_per_s: Math.round(r.rows / r.exact_seconds), server_cpu_ms: round((cpuSecondsOf(d.pid) - cpu0) * 1000) });
}
small.sort((a, b) => a.rows_per_s - b.rows_per_s);
const smallMedian = small[2];
await d.stop();
rmSync(dataDir, { recursive: true, force: true });
rmSync(smallDir, { recursive: true, force: true });

const results = {
  rows: ROWS,
  quick: QUICK,
  answer,
  baseline,
  after,
  small_source: {
    rows: SMALL_ROWS,
    runs: small.map(({ rows, bytes, exact_seconds, rows_per_s, server_cpu_ms }) => ({
      rows,
      bytes,
      seconds: round(exact_seconds, 4),
      rows_per_s,
      server_cpu_ms,
    })),
  },
  baseline_peak_rss_mib: baseline.peak_rss_mib,
  peak_rss_mib: after.peak_rss_mib,
  summary: [
    row(`unlimited list of ${ROWS.toLocaleString('en')} rows: daemon peak RSS`, after.peak_rss_mib, 'MiB', {
      baseline: baseline.peak_rss_mib,
      ratio: round(after.peak_rss_mib / baseline.peak_rss_mib),
      target: `< ${TARGET_MIB} MiB`,
      met: after.peak_rss_mib < TARGET_MIB && answer.rows === ROWS,
      note: `${answer.rows} rows, ${round(answer.bytes / 2 ** 20)} MiB of JSON in ${answer.seconds} s; anonymous ${after.rss_anon_mib} MiB, file-backed (SQLite mmap) ${after.rss_file_mib} MiB; baseline = peak RSS after startup and one page`,
    }),
    row(`unlimited list of a ${SMALL_ROWS.toLocaleString('en')}-row source: streaming rate`, smallMedian.rows_per_s, 'rows/s', {
      target: `>= ${TARGET_ROWS_PER_S.toLocaleString('en')} rows/s`,
      met: smallMedian.rows_per_s >= TARGET_ROWS_PER_S && smallMedian.rows === SMALL_ROWS,
      note: `median of 5: ${round(smallMedian.exact_seconds * 1000, 1)} ms for ${round(smallMedian.bytes / 2 ** 20)} MiB, daemon CPU ${smallMedian.server_cpu_ms} ms`,
    }),
  ],
};
saveResults('list_all', results);
console.log(JSON.stringify(results, null, 2));
