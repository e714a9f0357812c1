import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepOnce } from '../src/retention/sweep.js';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { content, derive, shaOf, upload } from './helpers/derivations.js';
import { createSource } from './helpers/fixtures.js';
import { makePng, makeWav } from './helpers/media.js';
import { byIds, eventsOf, getRun, materialize, runAction } from './helpers/runs.js';

const ADMIN = 'runs-test-admin-token-0001';
const READER = 'runs-test-readonly-token-01';
const clock = testClock();
let d: TestDaemon;
let token: string;
let n = 0;

const blobExists = (sha: string) => existsSync(join(d.dataDir, 'blobs', sha.slice(0, 2), sha.slice(2, 4), sha));
const shot = (extra: Record<string, unknown> = {}) =>
  upload(d, 'cam', token, makePng(3, 3, ++n), `shot-${n}`, 'image/png', { canonical_text: `text ${n}`, ...extra });

beforeAll(async () => {
  d = await startDaemon({ admin_token: ADMIN, readonly_token: READER, retention: { sweep_interval_ms: 3_600_000 } }, { now: clock });
  token = await createSource(d, { source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot', retention_seconds: 60 }, ADMIN);
  // Every request of this file is admin unless it says otherwise.
  const req = d.req.bind(d);
  d.req = (path, init = {}) => req(path, { ...init, token: init.token ?? ADMIN });
});
afterAll(async () => {
  await d?.close();
});

describe('claim and complete', () => {
  it('moves queued → running → completed, and refuses every other transition with 409', async () => {
    const o = await shot();
    const run = (await materialize(d, byIds([o.observation_id]))).body;
    expect(run.status).toBe('queued');
    expect((await runAction(d, run.run_id, 'complete', { output: 'too early' })).status).toBe(409);

    const claimed = await runAction(d, run.run_id, 'claim');
    expect(claimed.status).toBe(200);
    expect(claimed.body).toMatchObject({ status: 'running', attempts: 1 });
    expect(claimed.body.input!.observations[0].canonical_text).toBe(`text ${n}`);
    expect(claimed.body.started_at_ms).toBe(clock());
    expect((await runAction(d, run.run_id, 'claim')).status).toBe(409);

    const usage = { input_tokens: 5, output_tokens: 3, total_tokens: 8 };
    const done = await runAction(d, run.run_id, 'complete', { output: 'a summary', usage });
    expect(done.status).toBe(200);
    expect(done.body).toMatchObject({ status: 'completed', output: 'a summary', usage, error: null });
    expect((await getRun(d, run.run_id)).body).toMatchObject({ status: 'completed', output: 'a summary', usage });
    expect((await runAction(d, run.run_id, 'complete', { output: 'again' })).status).toBe(409);
    expect((await runAction(d, run.run_id, 'claim')).status).toBe(409);
    const ev = eventsOf(d, 'run.completed').find((e) => e.data.run_id === run.run_id)!;
    // The source keeps its output inside observd (allow_output_delivery defaults to false).
    expect(ev.data).toMatchObject({ status: 'completed', output_delivery_allowed: false, usage });
    expect(ev.data).not.toHaveProperty('output');
  });

  it('fails a running run with an error', async () => {
    const o = await shot();
    const run = (await materialize(d, byIds([o.observation_id]))).body;
    await runAction(d, run.run_id, 'claim');
    const failed = await runAction(d, run.run_id, 'complete', { error: 'the agent crashed' });
    expect(failed.body).toMatchObject({ status: 'failed', error: 'the agent crashed', output: null });
    expect(eventsOf(d, 'run.failed').some((e) => e.data.run_id === run.run_id && e.data.error === 'the agent crashed')).toBe(true);
  });

  it('validates ids and bodies', async () => {
    const o = await shot();
    const run = (await materialize(d, byIds([o.observation_id]))).body;
    await runAction(d, run.run_id, 'claim');
    for (const body of [{}, { output: 'x', error: 'y' }, { error: '' }, { output: 5 }, { error: 'x', usage: {} }]) {
      const r = await runAction(d, run.run_id, 'complete', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('validation_failed');
    }
    expect((await runAction(d, 'run_01ZZZZZZZZZZZZZZZZZZZZZZZZ', 'claim')).status).toBe(404);
    expect((await runAction(d, 'run_01ZZZZZZZZZZZZZZZZZZZZZZZZ', 'complete', { output: 'x' })).status).toBe(404);
    expect((await runAction(d, 'not-a-run', 'claim')).status).toBe(404);
  });

  it('needs the admin token to materialize, claim or complete; the read-only token reads runs without sensitive input', async () => {
    const o = await shot();
    const body = byIds([o.observation_id]);
    expect((await d.req('/v1/observation-materializations', { method: 'POST', json: body, token: 'wrong-token-wrong-token' })).status).toBe(
      401,
    );
    expect((await d.req('/v1/observation-materializations', { method: 'POST', json: body, token: READER })).status).toBe(403);
    const run = (await materialize(d, body)).body;
    expect((await d.req(`/v1/runs/${run.run_id}/claim`, { method: 'POST', token: READER })).status).toBe(403);
    const read = await getRun(d, run.run_id, READER);
    expect(read.status).toBe(200);
    // cam is `sensitive` (the default): its text is not for the read-only token.
    expect(read.body).toMatchObject({ run_id: run.run_id, input: null, output: null });
    expect((await d.req('/v1/runs', { token: READER })).status).toBe(200);
  });
});

describe('runs hold their blobs until they finish; erasing an observation cancels them', () => {
  it('completing a run frees the raw blobs it held once nothing else holds them', async () => {
    const o = await shot();
    const a = (await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'always' }))).body;
    const b = (await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'always' }))).body;
    const none = (await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'never' }))).body;
    expect(a.asset_ids).toEqual([o.asset_id]);
    expect(none.asset_ids).toEqual([]);
    // The observation itself still holds it; then only the runs do.
    for (const r of [a, b]) await runAction(d, r.run_id, 'claim');
    await runAction(d, a.run_id, 'complete', { error: 'gave up' });
    expect(blobExists(o.sha256)).toBe(true);
    await runAction(d, b.run_id, 'complete', { output: 'ok' });
    expect(blobExists(o.sha256)).toBe(true);
    // The run remembers what it held.
    expect((await getRun(d, a.run_id)).body.asset_ids).toEqual([o.asset_id]);
  });

  it('a retention purge (purge_raw_on_retention) cancels the queued run, erases its input and frees its blobs', async () => {
    const o = await shot();
    const run = (await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'always' }))).body;
    clock.advance(61_000);
    const report = await sweepOnce(d.daemon.deps);
    expect(report.purged).toBeGreaterThanOrEqual(1);
    const obs = await (await d.req(`/v1/observations/${o.observation_id}`)).json();
    expect(obs.retention_state).toBe('purged');
    expect(blobExists(o.sha256)).toBe(false);
    expect(blobExists(shaOf(o.canonical_text_asset_id))).toBe(false);
    expect((await d.req(`/v1/assets/${o.asset_id}`)).status).toBe(404);
    const after = (await getRun(d, run.run_id)).body;
    expect(after).toMatchObject({ status: 'failed', error: 'cancelled: an observation it involved was erased', input: null, output: null });
    expect((await runAction(d, run.run_id, 'claim')).status).toBe(409);
    // A purged observation can no longer be materialized.
    const again = await materialize(d, byIds([o.observation_id]));
    expect(again.status).toBe(410);
  });

  it('deleting the observation cancels a claimed (running) run and erases what it held', async () => {
    const o = await shot();
    const run = (await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'always' }))).body;
    await runAction(d, run.run_id, 'claim');
    expect((await d.req(`/v1/observations/${o.observation_id}`, { method: 'DELETE' })).status).toBe(204);
    expect(blobExists(o.sha256)).toBe(false);
    expect((await getRun(d, run.run_id)).body).toMatchObject({ status: 'failed', input: null });
    // The runtime's late answer is refused: the run already ended.
    expect((await runAction(d, run.run_id, 'complete', { output: 'x' })).status).toBe(409);
    expect(eventsOf(d, 'run.failed').some((e) => e.data.run_id === run.run_id)).toBe(true);
  });
});

