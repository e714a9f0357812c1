// The benchmark suite: runs each benchmark as a child `node` process in sequence (each starts its
// own daemon and baseline and writes its figures into this run's bench/results/run-<time>.json),
// merges them into bench/results/latest.json and prints one table. Benchmarks report: nothing
// here asserts or fails on a missed target.
//   npm run bench                               every default benchmark, full size
//   npm run bench -- --quick                    a short smoke run of each
//   npm run bench -- --only ingest,listing      a selection (any name below, optional ones too)
//   npm run bench -- --all                      the default ones plus the optional ones (materialize, ocr, ocr-screen)
//   npm run bench -- --markdown                 print the table as Markdown (for docs/performance.md)
//   node bench/run.mjs --table                  only print the table of the last results
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT, machine, row } from './lib.mjs';

const RESULTS = join(ROOT, 'bench', 'results', 'latest.json');

const BENCHES = [
  { name: 'ingest', file: 'ingest.mjs', key: 'ingest' },
  { name: 'large-uploads', file: 'large-uploads.mjs', key: 'large_uploads' },
  { name: 'listing', file: 'listing.mjs', key: 'listing' },
  { name: 'list-all', file: 'list-all.mjs', key: 'list_all' },
  { name: 'idle', file: 'idle.mjs', key: 'idle' },
  { name: 'token-timing', file: 'token-timing.mjs', key: 'token_timing', quickArgs: ['--rounds', '200'] },
  // Full-text search over 1,000,000 observations (about 15 minutes on 2 cores, most of it seeding and indexing).
  { name: 'search', file: 'search.mjs', key: 'search', quickArgs: ['--rows', '50000', '--requests', '300'] },
  { name: 'redact', file: 'redact.mjs', key: 'redact' },
  // The sweep's own default is 100,000 rows; 20,000 keeps the whole suite within a few minutes.
  {
    name: 'sweep',
    file: 'sweep.mjs',
    key: 'sweep',
    args: ['--rows', '20000'],
    quickArgs: ['--rows', '5000', '--quiet-seconds', '3'],
    summarize: sweepRows,
  },
  {
    name: 'materialize',
    file: 'materialize.mjs',
    key: 'materialize',
    optional: true,
    quickArgs: ['--rows', '50000', '--iterations', '200', '--http', '100'],
    summarize: materializeRows,
  },
  // Encryption at rest on vs off: ingest ratio and the OCR path (uploads to OCR'd text).
  { name: 'encryption', file: 'encryption.mjs', key: 'encryption', quickArgs: ['--images', '2'] },
  // Erasure on the upload path: uploads that each evict (and erase) one observation vs none.
  { name: 'erasure', file: 'erasure.mjs', key: 'erasure' },
  // OCR measures the derivation worker pool, not the daemon's HTTP paths; it prints its result
  // (and writes its own file) rather than merging into latest.json, so it is captured here.
  { name: 'ocr', file: 'ocr.mjs', key: 'ocr', optional: true, quickArgs: ['--images', '4'], captureJson: true, summarize: ocrRows },
  // A Chromium-rendered screen capture sequence at 1 frame/s through a real daemon, every frame
  // OCR'd whole (baseline) and incrementally, in the same run (needs /usr/bin/chromium; ~10 min).
  { name: 'ocr-screen', file: 'ocr-screen.mjs', key: 'ocr_screen', optional: true },
];

const USAGE = `usage: node bench/run.mjs [--quick] [--only a,b] [--all] [--markdown] [--table]
benchmarks: ${BENCHES.map((b) => b.name + (b.optional ? ' (optional)' : '')).join(', ')}`;

