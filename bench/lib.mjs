// Shared benchmark plumbing: a real observd child process, a closed-loop HTTP load generator,
// percentiles and the results file. Benchmarks are not tests: they print figures, never assert.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = fileURLToPath(new URL('../bin/observd', import.meta.url));

/**
 * Starts `observd serve` on a free loopback port over `dataDir`; resolves once it listens. With
 * OBSERVD_BENCH_CPU_PROF=<dir> the daemon (only) runs under `node --cpu-prof` and writes its
 * profile there when it stops (summarise one with `node bench/profile-top.mjs <file>`).
 */
export function startDaemon(dataDir, env = {}, args = []) {
  const prof = process.env.OBSERVD_BENCH_CPU_PROF;
  return startListening(
    [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), BIN, 'serve', '--bind', '127.0.0.1:0', '--data-dir', dataDir, ...args],
    { OBSERVD_MIN_FREE_BYTES: '0', OBSERVD_LOG_LEVEL: 'info', ...env },
    'observd listening',
  );
}

/** Starts the bare node:http baseline server (bench/baseline-server.mjs) writing into `dataDir`. */
export function startBaseline(dataDir) {
  return startListening(
    [fileURLToPath(new URL('./baseline-server.mjs', import.meta.url)), '--data-dir', dataDir],
    {},
    'baseline listening',
  );
}

/**
 * Spawns `node ...argv` and resolves once it logs a JSON line with `msg === readyMsg` and an
 * `address`; `lines` keeps every later non-request log record (for errors and sweep reports).
 */
function startListening(argv, env, readyMsg) {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, argv, {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = [];
    let buf = '';
    let started = false;
    proc.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let rec;
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        if (rec.msg !== 'request') lines.push(rec);
        if (!started && rec.msg === readyMsg) {
          started = true;
          resolve({ proc, pid: proc.pid, url: `http://${rec.address}`, lines, stop: () => stopChild(proc) });
        }
      }
    });
    proc.on('exit', (code) => !started && reject(new Error(`${argv[0]} exited early with ${code}`)));
  });
}

export function stopChild(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

/** A keep-alive agent per load run so connection set-up is not measured. */
export function agent(connections) {
  return new http.Agent({ keepAlive: true, maxSockets: connections });
}

/** One HTTP request; resolves with { status, body, ms } (status 'error:<code>' when the connection failed). */
export function request(url, { method = 'GET', headers = {}, body, agent: ag } = {}) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(url, { method, headers, agent: ag }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), ms: performance.now() - t0 }));
      res.on('error', (e) => resolve({ status: `error:${e.code ?? e.message}`, body: Buffer.alloc(0), ms: performance.now() - t0 }));
    });
    // A benchmark reports a refused or reset connection; it does not crash on one.
    req.on('error', (e) => resolve({ status: `error:${e.code ?? e.message}`, body: Buffer.alloc(0), ms: performance.now() - t0 }));
    if (body) req.end(body);
    else req.end();
  });
}

/**
 * Closed-loop load: `workers` loops each send `make(i, worker)` requests back to back until
 * `durationMs` passes, `total` requests were sent, or `until()` turns true. Returns latencies,
 * throughput and a count per status; `errors` keeps a few non-2xx bodies for the report.
 * `keepLatencies`, an array, receives every latency (to merge runs).
 */
export async function load({ workers, durationMs, total, make, until, keepLatencies }) {
  const latencies = keepLatencies ?? [];
  const statuses = {};
  const errors = [];
  let next = 0;
  const started = performance.now();
  const deadline = started + (durationMs ?? Infinity);
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (;;) {
        if (performance.now() >= deadline || until?.()) break;
        const i = next++;
        if (total !== undefined && i >= total) break;
        const { url, ...opts } = make(i, w);
        const r = await request(url, opts);
        latencies.push(r.ms);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (!(r.status >= 200 && r.status < 300) && errors.length < 5)
          errors.push({ status: r.status, body: r.body.toString('utf8', 0, 300) });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const ok = Object.entries(statuses).reduce((n, [s, c]) => n + (s >= 200 && s < 300 ? c : 0), 0);
  return {
    requests: latencies.length,
    ok,
    seconds: round(seconds),
    rps: round(latencies.length / seconds),
    ok_rps: round(ok / seconds),
    ...percentiles(latencies),
    statuses,
    ...(errors.length ? { errors } : {}),
  };
}

export function percentiles(values) {
  const s = [...values].sort((a, b) => a - b);
  const at = (p) => (s.length ? round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]) : null);
  return { p50_ms: at(50), p99_ms: at(99), max_ms: s.length ? round(s[s.length - 1]) : null };
}

export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat (Linux). */
export function cpuSecondsOf(pid) {
  const { user, system } = cpuTimesOf(pid);
  return user + system;
}

/** User and system CPU time of a process so far, in seconds (utime and stime of /proc/<pid>/stat). */
export function cpuTimesOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLK_TCK, system: Number(f[12]) / CLK_TCK };
}

/**
 * Runs `run()` (a `load` result) and adds the process's CPU time per request (user + system,
 * every thread) as `server_cpu_ms_per_request`.
 */
export async function withServerCpu(pid, run) {
  const cpu0 = cpuSecondsOf(pid);
  const r = await run();
  return { ...r, server_cpu_ms_per_request: round(((cpuSecondsOf(pid) - cpu0) * 1000) / r.requests) };
}

