// An idle daemon: RSS and CPU over 60 s (10 s with --quick) with its default timers running
// (retention sweeper every 5 s, cleanup and pruning every minute), one source configured and no
// traffic. CPU% = (utime + stime ticks from /proc/<pid>/stat, after - before) / (CLK_TCK * seconds).
// Target: < 1% CPU. The bare node:http baseline idles alongside, for context.
//   node bench/idle.mjs [--quick] [--seconds 60]
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLK_TCK, createSource, flag, numArg, round, row, rssOf, saveResults, startBaseline, startDaemon } from './lib.mjs';

const QUICK = flag('quick');
const SECONDS = numArg('seconds', QUICK ? 10 : 60);
const SETTLE_MS = 2000;
const TARGET_CPU_PCT = 1;

const ticksOf = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
};

const dataDir = mkdtempSync(join(tmpdir(), 'observd-bench-idle-'));
const baseDir = mkdtempSync(join(tmpdir(), 'observd-bench-idle-baseline-'));
const servers = { observd: await startDaemon(dataDir), baseline: await startBaseline(baseDir) };
await createSource(servers.observd.url, 'idle', 'bench-idle-upload-token');
await new Promise((r) => setTimeout(r, SETTLE_MS));

console.error(`idle: watching observd and the baseline for ${SECONDS}s`);
const before = {};
const samples = { observd: [], baseline: [] };
const tickSamples = { observd: [], baseline: [] };
const lastTicks = {};
for (const [name, s] of Object.entries(servers)) {
  before[name] = { ticks: ticksOf(s.pid), rss: rssOf(s.pid) };
  lastTicks[name] = before[name].ticks;
}
const t0 = performance.now();
while (performance.now() - t0 < SECONDS * 1000) {
  await new Promise((r) => setTimeout(r, Math.min(5000, SECONDS * 1000 - (performance.now() - t0))));
  for (const [name, s] of Object.entries(servers)) {
    samples[name].push(rssOf(s.pid).rss_mib);
    const t = ticksOf(s.pid);
    tickSamples[name].push(t - lastTicks[name]);
    lastTicks[name] = t;
  }
}
const seconds = (performance.now() - t0) / 1000;

/** CPU% over the 5 s samples after the first three (null when the run is too short). */
function steadyPct(ticks) {
  const rest = ticks.slice(3);
  return rest.length ? round((rest.reduce((a, b) => a + b, 0) / (CLK_TCK * 5 * rest.length)) * 100, 3) : null;
}

const results = { seconds: round(seconds), clk_tck: CLK_TCK, quick: QUICK };
for (const [name, s] of Object.entries(servers)) {
  const ticks = ticksOf(s.pid) - before[name].ticks;
  const end = rssOf(s.pid);
  results[name] = {
    cpu_ticks: ticks,
    cpu_pct: round((ticks / (CLK_TCK * seconds)) * 100, 3),
    rss_start_mib: before[name].rss.rss_mib,
    rss_end_mib: end.rss_mib,
    peak_rss_mib: end.peak_rss_mib,
    rss_samples_mib: samples[name],
    cpu_ticks_per_5s: tickSamples[name],
    // Without the first 15 s after the settle: start-up garbage is collected about then.
    cpu_pct_after_15s: steadyPct(tickSamples[name]),
  };
}
const problems = servers.observd.lines.filter((l) => l.level >= 40).slice(0, 5);
if (problems.length) results.observd_warnings = problems;
for (const s of Object.values(servers)) await s.stop();
rmSync(dataDir, { recursive: true, force: true });
rmSync(baseDir, { recursive: true, force: true });

const o = results.observd;
const b = results.baseline;
results.summary = [
  row(`idle (${Math.round(seconds)} s): CPU`, o.cpu_pct, '%', {
    baseline: b.cpu_pct,
    target: `< ${TARGET_CPU_PCT}%`,
    met: o.cpu_pct < TARGET_CPU_PCT,
    ...(o.cpu_pct_after_15s !== null ? { note: `${o.cpu_pct_after_15s}% after the first 15 s` } : {}),
  }),
  row('idle: RSS start -> end', `${o.rss_start_mib} -> ${o.rss_end_mib}`, 'MiB', { baseline: `${b.rss_start_mib} -> ${b.rss_end_mib}` }),
];
saveResults('idle', results);
console.log(JSON.stringify(results, null, 2));
