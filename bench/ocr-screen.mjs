// Screen capture OCR against a real daemon: a realistic 1 frame/s capture sequence (bench/screen-frames.mjs,
// rendered with the system Chromium, ground truth from the DOM) uploaded to a screen_snapshot
// source with auto_derive ["canonical_text"], once with every frame OCR'd whole (the baseline,
// `derivations.screen_ocr.incremental = false`) and once the incremental way (the default), in the
// same run. Measures the daemon's CPU seconds (process_cpu_seconds_total from /metrics, sampled
// every second), the derivation backlog (observd_derivations_unsettled, sampled every 250 ms), the
// time to drain after the last frame, and word recall/precision against the ground truth, overall
// and per scenario. Afterwards the idle daemon is scraped as often for --probe-seconds to report what
// the benchmark's own /metrics scraping costs (probe_cpu_percent; cpu_percent_net_of_probe is the
// figure without it). Reports; never asserts. After `npm run build`:
//   node bench/ocr-screen.mjs [--frames 120] [--fps 1] [--modes full,incremental] [--quick] [--probe-seconds 20]
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { arg, createSource, flag, round, row, saveResults, startDaemon } from './lib.mjs';
import { screenFrames } from './screen-frames.mjs';

const QUICK = flag('quick');
const FRAMES = Number(arg('frames', QUICK ? 40 : 120));
const FPS = Number(arg('fps', 1));
const MODES = arg('modes', 'full,incremental').split(',');
const WORKERS = arg('ocr-workers', 'auto');
const PROBE_SECONDS = Number(arg('probe-seconds', 20));
const TOKEN = 'bench-screen-token-0123456789abcdef';

/** Lower-cased words with surrounding punctuation removed. */
const words = (s) =>
  s
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ''))
    .filter(Boolean);

/** Multiset word matches between the truth and the OCR text. */
function match(truth, got) {
  const bag = new Map();
  for (const w of got) bag.set(w, (bag.get(w) ?? 0) + 1);
  let hits = 0;
  for (const w of truth) {
    const n = bag.get(w);
    if (n) {
      hits++;
      bag.set(w, n - 1);
    }
  }
  return { hits, truth: truth.length, got: got.length };
}

/** Several metrics from one scrape: the first series of each, 0 when absent. */
async function several(url, names) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+?)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (m && names.includes(m[1]) && !(m[1] in out)) out[m[1]] = Number(m[3]);
  }
  for (const n of names) out[n] ??= 0;
  return out;
}
/** One metric's first series, 0 when absent. */
const one = async (url, name) => (await several(url, [name]))[name];

/**
 * The benchmark's own share of the daemon's CPU: the idle daemon scraped as often as during the
 * capture (the backlog sampler every 250 ms and one sample a frame), over `seconds`.
 */
async function probeCost(url, seconds) {
  const start = await one(url, 'process_cpu_seconds_total');
  const t0 = performance.now();
  let next = t0;
  let k = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await one(url, 'observd_derivations_unsettled');
    if (++k % Math.round(4 / FPS) === 0) await several(url, ['process_cpu_seconds_total', 'observd_derivations_unsettled']);
    next += 250;
    await sleep(next - performance.now());
  }
  const cpu = (await one(url, 'process_cpu_seconds_total')) - start;
  return (100 * cpu) / ((performance.now() - t0) / 1000);
}