function parseFlags(argv) {
  const opts = { quick: false, all: false, markdown: false, tableOnly: false, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') opts.quick = true;
    else if (a === '--all') opts.all = true;
    else if (a === '--markdown') opts.markdown = true;
    else if (a === '--table') opts.tableOnly = true;
    else if (a === '--only') opts.only = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--only=')) opts.only = a.slice(7).split(',').filter(Boolean);
    else if (a === '--help' || a === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown flag ${a}\n${USAGE}`);
      process.exit(2);
    }
  }
  const unknown = (opts.only ?? []).filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length) {
    console.error(`unknown benchmark ${unknown.join(', ')}\n${USAGE}`);
    process.exit(2);
  }
  return opts;
}

/** The commit measured, and whether src/ had uncommitted changes (figures then describe those too). */
function gitState() {
  const git = (...a) => execFileSync('git', a, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      src_uncommitted_changes: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length,
    };
  } catch {
    return null;
  }
}

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/** Runs one benchmark; its progress goes to stderr, its JSON (stdout) is kept only when captured. */
function runChild(bench, quick, resultsFile) {
  const args = [
    fileURLToPath(new URL(bench.file, import.meta.url)),
    ...(quick ? ['--quick', ...(bench.quickArgs ?? [])] : (bench.args ?? [])),
  ];
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, OBSERVD_BENCH_RESULTS: resultsFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('exit', (code, signal) =>
      resolve({ code: code ?? signal, seconds: Math.round((performance.now() - started) / 100) / 10, stdout: out }),
    );
  });
}

/** Rows for bench/sweep.mjs, whose results predate the `summary` convention. */
function sweepRows(r) {
  const rows = [];
  if (r.sweep)
    rows.push(
      row(`sweep: ${r.rows.toLocaleString('en')} expired rows purged`, r.sweep.rows_per_s, 'rows/s', { note: `${r.sweep.duration_ms} ms` }),
    );
  else rows.push(row('sweep: no sweep report seen', null, ''));
  if (r.uploads_during_sweep && r.quiet_uploads) {
    rows.push(
      row('sweep: upload p99 during sweep (baseline: no sweep)', r.uploads_during_sweep.p99_ms, 'ms', {
        baseline: r.quiet_uploads.p99_ms,
        ratio: r.p99_ratio_sweep_vs_quiet ?? null,
      }),
    );
  }
  return rows;
}

/** Rows for bench/materialize.mjs. */
function materializeRows(r) {
  const label = { resolve_and_compose: 'resolve + compose', materialize: 'whole' };
  const rows = ['resolve_and_compose', 'materialize'].map((k) =>
    row(`materialize ${label[k]} (${r.rows.toLocaleString('en')} rows, in-process): p50 / p99`, `${r[k].p50_ms} / ${r[k].p99_ms}`, 'ms', {
      target: r.target,
      met: r.target_met?.[k] ?? null,
    }),
  );
  if (r.http_sequential)
    rows.push(row('materialize over HTTP, sequential: p50 / p99', `${r.http_sequential.p50_ms} / ${r.http_sequential.p99_ms}`, 'ms'));
  return rows;
}

/** Rows for bench/ocr.mjs. */
function ocrRows(r) {
  return r.tesseract_js.map((x) => {
    const cli = r.tesseract_cli?.runs?.find((c) => c.processes === x.workers);
    return row(`ocr 1080p, ${x.workers} worker(s): images/s`, x.images_per_s, '/s', {
      ...(cli ? { baseline: cli.images_per_s, ratio: cli.js_over_cli_throughput } : {}),
      note: `p50 ${x.p50_latency_ms} ms${cli ? '; baseline: tesseract CLI' : ''}`,
    });
  });
}

function rowsOf(bench, results) {
  const r = results[bench.key];
  if (!r) return [];
  try {
    return bench.summarize ? bench.summarize(r) : (r.summary ?? []);
  } catch (e) {
    return [row(`${bench.name}: results not readable (${e.message})`, null, '')];
  }
}

const fmt = (v) => (v === null || v === undefined ? '' : String(v));
const metText = (m) => (m === true ? 'met' : m === false ? 'MISSED' : '');

function table(benches, results, markdown) {
  const header = ['metric', 'observd', 'unit', 'baseline', 'ratio', 'target', 'result', 'note'];
  const lines = [];
  for (const b of benches) {
    const at = results[b.key]?.measured_at ? ` (${results[b.key].measured_at}${results[b.key].quick ? ', quick' : ''})` : '';
    for (const r of rowsOf(b, results)) {
      lines.push([r.metric, fmt(r.value), r.unit, fmt(r.baseline), fmt(r.ratio), fmt(r.target), metText(r.met), r.note ?? '']);
    }
    if (!results[b.key]) lines.push([`${b.name}: no results`, '', '', '', '', '', '', '']);
    else if (at && !markdown) lines.push([`  ${b.name} measured at${at}`, '', '', '', '', '', '', '']);
  }
  if (markdown) {
    const esc = (s) => String(s).replace(/\|/g, '\\|');
    return [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...lines.map((l) => `| ${l.map(esc).join(' | ')} |`),
    ].join('\n');
  }
  const widths = header.map((h, i) => Math.min(80, Math.max(h.length, ...lines.map((l) => l[i].length))));
  const line = (cells) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(line)].join('\n');
}

const opts = parseFlags(process.argv.slice(2));
const selected = BENCHES.filter((b) => (opts.only ? opts.only.includes(b.name) : opts.all || !b.optional));

let results;
let resultsFile = RESULTS;
if (opts.tableOnly) {
  results = readJson(RESULTS);
} else {
  // This run's figures go to their own file (children write there too), then merge into latest.json.
  resultsFile = join(ROOT, 'bench', 'results', `run-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const run = { started_at: new Date().toISOString(), quick: opts.quick, git: gitState(), benches: {} };
  results = { machine: machine(), run };
  for (const bench of selected) {
    console.error(`\n=== ${bench.name}${opts.quick ? ' (quick)' : ''} ===`);
    const r = await runChild(bench, opts.quick, resultsFile);
    run.benches[bench.name] = { exit_code: r.code, seconds: r.seconds };
    let figures = readJson(resultsFile)[bench.key];
    if (bench.captureJson) {
      try {
        figures = JSON.parse(r.stdout);
      } catch {
        run.benches[bench.name].note = 'printed no JSON';
      }
    }
    if (figures && r.code === 0) results[bench.key] = { ...figures, measured_at: new Date().toISOString(), quick: opts.quick };
    else console.error(`${bench.name} exited with ${r.code}; no figures from it in this run`);
    writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  }
  run.finished_at = new Date().toISOString();
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  const latest = { ...readJson(RESULTS), ...results, updated_at: run.finished_at };
  writeFileSync(RESULTS, `${JSON.stringify(latest, null, 2)}\n`);
}

const m = results.machine ?? machine();
console.log(
  `\nobservd benchmarks — ${m.cpus} x ${m.cpu_model}, ${m.mem_gib} GiB, node ${m.node}${opts.quick ? ' — QUICK run, not representative' : ''}`,
);
if (results.run && !opts.tableOnly) {
  const g = results.run.git;
  if (g) console.log(`commit ${g.commit}${g.src_uncommitted_changes ? ` + ${g.src_uncommitted_changes} uncommitted file(s) in src/` : ''}`);
  console.log(
    Object.entries(results.run.benches)
      .map(([n, b]) => `${n}: ${b.seconds}s${b.exit_code !== 0 ? ` (exit ${b.exit_code})` : ''}`)
      .join(', '),
  );
}
console.log(table(selected, results, opts.markdown));
console.log(
  `\nfull figures: ${relative(ROOT, resultsFile)}${resultsFile === RESULTS ? '' : ' (also merged into bench/results/latest.json)'}`,
);
