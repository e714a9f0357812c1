import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { createSource } from './helpers/fixtures.js';
import { makePng, makeWav, uploadBody } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';
import { materialize } from './helpers/runs.js';

const clock = testClock(Date.UTC(2026, 4, 1, 12, 0, 0));
let d: TestDaemon;
let tokens: Record<string, string>;
let seq = 0;

const meta = (extra: Record<string, unknown> = {}) => ({
  schema: 'kheish.macos.capture.v1',
  machine_id: 'm1',
  os_profile: 'macos',
  capture_group_id: 'm1-capture',
  capture_group_kind: 'call_context',
  ...extra,
});

/** Uploads to a source with metadata (and uploader text, so no derivation runs). */
function put(sourceId: string, metadata: unknown, extra: Record<string, unknown> = {}) {
  seq++;
  const audio = sourceId.endsWith('call-audio');
  const body = uploadBody(
    audio ? makeWav(0.05, 8000) : makePng(2, 2, seq),
    `g-${seq}`,
    { metadata, canonical_text: `item ${seq}`, ...extra },
    audio ? 'audio/wav' : 'image/png',
  );
  if (audio) body.upload.file_name = 'segment.wav';
  return d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token: tokens[sourceId], json: body });
}

beforeAll(async () => {
  d = await startDaemon(
    { retention: { sweep_interval_ms: 3_600_000 }, capture: { heartbeat_check_interval_ms: 3_600_000 } },
    { now: clock },
  );
  const res = await d.req('/v1/capture-agent-provisions', {
    method: 'POST',
    json: {
      batch_id: 'groups',
      daemon_base_url: 'http://127.0.0.1:4000',
      agents: [{ machine_id: 'm1' }],
      sources: { screen: true, microphone: true },
    },
  });
  expect(res.status).toBe(201);
  const agent = (await res.json()).agents[0];
  tokens = Object.fromEntries(agent.sources.map((s: { source_id: string; upload_token: string }) => [s.source_id, s.upload_token]));
  tokens['macos-free-screen'] = await createSource(d, {
    source_id: 'macos-free-screen',
    kind: 'screen_snapshot',
    display_name: 'unprovisioned',
  });
  tokens['desk-screen'] = await createSource(d, { source_id: 'desk-screen', kind: 'screen_snapshot', display_name: 'not macos-' });
});
afterAll(async () => {
  await d?.close();
});

describe('metadata.capture_group_id at upload, as Kheish checks it (400 instead of its 500)', () => {
  it('accepts a consistent macOS capture group', async () => {
    expect((await put('macos-m1-screen', meta({ role: 'screenshot' }))).status).toBe(201);
  });

  it('refuses an inconsistent one on a macos- source, provisioned or not', async () => {
    const rows: Array<[string, string, unknown]> = [
      ['no machine_id', 'macos-m1-screen', meta({ machine_id: undefined })],
      ['blank machine_id', 'macos-m1-screen', meta({ machine_id: ' ' })],
      ['another machine', 'macos-m1-screen', meta({ machine_id: 'm2', capture_group_id: 'm2-capture' })],
      ['group of another machine', 'macos-m1-screen', meta({ capture_group_id: 'm2-capture' })],
      ['unprovisioned macos- source', 'macos-free-screen', meta()],
    ];
    for (const [name, source, m] of rows) {
      const p = await expectProblem(await put(source, m), 400, 'validation_failed');
      expect(JSON.stringify(p.errors), name).toMatch(/metadata\./);
    }
  });

  it('does not check other schemas, blank groups or sources outside macos-', async () => {
    expect((await put('macos-m1-screen', meta({ schema: 'kheish.linux.capture.v1', machine_id: 'zz' }))).status).toBe(201);
    expect((await put('macos-m1-screen', meta({ capture_group_id: '  ', machine_id: 'zz' }))).status).toBe(201);
    expect((await put('desk-screen', meta({ machine_id: 'zz' }))).status).toBe(201);
  });
});

describe('the observation_group selection', () => {
  const selection = (extra: Record<string, unknown> = {}) => ({
    target_session_id: 'call-review',
    selection: { type: 'observation_group', capture_group_id: 'g-call', ...extra },
    request: { content: 'What was on screen during the call?' },
  });

  it('takes the newest N of a group across sources, oldest first (max_observations default 3)', async () => {
    const now = clock();
    const ids: Record<string, string> = {};
    const plan: Array<[string, string, number]> = [
      ['a', 'macos-m1-screen', 500],
      ['b', 'macos-m1-call-audio', 40],
      ['c', 'desk-screen', 30],
      ['d', 'macos-m1-screen', 20],
      ['e', 'macos-m1-call-audio', 10],
    ];
    for (const [name, source, ago] of plan) {
      const r = await put(source, { capture_group_id: 'g-call' }, { captured_at_ms: now - ago * 1000 });
      expect(r.status, await r.clone().text()).toBe(201);
      ids[name] = (await r.json()).observation_id;
    }
    // Not the group: a number, another string, no metadata.
    await put('macos-m1-screen', { capture_group_id: 5 }, { captured_at_ms: now });
    await put('macos-m1-screen', { capture_group_id: 'g-call-2' }, { captured_at_ms: now });
    await put('desk-screen', null, { captured_at_ms: now });

    const r = await materialize(d, selection());
    expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    expect(r.body.observation_ids).toEqual([ids.c, ids.d, ids.e]);
    expect(r.body.request).toMatchObject({ source_kind: 'observation_materialization', actor_id: 'observation-group:g-call' });
    const five = await materialize(d, selection({ max_observations: 10, lookback_seconds: 100 }));
    expect(five.body.observation_ids).toEqual([ids.b, ids.c, ids.d, ids.e]);
  });

  it('refuses a blank group, max_observations 0, an empty result, and sources that may not be materialized', async () => {
    expect((await materialize(d, selection({ capture_group_id: ' ' }))).status).toBe(400);
    expect((await materialize(d, selection({ max_observations: 0 }))).status).toBe(400);
    expect((await materialize(d, selection({ capture_group_id: 'nobody' }))).status).toBe(422);
    const patched = await d.req('/v1/observation-sources/desk-screen', { method: 'PATCH', json: { allow_materialization: false } });
    expect(patched.status).toBe(200);
    expect((await materialize(d, selection())).status).toBe(403);
  });
});