async function runMode(mode, seq) {
  const dataDir = mkdtempSync(join(tmpdir(), `observd-bench-ocrscreen-${mode}-`));
  const configFile = join(dataDir, 'config.toml');
  const workers = WORKERS === 'auto' ? '"auto"' : WORKERS;
  writeFileSync(configFile, `[derivations]\nocr_workers = ${workers}\n[derivations.screen_ocr]\nincremental = ${mode !== 'full'}\n`);
  const d = await startDaemon(join(dataDir, 'data'), {}, ['--config', configFile]);
  try {
    await createSource(d.url, 'screen', TOKEN, { auto_derive: ['canonical_text'] });
    // Warm the OCR pool outside the measurement (worker start-up is a one-off cost): an unrelated stream.
    const warm = readFileSync(join(seq.dir, seq.frames[0].file));
    await upload(d.url, warm, 'warm-up', 'warm-up');
    await drain(d.url, 600_000);

    const cpuStart = await one(d.url, 'process_cpu_seconds_total');
    const samples = [];
    let maxBacklog = 0;
    let sampling = true;
    const backlogSampler = (async () => {
      while (sampling) {
        maxBacklog = Math.max(maxBacklog, await one(d.url, 'observd_derivations_unsettled'));
        await sleep(250);
      }
    })();
    const ids = [];
    const t0 = performance.now();
    for (let i = 0; i < seq.frames.length; i++) {
      const due = t0 + (i * 1000) / FPS;
      await sleep(due - performance.now());
      const bytes = readFileSync(join(seq.dir, seq.frames[i].file));
      ids.push((await upload(d.url, bytes, `frame-${i}`, 'main')).observation_id);
      const m = await several(d.url, ['process_cpu_seconds_total', 'observd_derivations_unsettled']);
      samples.push({
        t: round((performance.now() - t0) / 1000),
        frame: i,
        cpu: round(m.process_cpu_seconds_total - cpuStart, 3),
        backlog: m.observd_derivations_unsettled,
      });
    }
    await sleep(t0 + (seq.frames.length * 1000) / FPS - performance.now());
    const captureSeconds = (performance.now() - t0) / 1000;
    const cpuCapture = (await one(d.url, 'process_cpu_seconds_total')) - cpuStart;
    const drainStarted = performance.now();
    await drain(d.url, 3_600_000);
    const drainSeconds = (performance.now() - drainStarted) / 1000;
    sampling = false;
    await backlogSampler;
    const cpuTotal = (await one(d.url, 'process_cpu_seconds_total')) - cpuStart;
    const probePercent = await probeCost(d.url, PROBE_SECONDS);

    // Text and provenance of every frame.
    const perScenario = {};
    const modes = {};
    const frames = [];
    for (let i = 0; i < ids.length; i++) {
      const r = await fetch(`${d.url}/v1/derivations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ profile: 'canonical_text', subject: { type: 'observation', observation_id: ids[i] } }),
      });
      const view = await r.json();
      const text = view.result_asset_id ? await (await fetch(`${d.url}/v1/assets/${view.result_asset_id}/content`)).text() : '';
      const f = seq.frames[i];
      const m = match(words(f.text), words(text));
      const s = (perScenario[f.scenario] ??= { frames: 0, hits: 0, truth: 0, got: 0, cpu_seconds: 0 });
      s.frames++;
      s.hits += m.hits;
      s.truth += m.truth;
      s.got += m.got;
      const how = view.text_from?.mode ?? 'full';
      modes[how] = (modes[how] ?? 0) + 1;
      frames.push({
        i,
        scenario: f.scenario,
        status: view.status,
        text_from: view.text_from ?? null,
        recall: round(m.hits / Math.max(1, m.truth), 3),
      });
    }
    // CPU by scenario: each second's CPU goes to the scenario of the frame uploaded in it.
    for (let k = 0; k < samples.length; k++) {
      const prev = k ? samples[k - 1].cpu : 0;
      perScenario[seq.frames[samples[k].frame].scenario].cpu_seconds += samples[k].cpu - prev;
    }
    const total = Object.values(perScenario).reduce((a, s) => ({ hits: a.hits + s.hits, truth: a.truth + s.truth, got: a.got + s.got }), {
      hits: 0,
      truth: 0,
      got: 0,
    });
    const scenarios = Object.fromEntries(
      Object.entries(perScenario).map(([k, s]) => [
        k,
        {
          frames: s.frames,
          recall: round(s.hits / s.truth, 4),
          precision: round(s.hits / Math.max(1, s.got), 4),
          cpu_percent_while_captured: round((100 * s.cpu_seconds) / (s.frames / FPS), 1),
        },
      ]),
    );
    const ocrRuns = await one(d.url, 'observd_ocr_recognitions_total');
    return {
      mode,
      frames: ids.length,
      capture_seconds: round(captureSeconds, 1),
      drain_seconds_after_last_frame: round(drainSeconds, 1),
      cpu_seconds_during_capture: round(cpuCapture, 2),
      cpu_seconds_total: round(cpuTotal, 2),
      // What it takes to keep up: all the CPU the sequence cost, over the time it took to capture.
      cpu_percent_of_one_core: round((100 * cpuTotal) / captureSeconds, 1),
      // What the benchmark's own /metrics scraping costs the daemon (measured idle afterwards), and the figure without it.
      probe_cpu_percent: round(probePercent, 1),
      cpu_percent_net_of_probe: round((100 * cpuTotal) / captureSeconds - probePercent, 1),
      max_backlog: maxBacklog,
      backlog_over_time: samples.map((s) => s.backlog),
      ocr_recognitions: ocrRuns,
      text_from: modes,
      recall: round(total.hits / total.truth, 4),
      precision: round(total.hits / Math.max(1, total.got), 4),
      scenarios,
      frames_detail: frames,
    };
  } finally {
    await d.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function upload(url, bytes, key, stream) {
  const r = await fetch(`${url}/v1/observation-sources/screen/observations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      upload: { file_name: 'frame.png', media_type: 'image/png', content_base64: bytes.toString('base64') },
      idempotency_key: key,
      stream_id: stream,
    }),
  });
  if (r.status !== 201) throw new Error(`upload ${key}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function drain(url, ms) {
  const end = Date.now() + ms;
  while ((await one(url, 'observd_derivations_unsettled')) > 0) {
    if (Date.now() > end) throw new Error('derivations did not drain in time');
    await sleep(100);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const seq = await screenFrames({ frames: FRAMES });
console.error(`ocr-screen: ${seq.frames.length} frames ${seq.cached ? 'from the cache' : 'rendered'} in ${seq.dir}`);
const results = { frames: seq.frames.length, fps: FPS, ocr_workers: WORKERS, runs: {} };
for (const mode of MODES) {
  console.error(`ocr-screen: ${mode} OCR, ${seq.frames.length} frames at ${FPS}/s ...`);
  results.runs[mode] = await runMode(mode, seq);
  const r = results.runs[mode];
  console.error(
    `ocr-screen: ${mode}: ${r.cpu_percent_of_one_core}% of a core (${r.cpu_percent_net_of_probe}% without the probe's ${r.probe_cpu_percent}%), max backlog ${r.max_backlog}, recall ${r.recall}, precision ${r.precision}, drained ${r.drain_seconds_after_last_frame}s after the last frame`,
  );
}
const full = results.runs.full;
const inc = results.runs.incremental;
const summary = [];
if (inc) {
  summary.push(
    row('ocr screen 1 frame/s: daemon CPU, % of one core', inc.cpu_percent_of_one_core, '%', {
      baseline: full?.cpu_percent_of_one_core,
      ratio: full ? round(inc.cpu_percent_of_one_core / full.cpu_percent_of_one_core, 3) : undefined,
      target: '<= 15%',
      met: inc.cpu_percent_of_one_core <= 15,
      note: `${inc.frames} frames; CPU over capture time incl. drain (${inc.cpu_percent_net_of_probe}% without the benchmark's own /metrics scraping, ${inc.probe_cpu_percent}%); baseline: every frame OCR'd whole`,
    }),
    row('ocr screen: max derivation backlog', inc.max_backlog, 'frames', {
      baseline: full?.max_backlog,
      target: '<= 3',
      met: inc.max_backlog <= 3,
    }),
    row('ocr screen: word recall vs ground truth', inc.recall, '', {
      baseline: full?.recall,
      ratio: full ? round(inc.recall / full.recall, 3) : undefined,
      target: '>= 95% of full OCR',
      met: full ? inc.recall >= 0.95 * full.recall : undefined,
    }),
    row('ocr screen: word precision vs ground truth', inc.precision, '', {
      baseline: full?.precision,
      ratio: full ? round(inc.precision / full.precision, 3) : undefined,
    }),
  );
  for (const [k, s] of Object.entries(inc.scenarios)) {
    const b = full?.scenarios[k];
    summary.push(
      row(`ocr screen, ${k} (${s.frames} frames): recall / precision`, `${s.recall} / ${s.precision}`, '', {
        baseline: b ? `${b.recall} / ${b.precision}` : undefined,
        note: `CPU while captured ${s.cpu_percent_while_captured}%${b ? ` (baseline ${b.cpu_percent_while_captured}%)` : ''}`,
      }),
    );
  }
}
results.summary = summary;
saveResults('ocr_screen', results);
const brief = {
  ...results,
  runs: Object.fromEntries(Object.entries(results.runs).map(([k, r]) => [k, { ...r, frames_detail: undefined }])),
};
console.log(JSON.stringify(brief, null, 2));
