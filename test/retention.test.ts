import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { blobPath, createSource, filesUnder, sourceBody } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';

const TOKEN = 'retention-test-token-0001';
const open: TestDaemon[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function daemon(...args: Parameters<typeof startDaemon>) {
  const d = await startDaemon(...args);
  open.push(d);
  return d;
}

async function upload(d: TestDaemon, source: string, bytes: Buffer, key: string, extra: Record<string, unknown> = {}) {
  return d.req(`/v1/observation-sources/${source}/observations`, { method: 'POST', token: TOKEN, json: uploadBody(bytes, key, extra) });
}

async function list(d: TestDaemon, query: string) {
  return (await (await d.req(`/v1/observations?${query}`)).json()) as Array<Record<string, unknown>>;
}

describe('time retention', () => {
  it('expires on receipt time, never extended by a future captured_at_ms', async () => {
    const clock = testClock();
    const d = await daemon({ retention: { sweep_interval_ms: 3_600_000 } }, { now: clock });
    await createSource(d, sourceBody('cam', TOKEN, { retention_seconds: 60 }));
    const future = clock() + 365 * 24 * 3600 * 1000;
    const obs = await (await upload(d, 'cam', makePng(2, 2, 1), 'k1', { captured_at_ms: future })).json();
    expect(obs.expires_at_ms).toBe(obs.received_at_ms + 60_000);

    clock.advance(59_999);
    const { sweepOnce } = await import('../src/retention/sweep.js');
    expect((await sweepOnce(d.daemon.deps)).purged).toBe(0);
    clock.advance(1);
    const report = await sweepOnce(d.daemon.deps);
    expect(report.purged).toBe(1);
    expect(report.blobs_erased).toBe(1);
    expect(existsSync(blobPath(d.dataDir, obs.sha256))).toBe(false);
    const purged = await list(d, 'source_id=cam&include_purged=true');
    expect(purged).toHaveLength(1);
    expect(purged[0].retention_state).toBe('purged');
    expect(await list(d, 'source_id=cam')).toHaveLength(0);
    const src = await (await d.req('/v1/observation-sources/cam')).json();
    expect([src.active_observation_count, src.active_byte_length]).toEqual([0, 0]);
    const audit = await (await d.req('/v1/observation-audit?event=retention_purged_assets')).json();
    expect(audit[0].detail.observations).toBe(1);
  });

  it('the background sweeper alone purges what expired while the daemon was down, and frees the disk', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'observd-ret-'));
    dirs.push(dataDir);
    const clock = testClock();
    const first = await daemon({ retention: { sweep_interval_ms: 3_600_000 } }, { now: clock, dataDir });
    await createSource(first, sourceBody('cam', TOKEN, { retention_seconds: 1 }));
    const shas: string[] = [];
    for (let i = 0; i < 5; i++) shas.push((await (await upload(first, 'cam', makePng(3, 3, i), `k${i}`)).json()).sha256);
    await first.close();
    expect(shas.every((s) => existsSync(blobPath(dataDir, s)))).toBe(true);

    clock.advance(5_000);
    await daemon({ retention: { sweep_interval_ms: 50 } }, { now: clock, dataDir });
    // No requests at all: watch the disk only.
    const deadline = Date.now() + 5_000;
    while (shas.some((s) => existsSync(blobPath(dataDir, s))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(shas.filter((s) => existsSync(blobPath(dataDir, s)))).toEqual([]);
  });

  it('keeps the blobs of purged observations when purge_raw_on_retention is false', async () => {
    const clock = testClock();
    const d = await daemon({ retention: { sweep_interval_ms: 3_600_000 } }, { now: clock });
    await createSource(d, sourceBody('cam', TOKEN, { retention_seconds: 1, purge_raw_on_retention: false }));
    const obs = await (await upload(d, 'cam', makePng(2, 2, 7), 'k')).json();
    clock.advance(2_000);
    const { sweepOnce } = await import('../src/retention/sweep.js');
    expect((await sweepOnce(d.daemon.deps)).purged).toBe(1);
    expect(existsSync(blobPath(d.dataDir, obs.sha256))).toBe(true);
    expect((await d.req(`/v1/assets/${obs.asset_id}/content`)).status).toBe(200);
  });
});