/** Clock ticks per second (`getconf CLK_TCK`; 100 on every common Linux). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Command-line helpers: `flag('quick')` for `--quick`, `arg('rows', 10)` for `--rows N`. */
export const flag = (name) => process.argv.includes(`--${name}`);
export const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
};
export const numArg = (name, def) => Number(arg(name, def));

/** Creates (or updates) a screen_snapshot source with quotas high enough never to evict during a run; `extra` overrides fields. */
export async function createSource(url, sourceId, token, extra = {}) {
  const res = await fetch(`${url}/v1/observation-sources`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      source_id: sourceId,
      display_name: sourceId,
      kind: 'screen_snapshot',
      upload_token: token,
      max_active_observations: 10_000_000,
      max_active_bytes: 2 ** 50,
      ...extra,
    }),
  });
  if (!res.ok) throw new Error(`creating source ${sourceId}: ${res.status} ${await res.text()}`);
}

let uploadSeq = 0;
/**
 * `seconds` of closed-loop uploads by `workers` connections to one source, bodies from
 * `bodies.next(worker, seq)` (bench/payload.mjs): `load`'s figures with every latency kept
 * and, given the server's `pid`, its CPU seconds (`cpu_seconds`, of which `sys_seconds` system).
 */
export async function uploadPhase({ url, sourceId, token, bodies, workers, seconds, pid }) {
  const ag = agent(workers);
  const cpu0 = pid === undefined ? null : cpuTimesOf(pid);
  const latencies = [];
  const r = await load({
    workers,
    durationMs: seconds * 1000,
    make: (_i, w) => {
      const body = bodies.next(w, ++uploadSeq);
      return {
        url: `${url}/v1/observation-sources/${sourceId}/observations`,
        method: 'POST',
        agent: ag,
        headers: { authorization: `Bearer ${token}`, 'content-type': bodies.contentType, 'content-length': body.length },
        body,
      };
    },
    keepLatencies: latencies,
  });
  ag.destroy();
  if (!cpu0) return { ...r, latencies };
  const cpu1 = cpuTimesOf(pid);
  return { ...r, latencies, cpu_seconds: cpu1.user - cpu0.user + cpu1.system - cpu0.system, sys_seconds: cpu1.system - cpu0.system };
}

/** Phases of one server merged: ok requests, throughput over their summed time, percentiles of every latency. */
export function mergePhases(phases) {
  const ok = phases.reduce((n, p) => n + p.ok, 0);
  const seconds = phases.reduce((n, p) => n + p.seconds, 0);
  return { ok, ok_rps: round(ok / seconds), ...percentiles(phases.flatMap((p) => p.latencies)) };
}

/** A one-line summary row for bench/run.mjs's table; `met` only when a target is given. */
export function row(metric, value, unit, { baseline, ratio, target, met, note } = {}) {
  return {
    metric,
    value,
    unit,
    baseline: baseline ?? null,
    ratio: ratio ?? null,
    target: target ?? null,
    met: met ?? null,
    ...(note ? { note } : {}),
  };
}

/**
 * Memory of a process from /proc/<pid>/status (Linux), in MiB: RSS, peak RSS, and RSS split into
 * anonymous memory (the heap, buffers) and file pages (SQLite's mmap of the database).
 */
export function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => round(Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024);
  return { rss_mib: get('VmRSS'), peak_rss_mib: get('VmHWM'), rss_anon_mib: get('RssAnon'), rss_file_mib: get('RssFile') };
}

/** Peak and current RSS of a process, in MiB, from /proc (Linux). */
export function rssOf(pid) {
  const { rss_mib, peak_rss_mib } = memoryOf(pid);
  return { rss_mib, peak_rss_mib };
}

/** Bytes of observd's database in `dataDir` (main file plus WAL; a missing file counts 0). */
export function dbFileBytes(dataDir) {
  const size = (f) => {
    try {
      return statSync(join(dataDir, f)).size;
    } catch {
      return 0;
    }
  };
  return size('observd.db') + size('observd.db-wal');
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** A ULID-shaped id for seeding: 10 characters of time `ms`, then 16 of `n` (unique per row). */
export function ulidAt(ms, n) {
  let t = '';
  for (let i = 0; i < 10; i++) {
    t = CROCKFORD[ms % 32] + t;
    ms = Math.floor(ms / 32);
  }
  let r = '';
  for (let i = 0; i < 16; i++) {
    r = CROCKFORD[n % 32] + r;
    n = Math.floor(n / 32);
  }
  return t + r;
}

export function machine() {
  return { cpus: cpus().length, cpu_model: cpus()[0]?.model, mem_gib: round(totalmem() / 2 ** 30), node: process.version };
}

/**
 * Merges one benchmark's results into bench/results/latest.json, or into the file named by
 * OBSERVD_BENCH_RESULTS (bench/run.mjs gives each suite run its own, so a benchmark someone
 * runs alone meanwhile cannot overwrite the suite's figures).
 */
export function saveResults(name, results) {
  const dir = `${ROOT}/bench/results`;
  mkdirSync(dir, { recursive: true });
  const file = process.env.OBSERVD_BENCH_RESULTS || `${dir}/latest.json`;
  const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  all.machine = machine();
  all.updated_at = new Date().toISOString();
  all[name] = results;
  writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`);
}

/** A distinct valid PNG of about `bytes` bytes (stored uncompressed so the size is predictable). */
export { makePng } from './png.mjs';
