// PII redaction cost: every detector (email, phone, card, iban, secret, ip) over screen text, in
// process, as the OCR and upload paths run it. Two inputs: the labelled sample of
// test/fixtures/pii-sample.txt (mail, chat, code, logs, forms; dense with PII) and plain
// screen-like text without PII. Reported per KB of text; the baseline is one pass of a trivial
// regular expression over the same text (`/\d/g` matchAll), the floor any scanner pays.
//   node bench/redact.mjs [--quick]
import { readFileSync } from 'node:fs';
import { redact } from '../dist/privacy/redact.js';
import { REDACTION_TYPES } from '../dist/privacy/types.js';
import { flag, round, row, saveResults } from './lib.mjs';

const QUICK = flag('quick');
const ITERATIONS = QUICK ? 200 : 2000;
const sample = readFileSync(new URL('../test/fixtures/pii-sample.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => !l.startsWith('#'))
  .join('\n')
  .replace(/⟦\w+:([^⟧]+)⟧/g, '$1');
const words =
  'search query index editor terminal build passed commit release window browser tab settings network version update file open save'.split(
    ' ',
  );
let seed = 7;
const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const plain = Array.from({ length: 1600 }, (_, i) =>
  i % 12 === 0 ? `${Math.floor(rnd() * 10000)}` : words[Math.floor(rnd() * words.length)],
).join(' ');

function measure(text, fn) {
  for (let i = 0; i < 20; i++) fn(text);
  const t0 = performance.now();
  for (let i = 0; i < ITERATIONS; i++) fn(text);
  const ms = (performance.now() - t0) / ITERATIONS;
  return { bytes: Buffer.byteLength(text), ms_per_call: round(ms, 4), ms_per_kb: round(ms / (Buffer.byteLength(text) / 1024), 4) };
}
const floor = (t) => {
  let n = 0;
  for (const _ of t.matchAll(/\d/g)) n++;
  return n;
};
const results = {
  iterations: ITERATIONS,
  pii_sample: measure(sample, (t) => redact(t, REDACTION_TYPES)),
  pii_sample_baseline: measure(sample, floor),
  plain_text: measure(plain, (t) => redact(t, REDACTION_TYPES)),
  plain_text_baseline: measure(plain, floor),
};
results.summary = [
  row('redact all detectors, PII-dense sample: per KB', results.pii_sample.ms_per_kb, 'ms', {
    baseline: results.pii_sample_baseline.ms_per_kb,
    ratio: round(results.pii_sample.ms_per_kb / results.pii_sample_baseline.ms_per_kb),
    note: `${results.pii_sample.bytes} B sample; baseline: one trivial regex pass`,
  }),
  row('redact all detectors, plain screen text: per KB', results.plain_text.ms_per_kb, 'ms', {
    baseline: results.plain_text_baseline.ms_per_kb,
    ratio: round(results.plain_text.ms_per_kb / results.plain_text_baseline.ms_per_kb),
    note: `${results.plain_text.bytes} B text`,
  }),
];
saveResults('redact', results);
console.log(JSON.stringify(results, null, 2));
