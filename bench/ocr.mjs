// OCR throughput and latency of the in-process tesseract.js pool on 1920x1080 screenshots with
// text, for 1 and 2 workers; when a `tesseract` CLI is on PATH, the same images through it too.
// Not part of the tests. Run after `npm run build`:  node bench/ocr.mjs [--images N]
// Prints JSON and writes it to bench/results/ocr-<timestamp>.json.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCanvas } from '@napi-rs/canvas';
import { OcrPool } from '../dist/derivations/ocr.js';
import { numArg } from './lib.mjs';

const run = promisify(execFile);
const IMAGES = numArg('images', 12);
const WORDS = 'observation agent screen capture meeting invoice deploy review status error queue retry latency budget'.split(' ');

/** A screenshot-like frame: a title bar, a sidebar and paragraphs of dark text on light panels. */
function screenshot(seed) {
  const c = createCanvas(1920, 1080);
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#f5f6f8';
  ctx.fillRect(0, 0, 1920, 1080);
  ctx.fillStyle = '#2d3440';
  ctx.fillRect(0, 0, 1920, 48);
  ctx.fillStyle = '#ffffff';
  ctx.font = '22px DejaVu Sans';
  ctx.fillText(`Window ${seed} - observd benchmark`, 24, 32);
  ctx.fillStyle = '#e4e7ec';
  ctx.fillRect(0, 48, 320, 1032);
  ctx.fillStyle = '#1d2330';
  ctx.font = '20px DejaVu Sans';
  for (let i = 0; i < 12; i++) ctx.fillText(`Item ${seed * 12 + i} ${WORDS[(seed + i) % WORDS.length]}`, 24, 100 + i * 40);
  ctx.font = '24px DejaVu Sans';
  for (let line = 0; line < 22; line++) {
    const words = Array.from({ length: 9 }, (_, k) => WORDS[(seed * 7 + line * 3 + k) % WORDS.length]);
    ctx.fillText(`${line + 1}. ${words.join(' ')}`, 360, 100 + line * 42);
  }
  return c.toBuffer('image/png');
}

const p50 = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Closed loop: `clients` callers each run their next image as soon as the last one finishes. */
async function closedLoop(images, clients, recognize) {
  const latencies = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < images.length) {
        const img = images[next++];
        const t = performance.now();
        await recognize(img);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return {
    images: images.length,
    seconds: round(seconds, 2),
    images_per_s: round(images.length / seconds, 2),
    p50_latency_ms: Math.round(p50(latencies)),
  };
}

async function benchPool(images, workers, cacheDir) {
  const pool = new OcrPool({ size: workers, cachePath: cacheDir });
  const t = performance.now();
  // Warm every worker first: cold start is reported separately from steady state.
  await Promise.all(images.slice(0, workers).map((img) => pool.recognize(img)));
  const warmup_ms = Math.round(performance.now() - t);
  const chars = (await pool.recognize(images[0])).length;
  const r = await closedLoop(images, workers, (img) => pool.recognize(img));
  await pool.close();
  return { workers, warmup_ms, chars_first_image: chars, ...r };
}

function tesseractCli() {
  try {
    return execFileSync('tesseract', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]
      .trim();
  } catch {
    return null;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'observd-bench-ocr-'));
try {
  const images = Array.from({ length: IMAGES }, (_, i) => screenshot(i));
  const result = {
    bench: 'ocr',
    at: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    image: { width: 1920, height: 1080, format: 'png', avg_bytes: Math.round(images.reduce((a, b) => a + b.length, 0) / images.length) },
    tesseract_js: [],
    tesseract_cli: null,
  };
  for (const workers of [1, 2]) result.tesseract_js.push(await benchPool(images, workers, join(dir, 'cache')));

  const version = tesseractCli();
  if (version) {
    const files = images.map((img, i) => {
      const f = join(dir, `img-${i}.png`);
      writeFileSync(f, img);
      return f;
    });
    const cli = (f) => run('tesseract', [f, 'stdout', '-l', 'eng'], { maxBuffer: 16 * 1024 * 1024 });
    await cli(files[0]);
    result.tesseract_cli = { version, runs: [] };
    for (const clients of [1, 2]) {
      const r = await closedLoop(files, clients, cli);
      const js = result.tesseract_js.find((x) => x.workers === clients);
      result.tesseract_cli.runs.push({ processes: clients, ...r, js_over_cli_throughput: round(js.images_per_s / r.images_per_s, 2) });
    }
  } else {
    result.tesseract_cli = { version: null, note: 'tesseract CLI not on PATH; no comparison run' };
  }

  const out = JSON.stringify(result, null, 2);
  console.log(out);
  const resultsDir = new URL('./results/', import.meta.url);
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(new URL(`ocr-${result.at.replace(/[:.]/g, '-')}.json`, resultsDir), `${out}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
