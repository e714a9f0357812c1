// Memory under large uploads: 16 concurrent uploads of just under the default 20 MiB
// max_raw_bytes, as multipart and as JSON/base64, each against a fresh daemon; the daemon's peak
// RSS (VmHWM) and whether every upload succeeded. Targets: peak RSS <= 300 MiB multipart,
// <= 600 MiB JSON. The bare baseline server takes the same uploads, for context.
// The bodies are built once here (16 buffers per shape: ~320 MiB multipart, ~450 MiB JSON in
// this process, which is not the one measured).
//   node bench/large-uploads.mjs [--quick] [--rounds 3] [--concurrency 16]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agent, createSource, flag, load, numArg, round, row, rssOf, saveResults, startBaseline, startDaemon } from './lib.mjs';
import { jsonBodies, multipartBodies, pngOfSize } from './payload.mjs';

const QUICK = flag('quick');
const CONCURRENCY = numArg('concurrency', 16);
const ROUNDS = numArg('rounds', QUICK ? 1 : 3);
const MiB = 1024 * 1024;
const SIZE = 20 * MiB - 1024;
const TOKEN = 'bench-large-upload-token';
const TARGETS = { multipart: 300, json: 600 };

let seq = 0;

/** `ROUNDS` rounds of `CONCURRENCY` simultaneous uploads; RSS after each round and the peak at the end. */
async function measure(server, bodies, sourceId) {
  const headers = sourceId ? { authorization: `Bearer ${TOKEN}` } : {};
  const idle = rssOf(server.pid);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const ag = agent(CONCURRENCY);
    const res = await load({
      workers: CONCURRENCY,
      total: CONCURRENCY,
      make: (_i, w) => {
        const body = bodies.next(w, ++seq);
        return {
          url: `${server.url}/v1/observation-sources/${sourceId ?? 'baseline'}/observations`,
          method: 'POST',
          agent: ag,
          headers: { ...headers, 'content-type': bodies.contentType, 'content-length': body.length },
          body,
        };
      },
    });
    ag.destroy();
    rounds.push({ ...res, mib_per_s: round((res.ok * SIZE) / MiB / res.seconds), rss_after_mib: rssOf(server.pid).rss_mib });
  }
  await new Promise((r) => setTimeout(r, 1000));
  const end = rssOf(server.pid);
  const uploads = rounds.reduce((n, r) => n + r.requests, 0);
  const ok = rounds.reduce((n, r) => n + r.ok, 0);
  return {
    uploads,
    ok,
    all_succeeded: ok === uploads,
    idle_rss_mib: idle.rss_mib,
    peak_rss_mib: end.peak_rss_mib,
    rss_1s_after_mib: end.rss_mib,
    rounds,
  };
}

async function shape(name) {
  console.error(`large-uploads ${name}: building ${CONCURRENCY} bodies of ${SIZE} bytes`);
  const png = pngOfSize(SIZE);
  const bodies = (name === 'json' ? jsonBodies : multipartBodies)(png, CONCURRENCY, `large-${name}-${process.pid}`);
  const out = { body_bytes: bodies.bytes };

  const dataDir = mkdtempSync(join(tmpdir(), 'observd-bench-large-'));
  const d = await startDaemon(dataDir);
  await createSource(d.url, 'large', TOKEN);
  console.error(`large-uploads ${name}: observd, ${ROUNDS} x ${CONCURRENCY} uploads`);
  out.observd = await measure(d, bodies, 'large');
  const problems = d.lines.filter((l) => l.level >= 40).slice(0, 5);
  if (problems.length) out.observd_warnings = problems;
  await d.stop();
  rmSync(dataDir, { recursive: true, force: true });

  const baseDir = mkdtempSync(join(tmpdir(), 'observd-bench-large-baseline-'));
  const b = await startBaseline(baseDir);
  console.error(`large-uploads ${name}: baseline, ${ROUNDS} x ${CONCURRENCY} uploads`);
  out.baseline = await measure(b, bodies);
  await b.stop();
  rmSync(baseDir, { recursive: true, force: true });
  out.peak_rss_ratio = round(out.observd.peak_rss_mib / out.baseline.peak_rss_mib);
  console.error(
    `large-uploads ${name}: observd peak ${out.observd.peak_rss_mib} MiB (${out.observd.ok}/${out.observd.uploads} ok) | baseline peak ${out.baseline.peak_rss_mib} MiB`,
  );
  return out;
}

const results = { upload_bytes: SIZE, concurrency: CONCURRENCY, rounds: ROUNDS, quick: QUICK, summary: [] };
for (const name of ['multipart', 'json']) {
  const r = (results[name] = await shape(name));
  results.summary.push(
    row(`large uploads ${name} (${CONCURRENCY} x 20 MiB): peak RSS`, r.observd.peak_rss_mib, 'MiB', {
      baseline: r.baseline.peak_rss_mib,
      ratio: r.peak_rss_ratio,
      target: `<= ${TARGETS[name]} MiB`,
      met: r.observd.peak_rss_mib <= TARGETS[name],
    }),
    row(`large uploads ${name}: succeeded`, `${r.observd.ok}/${r.observd.uploads}`, 'uploads', {
      baseline: `${r.baseline.ok}/${r.baseline.uploads}`,
      target: 'all',
      met: r.observd.all_succeeded,
    }),
  );
}
saveResults('large_uploads', results);
console.log(JSON.stringify(results, null, 2));
