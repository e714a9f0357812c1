// Token comparison timing: how long `tokenMatches` takes for a wrong token that differs late,
// one that differs early, one of another length, and no stored token at all, each measured as
// a distribution over many interleaved batches. Moved out of the tests: a wall-clock ratio is a
// benchmark figure, not an assertion that can hold on a loaded machine.
//   node bench/token-timing.mjs [--rounds 2000] [--per-round 50]
import { hashToken, tokenMatches } from '../dist/sources/tokens.js';
import { numArg, percentiles, round, row, saveResults } from './lib.mjs';

const ROUNDS = numArg('rounds', 2000);
const PER_ROUND = numArg('per-round', 50);

const real = 'screen-upload-token-0123456789abcdef';
const stored = hashToken(real);
const cases = {
  differs_late: () => tokenMatches(real.replace(/.$/, 'X'), stored),
  differs_early: () => tokenMatches(`X${real.slice(1)}`, stored),
  other_length: () => tokenMatches('wrong-but-16-chr', stored),
  no_stored_token: () => tokenMatches(real.replace(/.$/, 'X'), undefined),
};
const samples = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of Object.entries(cases)) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < PER_ROUND; k++) fn();
    samples[name].push(Number(process.hrtime.bigint() - t0) / PER_ROUND);
  }
}
// percentiles() names its fields in ms; these samples are ns per call.
const stats = Object.fromEntries(
  Object.entries(samples).map(([k, v]) => {
    const p = percentiles(v);
    return [k, { p50_ns: p.p50_ms, p99_ns: p.p99_ms, max_ns: p.max_ms }];
  }),
);
const base = Math.min(...Object.values(stats).map((s) => s.p50_ns));
const results = {
  rounds: ROUNDS,
  per_round: PER_ROUND,
  ns_per_call: stats,
  summary: Object.entries(stats).map(([name, s]) =>
    row(`tokenMatches, ${name.replaceAll('_', ' ')}: p50`, round(s.p50_ns), 'ns', {
      ratio: round(s.p50_ns / base),
      target: 'ratio < 1.5 (no timing signal a network could resolve)',
      met: s.p50_ns / base < 1.5,
      note: `p99 ${round(s.p99_ns)} ns`,
    }),
  ),
};
saveResults('token_timing', results);
console.log(JSON.stringify(results, null, 2));