describe('session_input derivation subjects', () => {
  it('canonical_text of a session input is that input rendered as text', async () => {
    const micToken = await createSource(
      d,
      { source_id: 'mic', display_name: 'Mic', kind: 'microphone_segment', sensitivity: 'public' },
      ADMIN,
    );
    const seg = await upload(d, 'mic', micToken, makeWav(0.3), 'seg-1', 'audio/wav');
    const first = (
      await materialize(d, byIds([seg.observation_id], { target_session_id: 'journal', request: { content: 'First question.' } }))
    ).body;
    const second = (
      await materialize(d, byIds([seg.observation_id], { target_session_id: 'journal', request: { content: 'Second question.' } }))
    ).body;
    expect([first.session_input_offset, second.session_input_offset]).toEqual([0, 1]);
    // The text is written just after the run commits.
    await d.daemon.services.materializations.flushJournal();

    const r = await derive(d, 'canonical_text', { type: 'session_input', session_id: 'journal', offset: 1 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ status: 'completed', reused_subject_asset: true });
    const text = (await content(d, r.body.result_asset_id)).toString('utf8');
    expect(text.startsWith('[observd] UNTRUSTED EVIDENCE FOLLOWS.')).toBe(true);
    expect(text).toContain(`id=${seg.observation_id}`);
    expect(text).toContain('no transcript is available');
    expect(text).toContain('Request:\nSecond question.');
    expect(text).not.toContain('First question.');
    // Cached like any derivation.
    expect((await derive(d, 'canonical_text', { type: 'session_input', session_id: 'journal', offset: 1 })).body.cache_status).toBe('hit');
    // Public observations only: the read-only token may read that text.
    expect((await d.req(`/v1/assets/${r.body.result_asset_id}/content`, { token: READER })).status).toBe(200);

    const missing = await derive(d, 'canonical_text', { type: 'session_input', session_id: 'journal', offset: 2 });
    expect(missing.status).toBe(404);
    expect((await derive(d, 'canonical_text', { type: 'session_input', session_id: 'nobody', offset: 0 })).status).toBe(404);
    const preview = await derive(d, 'visual_preview', { type: 'session_input', session_id: 'journal', offset: 0 });
    expect(preview.status).toBe(400);
    expect(preview.body.code).toBe('unsupported_derivation');
  });

  it('the journal text of a run over sensitive observations needs the admin token', async () => {
    const o = await shot();
    await materialize(d, byIds([o.observation_id], { target_session_id: 'secret-journal' }));
    await d.daemon.services.materializations.flushJournal();
    const r = await derive(d, 'canonical_text', { type: 'session_input', session_id: 'secret-journal', offset: 0 });
    expect(r.status).toBe(200);
    expect((await d.req(`/v1/assets/${r.body.result_asset_id}/content`, { token: READER })).status).toBe(403);
    expect((await d.req(`/v1/assets/${r.body.result_asset_id}/content`)).status).toBe(200);
  });

  it('a text left unwritten (a crash after the commit) answers 409 until the next start writes it', async () => {
    const o = await shot();
    await materialize(d, byIds([o.observation_id], { target_session_id: 'crashed' }));
    await d.daemon.services.materializations.flushJournal();
    d.daemon.deps.db.prepare(`UPDATE session_inputs SET text_asset_id = NULL WHERE session_id = 'crashed'`).run();
    const subject = { type: 'session_input', session_id: 'crashed', offset: 0 };
    const early = await derive(d, 'canonical_text', subject);
    expect(early.status).toBe(409);
    d.daemon.services.materializations.start();
    await d.daemon.services.materializations.flushJournal();
    const r = await derive(d, 'canonical_text', subject);
    expect(r.status).toBe(200);
    expect((await content(d, r.body.result_asset_id)).toString('utf8')).toContain(`id=${o.observation_id}`);
  });
});
