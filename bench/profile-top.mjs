// Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. a daemon started by the benchmarks
// with OBSERVD_BENCH_CPU_PROF=<dir>): the functions with the most self time and the most
// inclusive time, as shares of the non-idle samples, and self time by package or file.
//   node bench/profile-top.mjs <file.cpuprofile> [rows] [--callers <function name>]
import { readFileSync } from 'node:fs';

const [file, rowsArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && all[i - 1] !== '--callers');
const ci = process.argv.indexOf('--callers');
const callersOf = ci > 0 ? process.argv[ci + 1] : undefined;
const N = Number(rowsArg ?? 30);
const p = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => {
  const cf = n.callFrame;
  const url = cf.url.replace(/.*node_modules\//, 'nm/').replace(/.*\/dist\//, 'dist/');
  return `${cf.functionName || '(anon)'} ${url}${url ? `:${cf.lineNumber + 1}` : ''}`;
};
const pkg = (n) => {
  const u = n.callFrame.url;
  if (!u) return n.callFrame.functionName;
  return u.replace(/.*node_modules\/(@[^/]+\/[^/]+|[^/]+).*/, 'nm:$1').replace(/.*\/dist\//, 'dist/');
};
const sampleTime = new Map();
p.samples.forEach((id, i) => sampleTime.set(id, (sampleTime.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
const isIdle = (id) => ['(idle)', '(program)'].includes(byId.get(id).callFrame.functionName);
let busy = 0;
const self = new Map();
const incl = new Map();
const files = new Map();
const callers = new Map();
for (const [id, t] of sampleTime) {
  if (isIdle(id)) continue;
  busy += t;
  const n = byId.get(id);
  self.set(name(n), (self.get(name(n)) ?? 0) + t);
  files.set(pkg(n), (files.get(pkg(n)) ?? 0) + t);
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const k = name(byId.get(cur));
    if (!seen.has(k)) incl.set(k, (incl.get(k) ?? 0) + t), seen.add(k);
    if (callersOf && byId.get(cur).callFrame.functionName === callersOf) {
      const chain = [];
      for (let up = parent.get(cur), d = 0; up !== undefined && d < 4; up = parent.get(up), d++)
        chain.push(byId.get(up).callFrame.functionName || '(anon)');
      callers.set(chain.join(' < '), (callers.get(chain.join(' < ')) ?? 0) + t);
    }
  }
}
const pct = (t) => `${((t / busy) * 100).toFixed(1).padStart(5)}%`;
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
console.log(`busy (non-idle) ${(busy / 1e3).toFixed(0)} ms of ${(p.timeDeltas.reduce((a, b) => a + b, 0) / 1e3).toFixed(0)} ms`);
console.log('--- self time');
for (const [k, t] of top(self, N)) console.log(pct(t), k);
console.log('--- inclusive time');
for (const [k, t] of top(incl, N)) console.log(pct(t), k);
console.log('--- self time by package or file');
for (const [k, t] of top(files, 20)) console.log(pct(t), k);
if (callersOf) {
  console.log(`--- callers of ${callersOf}`);
  for (const [k, t] of top(callers, 15)) console.log(pct(t), k);
}