describe('shared content', () => {
  it('a blob shared by two sources survives the purge of one and goes with the second', async () => {
    const clock = testClock();
    const d = await daemon({ retention: { sweep_interval_ms: 3_600_000 } }, { now: clock });
    await createSource(d, sourceBody('a', TOKEN, { retention_seconds: 10 }));
    await createSource(d, sourceBody('b', TOKEN, { retention_seconds: 20 }));
    const png = makePng(5, 5, 42);
    const oa = await (await upload(d, 'a', png, 'x')).json();
    const ob = await (await upload(d, 'b', png, 'x')).json();
    expect(oa.asset_id).toBe(ob.asset_id);
    const { sweepOnce } = await import('../src/retention/sweep.js');
    clock.advance(10_000);
    expect((await sweepOnce(d.daemon.deps)).purged).toBe(1);
    expect(existsSync(blobPath(d.dataDir, oa.sha256))).toBe(true);
    clock.advance(10_000);
    expect((await sweepOnce(d.daemon.deps)).purged).toBe(1);
    expect(existsSync(blobPath(d.dataDir, oa.sha256))).toBe(false);
  });
});

describe('quotas', () => {
  it('evict_oldest purges by receipt order, not by captured_at_ms', async () => {
    const clock = testClock();
    const d = await daemon({}, { now: clock });
    await createSource(d, sourceBody('cam', TOKEN, { max_active_observations: 3 }));
    const captured = [5, 1, 4, 2, 3].map((n) => clock() + n * 1000);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(10);
      ids.push((await (await upload(d, 'cam', makePng(2, 2, 100 + i), `k${i}`, { captured_at_ms: captured[i] })).json()).observation_id);
    }
    const active = (await list(d, 'source_id=cam')).map((o) => o.observation_id).sort();
    expect(active).toEqual(ids.slice(2).sort());
    const audit = await (await d.req('/v1/observation-audit?event=quota_evicted')).json();
    expect(audit.flatMap((e: { detail: { observation_ids: string[] } }) => e.detail.observation_ids).sort()).toEqual(
      ids.slice(0, 2).sort(),
    );
  });

  it('evict_oldest also holds max_active_bytes', async () => {
    const d = await daemon();
    const pngs = [0, 1, 2, 3].map((i) => makePng(8, 8, 200 + i));
    await createSource(d, sourceBody('cam', TOKEN, { max_active_bytes: pngs[0].length * 2 + 10 }));
    for (let i = 0; i < 4; i++) expect((await upload(d, 'cam', pngs[i], `k${i}`)).status).toBe(201);
    const src = await (await d.req('/v1/observation-sources/cam')).json();
    expect(src.active_observation_count).toBe(2);
    expect(src.active_byte_length).toBeLessThanOrEqual(src.max_active_bytes);
  });

  it('reject refuses an upload that does not fit with 507 and leaves the store unchanged', async () => {
    const d = await daemon();
    await createSource(d, sourceBody('cam', TOKEN, { max_active_observations: 2, quota_policy: 'reject' }));
    for (let i = 0; i < 2; i++) expect((await upload(d, 'cam', makePng(2, 2, 300 + i), `k${i}`)).status).toBe(201);
    const before = { files: filesUnder(join(d.dataDir, 'blobs'), 'name').sort(), rows: await list(d, 'source_id=cam&include_purged=true') };
    const r = await upload(d, 'cam', makePng(2, 2, 399), 'k-over');
    expect(r.status).toBe(507);
    expect((await r.json()).code).toBe('quota_exceeded');
    expect(filesUnder(join(d.dataDir, 'blobs'), 'name').sort()).toEqual(before.files);
    expect(await list(d, 'source_id=cam&include_purged=true')).toEqual(before.rows);
    expect(readdirSync(join(d.dataDir, 'tmp'))).toEqual([]);
  });

  it('an upload larger than max_active_bytes on its own is 413 whatever the policy', async () => {
    const d = await daemon();
    const png = makePng(16, 16, 5);
    for (const policy of ['evict_oldest', 'reject']) {
      await createSource(d, sourceBody(`cam-${policy}`, TOKEN, { max_active_bytes: png.length - 1, quota_policy: policy }));
      const r = await upload(d, `cam-${policy}`, png, 'k');
      expect(r.status).toBe(413);
      expect((await r.json()).code).toBe('payload_too_large');
    }
    expect(filesUnder(join(d.dataDir, 'blobs'), 'name')).toEqual([]);
  });
});

