// Ingest throughput and latency: 32 closed-loop uploaders against observd and against the bare
// node:http baseline (bench/baseline-server.mjs), both measured in the same run on the same
// bodies, ratios computed here. Scenarios: 64 KiB PNG as JSON/base64 (the seed's shape; targets
// >= 70% of the baseline's throughput and p99 <= 50 ms), 1 KiB JSON, 4 MiB JSON, 4 MiB multipart.
// Each server is warmed up first; the full run alternates baseline, observd, observd, baseline
// (half the time each) so a noisy neighbour on a shared machine hits both alike.
//   node bench/ingest.mjs [--quick] [--uploaders 32] [--seconds 8] [--scenarios 64k_json,1k_json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import {
  arg,
  createSource,
  dbFileBytes,
  flag,
  mergePhases,
  numArg,
  round,
  row,
  rssOf,
  saveResults,
  startBaseline,
  startDaemon,
  uploadPhase,
} from './lib.mjs';
import { jsonBodies, multipartBodies, pngOfSize } from './payload.mjs';

const QUICK = flag('quick');
const UPLOADERS = numArg('uploaders', 32);
const SECONDS = numArg('seconds', QUICK ? 3 : 8);
const WARMUP_SECONDS = QUICK ? 0.5 : 1.5;
const TOKEN = 'bench-ingest-upload-token';
const SOURCE = 'ingest';
const KiB = 1024;
const MiB = 1024 * KiB;

const SCENARIOS = [
  { name: '64k_json', bytes: 64 * KiB, shape: 'json', targets: { throughputRatio: 0.7, p99Ms: 50 } },
  { name: '1k_json', bytes: 1 * KiB, shape: 'json' },
  { name: '4m_json', bytes: 4 * MiB, shape: 'json' },
  { name: '4m_multipart', bytes: 4 * MiB, shape: 'multipart' },
];
const only = arg('scenarios')?.split(',');
const chosen = SCENARIOS.filter((s) => !only || only.includes(s.name));

/** Runs `seconds` of closed-loop uploads against one server, keeping raw latencies for merging. */
const phase = (server, bodies, seconds) =>
  uploadPhase({ url: server.url, sourceId: SOURCE, token: TOKEN, bodies, workers: UPLOADERS, seconds, pid: server.pid });

/** Merges phases of one server into one figure set (throughput over the summed time). */
function merge(phases) {
  const { ok, ok_rps, ...latency } = mergePhases(phases);
  const requests = phases.reduce((n, p) => n + p.requests, 0);
  const seconds = phases.reduce((n, p) => n + p.seconds, 0);
  const cpu = phases.reduce((n, p) => n + p.cpu_seconds, 0);
  const sys = phases.reduce((n, p) => n + p.sys_seconds, 0);
  const statuses = {};
  for (const p of phases) for (const [s, c] of Object.entries(p.statuses)) statuses[s] = (statuses[s] ?? 0) + c;
  const errors = phases.flatMap((p) => p.errors ?? []).slice(0, 5);
  return {
    requests,
    ok,
    seconds: round(seconds),
    ok_rps,
    mib_per_s: null,
    ...latency,
    statuses,
    // CPU (user + system) the server spent per request, and the system part of it.
    server_cpu_ms_per_request: requests ? round((cpu * 1000) / requests) : null,
    server_sys_ms_per_request: requests ? round((sys * 1000) / requests) : null,
    server_cpu_pct: round((cpu / seconds) * 100, 1),
    ...(errors.length ? { errors } : {}),
  };
}

/** observd's database bytes per stored observation (main file + WAL after a checkpoint), audit and outbox rows included. */
function dbBytesPerObservation(dataDir) {
  const db = new Database(join(dataDir, 'observd.db'));
  db.pragma('wal_checkpoint(TRUNCATE)');
  const rows = db.prepare('SELECT count(*) FROM observations').pluck().get();
  db.close();
  return rows ? Math.round(dbFileBytes(dataDir) / rows) : null;
}

