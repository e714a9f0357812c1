// The cost of erasing on the upload path: closed-loop 64 KiB JSON uploads into a source at its
// quota (evict_oldest with purge_raw_on_retention, so every upload evicts and erases one
// observation: rows scrubbed with secure_delete, one WAL checkpoint+truncate per group commit)
// against a source that never evicts, on the same daemon, phases alternated; ratio = evicting /
// not evicting.   node bench/erasure.mjs [--quick] [--uploaders 16] [--seconds 6]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSource, flag, mergePhases, numArg, round, row, saveResults, startDaemon, uploadPhase } from './lib.mjs';
import { jsonBodies, pngOfSize } from './payload.mjs';

const QUICK = flag('quick');
const UPLOADERS = numArg('uploaders', QUICK ? 8 : 16);
const SECONDS = numArg('seconds', QUICK ? 2 : 6);
const TOKEN = 'bench-erasure-upload-token';

const phase = (url, sourceId, bodies, seconds) => uploadPhase({ url, sourceId, token: TOKEN, bodies, workers: UPLOADERS, seconds });

const dir = mkdtempSync(join(tmpdir(), 'observd-bench-erasure-'));
try {
  const d = await startDaemon(dir);
  await createSource(d.url, 'keep', TOKEN);
  await createSource(d.url, 'evict', TOKEN, { max_active_observations: 50, quota_policy: 'evict_oldest', purge_raw_on_retention: true });
  const bodies = jsonBodies(pngOfSize(64 * 1024), UPLOADERS, `erasure-${process.pid}`);
  // Fill the evicting source to its quota first, so every timed upload evicts.
  await phase(d.url, 'evict', bodies, QUICK ? 0.5 : 1);
  await phase(d.url, 'keep', bodies, QUICK ? 0.5 : 1);
  const phases = { keep: [], evict: [] };
  for (const name of ['keep', 'evict', 'evict', 'keep']) {
    console.error(`erasure: ${name} for ${SECONDS / 2}s`);
    phases[name].push(await phase(d.url, name, bodies, SECONDS / 2));
  }
  await d.stop();
  const out = { quick: QUICK, uploaders: UPLOADERS, payload_bytes: 64 * 1024 };
  for (const name of ['keep', 'evict']) out[name] = mergePhases(phases[name]);
  out.throughput_ratio = round(out.evict.ok_rps / out.keep.ok_rps, 3);
  out.summary = [
    row('erasure: 64 KiB uploads that each evict and erase one (baseline: no eviction)', out.evict.ok_rps, 'req/s', {
      baseline: out.keep.ok_rps,
      ratio: out.throughput_ratio,
      note: `p99 ${out.evict.p99_ms} vs ${out.keep.p99_ms} ms`,
    }),
  ];
  saveResults('erasure', out);
  console.log(JSON.stringify(out, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