describe('free-disk floor', () => {
  it('turns uploads into 507 insufficient_storage before anything is written; reads keep working', async () => {
    const d = await daemon({ retention: { min_free_bytes: Number.MAX_SAFE_INTEGER } });
    await createSource(d, sourceBody('cam', TOKEN));
    const r = await upload(d, 'cam', makePng(2, 2, 1), 'k');
    expect(r.status).toBe(507);
    expect((await r.json()).code).toBe('insufficient_storage');
    expect(filesUnder(join(d.dataDir, 'blobs'), 'name')).toEqual([]);
    expect(readdirSync(join(d.dataDir, 'tmp'))).toEqual([]);
    expect((await d.req('/v1/observations')).status).toBe(200);
  });
});

describe('history', () => {
  it('forgets purged rows (and blobs they still held) and audit records after retention.history_ms', async () => {
    const clock = testClock();
    const day = 24 * 3600 * 1000;
    const d = await daemon({ retention: { sweep_interval_ms: 3_600_000, history_ms: 10 * day } }, { now: clock });
    await createSource(d, sourceBody('cam', TOKEN, { retention_seconds: 60, purge_raw_on_retention: false }));
    const old = await (await upload(d, 'cam', makePng(3, 3, 501), 'old')).json();
    const { sweepOnce } = await import('../src/retention/sweep.js');
    const { pruneHistory } = await import('../src/retention/history.js');
    clock.advance(61_000);
    expect((await sweepOnce(d.daemon.deps)).purged).toBe(1);
    // Purged but kept raw: the row lists with include_purged and its blob stays.
    expect(existsSync(blobPath(d.dataDir, old.sha256))).toBe(true);

    clock.advance(5 * day);
    const recent = await (await upload(d, 'cam', makePng(3, 3, 502), 'recent')).json();
    clock.advance(61_000);
    await sweepOnce(d.daemon.deps);
    expect(await pruneHistory(d.daemon.deps)).toEqual({ purged_rows_deleted: 0, audit_events_deleted: 0, blobs_erased: 0 });

    clock.advance(5 * day);
    const report = await pruneHistory(d.daemon.deps);
    expect(report.purged_rows_deleted).toBe(1);
    expect(report.blobs_erased).toBe(1);
    expect(report.audit_events_deleted).toBeGreaterThanOrEqual(3); // source_created, observation_created, retention_purged
    expect(existsSync(blobPath(d.dataDir, old.sha256))).toBe(false);
    expect(existsSync(blobPath(d.dataDir, recent.sha256))).toBe(true);
    const ids = (await list(d, 'source_id=cam&include_purged=true')).map((o) => o.observation_id);
    expect(ids).toEqual([recent.observation_id]);
    const audit = await (await d.req('/v1/observation-audit?limit=1000')).json();
    const cutoff = clock() - 10 * day;
    expect(audit.every((e: { recorded_at_ms: number }) => e.recorded_at_ms >= cutoff)).toBe(true);
    expect(audit.some((e: { observation_id: string }) => e.observation_id === recent.observation_id)).toBe(true);
  });
});
