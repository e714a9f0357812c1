// The cost of encryption at rest, measured in one run against two daemons started the same way,
// one plain and one with OBSERVD_ENCRYPTION_KEY_FILE (SQLCipher database, AES-256-GCM blobs):
//   - ingest: closed-loop JSON uploads (64 KiB and 1 MiB PNGs), phases alternated plain,
//     encrypted, encrypted, plain so a noisy neighbour hits both alike; ratio = encrypted / plain;
//   - OCR path: screenshots uploaded to a source with auto_derive canonical_text, timed until
//     every observation's processing_status is completed (the OCR reads the blob back, decrypted,
//     and stores its text, encrypted); ratio = encrypted / plain wall time.
//   node bench/encryption.mjs [--quick] [--uploaders 16] [--seconds 6] [--images 6]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { createSource, flag, mergePhases, numArg, round, row, saveResults, startDaemon, uploadPhase } from './lib.mjs';
import { jsonBodies, pngOfSize } from './payload.mjs';

const QUICK = flag('quick');
const UPLOADERS = numArg('uploaders', QUICK ? 8 : 16);
const SECONDS = numArg('seconds', QUICK ? 2 : 6);
const IMAGES = numArg('images', QUICK ? 2 : 6);
const TOKEN = 'bench-encryption-upload-token';
const KiB = 1024;

const scratch = mkdtempSync(join(tmpdir(), 'observd-bench-enc-'));
const keyFile = join(scratch, 'key');
writeFileSync(keyFile, randomBytes(32));

async function daemons() {
  const plainDir = join(scratch, `plain-${Date.now()}`);
  const encDir = join(scratch, `enc-${Date.now()}`);
  return {
    plain: await startDaemon(plainDir),
    encrypted: await startDaemon(encDir, { OBSERVD_ENCRYPTION_KEY_FILE: keyFile }),
  };
}

const phase = (server, bodies, seconds) =>
  uploadPhase({ url: server.url, sourceId: 'ingest', token: TOKEN, bodies, workers: UPLOADERS, seconds });

async function ingest(bytes) {
  const servers = await daemons();
  for (const s of Object.values(servers)) await createSource(s.url, 'ingest', TOKEN);
  const bodies = jsonBodies(pngOfSize(bytes), UPLOADERS, `enc-${bytes}-${process.pid}`);
  for (const name of ['plain', 'encrypted']) await phase(servers[name], bodies, QUICK ? 0.5 : 1);
  const phases = { plain: [], encrypted: [] };
  for (const name of ['plain', 'encrypted', 'encrypted', 'plain']) {
    console.error(`encryption ingest ${bytes / KiB} KiB: ${name} for ${SECONDS / 2}s`);
    phases[name].push(await phase(servers[name], bodies, SECONDS / 2));
  }
  for (const s of Object.values(servers)) await s.stop();
  const out = { payload_bytes: bytes, uploaders: UPLOADERS };
  for (const name of ['plain', 'encrypted']) out[name] = mergePhases(phases[name]);
  out.throughput_ratio = round(out.encrypted.ok_rps / out.plain.ok_rps, 3);
  return out;
}

/** A 1920x1080 screenshot-like PNG with lines of text. */
function screenshot(seed) {
  const c = createCanvas(1920, 1080);
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#f5f6f8';
  ctx.fillRect(0, 0, 1920, 1080);
  ctx.fillStyle = '#1d2330';
  ctx.font = '24px DejaVu Sans';
  for (let line = 0; line < 20; line++)
    ctx.fillText(`${seed}.${line} invoice review deploy status queue latency budget`, 80, 80 + line * 46);
  return c.toBuffer('image/png');
}

async function ocr() {
  const images = Array.from({ length: IMAGES }, (_, i) => screenshot(i));
  const servers = await daemons();
  // Warm each OCR pool (its worker starts on first use) before timing.
  const warm = [screenshot(999)];
  const secs = { plain: [], encrypted: [] };
  for (const name of ['plain', 'encrypted']) await ocrPathFresh(servers[name], warm, `warm-${name}`);
  for (const name of ['plain', 'encrypted']) {
    console.error(`encryption ocr: ${name}, ${IMAGES} images`);
    // Distinct bytes per daemon (trailing bytes a PNG decoder ignores), so nothing is a cache hit.
    const fresh = images.map((b, i) => Buffer.concat([b, Buffer.from(`${name}${i}`)]));
    secs[name].push(await ocrPathFresh(servers[name], fresh, name));
  }
  for (const s of Object.values(servers)) await s.stop();
  const plain = secs.plain[0];
  const encrypted = secs.encrypted[0];
  return { images: IMAGES, plain_seconds: plain, encrypted_seconds: encrypted, time_ratio: round(encrypted / plain, 3) };
}

let ocrSource = 0;
/** Uploads `images` to a new auto-OCR source and waits until every one has its text; seconds. */
async function ocrPathFresh(server, images, tag) {
  const id = `ocr-${tag}-${++ocrSource}`;
  const url = server.url;
  await createSource(url, id, TOKEN, { auto_derive: ['canonical_text'] });
  const started = performance.now();
  const ids = [];
  for (let i = 0; i < images.length; i++) {
    const res = await fetch(`${url}/v1/observation-sources/${id}/observations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        upload: { file_name: `s${i}.png`, media_type: 'image/png', content_base64: images[i].toString('base64') },
        idempotency_key: `ocr-${i}`,
      }),
    });
    if (res.status !== 201) throw new Error(`ocr upload: ${res.status} ${await res.text()}`);
    ids.push((await res.json()).observation_id);
  }
  for (;;) {
    const states = await Promise.all(ids.map(async (o) => (await (await fetch(`${url}/v1/observations/${o}`)).json()).processing_status));
    if (states.every((s) => s === 'completed' || s === 'failed')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return round((performance.now() - started) / 1000, 3);
}

try {
  const results = { quick: QUICK, ingest: [], ocr: null };
  for (const bytes of [64 * KiB, 1024 * KiB]) results.ingest.push(await ingest(bytes));
  results.ocr = await ocr();
  results.summary = [
    ...results.ingest.map((r) =>
      row(`encryption: ingest ${r.payload_bytes / KiB} KiB JSON, encrypted (baseline: plain)`, r.encrypted.ok_rps, 'req/s', {
        baseline: r.plain.ok_rps,
        ratio: r.throughput_ratio,
        note: `p99 ${r.encrypted.p99_ms} vs ${r.plain.p99_ms} ms`,
      }),
    ),
    row(
      `encryption: OCR path, ${results.ocr.images} 1080p screenshots uploaded to OCR'd text, encrypted (baseline: plain)`,
      results.ocr.encrypted_seconds,
      's',
      {
        baseline: results.ocr.plain_seconds,
        ratio: results.ocr.time_ratio,
      },
    ),
  ];
  saveResults('encryption', results);
  console.log(JSON.stringify(results, null, 2));
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