async function scenario(s) {
  const png = pngOfSize(s.bytes);
  const bodies = (s.shape === 'json' ? jsonBodies : multipartBodies)(png, UPLOADERS, `${s.name}-${process.pid}`);
  const baseDir = mkdtempSync(join(tmpdir(), 'observd-bench-baseline-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'observd-bench-ingest-'));
  const servers = { baseline: await startBaseline(baseDir), observd: await startDaemon(dataDir) };
  await createSource(servers.observd.url, SOURCE, TOKEN);
  const clientCpu0 = process.cpuUsage();
  const clientT0 = performance.now();
  for (const name of ['baseline', 'observd']) {
    console.error(`ingest ${s.name}: warming up ${name}`);
    await phase(servers[name], bodies, WARMUP_SECONDS);
  }
  const order = QUICK ? ['baseline', 'observd'] : ['baseline', 'observd', 'observd', 'baseline'];
  const each = QUICK ? SECONDS : SECONDS / 2;
  const phases = { baseline: [], observd: [] };
  for (const name of order) {
    console.error(`ingest ${s.name}: ${name} for ${each}s`);
    phases[name].push(await phase(servers[name], bodies, each));
  }
  const clientCpu = process.cpuUsage(clientCpu0);
  const clientSeconds = (performance.now() - clientT0) / 1000;
  const rss = { baseline: rssOf(servers.baseline.pid), observd: rssOf(servers.observd.pid) };
  const problems = servers.observd.lines.filter((l) => l.level >= 40).slice(0, 5);
  await servers.baseline.stop();
  await servers.observd.stop();

  const result = { payload_bytes: s.bytes, shape: s.shape, body_bytes: bodies.bytes, uploaders: UPLOADERS };
  for (const name of ['baseline', 'observd']) {
    const m = merge(phases[name]);
    m.mib_per_s = round((m.ok_rps * s.bytes) / MiB);
    result[name] = { ...m, ...rss[name] };
  }
  const b = result.baseline;
  const o = result.observd;
  result.throughput_ratio = b.ok_rps ? round(o.ok_rps / b.ok_rps, 3) : null;
  result.p50_ratio = b.p50_ms ? round(o.p50_ms / b.p50_ms) : null;
  result.p99_ratio = b.p99_ms ? round(o.p99_ms / b.p99_ms) : null;
  result.observd_db_bytes_per_observation = dbBytesPerObservation(dataDir);
  result.client_cpu_pct = round(((clientCpu.user + clientCpu.system) / 1e6 / clientSeconds) * 100, 1);
  if (problems.length) result.observd_warnings = problems;
  rmSync(baseDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  console.error(
    `ingest ${s.name}: observd ${o.ok_rps}/s p50 ${o.p50_ms} p99 ${o.p99_ms} ms | baseline ${b.ok_rps}/s p50 ${b.p50_ms} p99 ${b.p99_ms} ms | ratio ${result.throughput_ratio}`,
  );
  return result;
}

function summarize(name, r, targets) {
  const label = name.replace('64k', '64 KiB').replace('1k', '1 KiB').replace('4m', '4 MiB').replace('_', ' ');
  const rows = [
    row(`ingest ${label}: uploads/s`, r.observd.ok_rps, '/s', {
      baseline: r.baseline.ok_rps,
      ratio: r.throughput_ratio,
      ...(targets
        ? { target: `>= ${targets.throughputRatio * 100}% of baseline`, met: r.throughput_ratio >= targets.throughputRatio }
        : {}),
    }),
    row(`ingest ${label}: p50`, r.observd.p50_ms, 'ms', { baseline: r.baseline.p50_ms, ratio: r.p50_ratio }),
    row(`ingest ${label}: p99`, r.observd.p99_ms, 'ms', {
      baseline: r.baseline.p99_ms,
      ratio: r.p99_ratio,
      ...(targets ? { target: `<= ${targets.p99Ms} ms`, met: r.observd.p99_ms <= targets.p99Ms } : {}),
    }),
  ];
  const failed = r.observd.requests - r.observd.ok;
  if (failed) rows.push(row(`ingest ${label}: non-2xx`, failed, 'requests', { note: JSON.stringify(r.observd.statuses) }));
  return rows;
}

const results = { uploaders: UPLOADERS, seconds_per_server: SECONDS, quick: QUICK, scenarios: {}, summary: [] };
for (const s of chosen) {
  results.scenarios[s.name] = await scenario(s);
  results.summary.push(...summarize(s.name, results.scenarios[s.name], s.targets));
}
const first = results.scenarios['1k_json'] ?? Object.values(results.scenarios)[0];
if (first?.observd_db_bytes_per_observation) {
  results.summary.push(
    row('ingest: database bytes per uploaded observation', first.observd_db_bytes_per_observation, 'B', {
      note: 'with its audit and outbox rows',
    }),
  );
}
saveResults('ingest', results);
console.log(JSON.stringify(results, null, 2));
