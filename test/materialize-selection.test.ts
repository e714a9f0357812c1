import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { upload } from './helpers/derivations.js';
import { allPages, createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { byIds, eventsOf, materialize } from './helpers/runs.js';

const clock = testClock(Date.UTC(2026, 2, 1, 12, 0, 0));
let d: TestDaemon;
let screen: string;
let seq = 0;

/** Uploads a distinct PNG (with uploader text, so no OCR runs) to a source. */
const put = (source: string, token: string, extra: Record<string, unknown> = {}) => {
  seq++;
  return upload(d, source, token, makePng(2, 2, seq), `k-${seq}`, 'image/png', { canonical_text: `frame ${seq}`, ...extra });
};

beforeAll(async () => {
  d = await startDaemon({ retention: { sweep_interval_ms: 3_600_000 } }, { now: clock });
  screen = await createSource(d, { source_id: 'screen-main', display_name: 'Main screen snapshots', kind: 'screen_snapshot' });
});
afterAll(async () => {
  await d?.close();
});

describe('latest_from_stream: the seed example', () => {
  it('picks the newest 2 within the lookback from 5 shuffled uploads, oldest first', async () => {
    const now = clock();
    // Seconds before now, in upload order: shuffled, one outside the 300 s lookback.
    const ago = [50, 400, 5, 100, 10];
    const obs = [];
    for (const [i, s] of ago.entries())
      obs.push(await put('screen-main', screen, { stream_id: 'call-7', seq_no: i + 1, captured_at_ms: now - s * 1000 }));
    // Newer, but another stream: never selected.
    await put('screen-main', screen, { stream_id: 'call-8', captured_at_ms: now - 1000 });

    // The seed's example request, exactly as written.
    const r = await materialize(d, {
      target_session_id: 'incident-review',
      selection: { type: 'latest_from_stream', source_id: 'screen-main', stream_id: 'call-7', max_observations: 2, lookback_seconds: 300 },
      request: {
        content: 'Analyze the latest observations and summarize what changed.',
        generation: { model: 'gpt-5.4', tool_choice: 'auto', allow_parallel_tool_calls: true, response_format: { type: 'text' } },
      },
      raw_asset_policy: 'auto',
      fail_when_empty: true,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const tenAgo = obs[4];
    const fiveAgo = obs[2];
    expect(r.body.observation_ids).toEqual([tenAgo.observation_id, fiveAgo.observation_id]);
    expect(r.body).toMatchObject({
      kind: 'observation_materialization',
      status: 'queued',
      submitter: 'queue',
      target_session_id: 'incident-review',
      session_input_offset: 0,
      source_ids: ['screen-main'],
      stream_ids: ['call-7'],
      sensitivity: 'sensitive',
      output_delivery_allowed: false,
      raw_asset_policy: 'auto',
      output: null,
      usage: null,
    });
    expect(r.body.run_id).toMatch(/^run_[0-9A-Z]{26}$/);
    const input = r.body.input!;
    expect(input.observations.map((o) => o.seq_no)).toEqual([5, 3]);
    expect(input.observations[0].context).toBe(
      `Observation 1 of 2: id=${tenAgo.observation_id} source=screen-main stream=call-7 seq_no=5 captured_at=${new Date(now - 10_000).toISOString()} kind=screen_snapshot media_type=image/png`,
    );
    expect(input.evidence_text.startsWith('[observd] UNTRUSTED EVIDENCE FOLLOWS.')).toBe(true);
    expect(input.evidence_text).toContain(`frame ${seq - 1}`);
    expect(input.evidence_text).toContain(`frame ${seq - 3}`);
    expect(input.evidence_text).not.toContain(`frame ${seq - 2}`);
    // The request is passed on unchanged.
    expect(input.request).toEqual({
      content: 'Analyze the latest observations and summarize what changed.',
      generation: { model: 'gpt-5.4', tool_choice: 'auto', allow_parallel_tool_calls: true, response_format: { type: 'text' } },
    });
    expect(r.body.asset_ids).toEqual([tenAgo.asset_id, fiveAgo.asset_id]);
  });

  it('breaks capture-time ties by id and defaults max_observations to 3', async () => {
    const t = clock() - 60_000;
    const a = await put('screen-main', screen, { stream_id: 'tie', captured_at_ms: t });
    const b = await put('screen-main', screen, { stream_id: 'tie', captured_at_ms: t });
    const c = await put('screen-main', screen, { stream_id: 'tie', captured_at_ms: t });
    const e = await put('screen-main', screen, { stream_id: 'tie', captured_at_ms: t - 1 });
    const r = await materialize(d, {
      target_session_id: 'ties',
      selection: { type: 'latest_from_stream', source_id: 'screen-main', stream_id: 'tie' },
      request: { content: '' },
    });
    expect(r.status).toBe(202);
    expect(r.body.observation_ids).toEqual([a.observation_id, b.observation_id, c.observation_id]);
    expect(r.body.observation_ids).not.toContain(e.observation_id);
  });
});

describe('latest_from_source and observation_ids', () => {
  it('latest_from_source takes the newest of every stream of the source', async () => {
    const r = await materialize(d, {
      target_session_id: 'src',
      selection: { type: 'latest_from_source', source_id: 'screen-main', max_observations: 1 },
      request: { content: 'x' },
    });
    expect(r.status).toBe(202);
    const newest = (await (await d.req('/v1/observations?source_id=screen-main&order=desc&limit=1')).json())[0];
    expect(r.body.observation_ids).toEqual([newest.observation_id]);
  });

  it('observation_ids keeps the caller order, across sources, and drops duplicates', async () => {
    const camToken = await createSource(d, { source_id: 'cam', display_name: 'Cam', kind: 'webcam_snapshot', sensitivity: 'restricted' });
    const x = await put('screen-main', screen);
    const y = await put('cam', camToken);
    const r = await materialize(d, byIds([y.observation_id, x.observation_id, y.observation_id]));
    expect(r.status).toBe(202);
    expect(r.body.observation_ids).toEqual([y.observation_id, x.observation_id]);
    expect(r.body.source_ids).toEqual(['cam', 'screen-main']);
    expect(r.body.sensitivity).toBe('sensitive');
  });

  it('appends each run to its session journal at the next offset', async () => {
    const x = await put('screen-main', screen);
    const first = await materialize(d, byIds([x.observation_id], { target_session_id: 'journal-a' }));
    const second = await materialize(d, byIds([x.observation_id], { target_session_id: 'journal-a' }));
    const other = await materialize(d, byIds([x.observation_id], { target_session_id: 'journal-b' }));
    expect([first.body.session_input_offset, second.body.session_input_offset, other.body.session_input_offset]).toEqual([0, 1, 0]);
  });
});

describe('refusals', () => {
  it('answers 404, 410, 403, 422 and 400 as the contract says', async () => {
    const x = await put('screen-main', screen);
    const purgedToken = await createSource(d, { source_id: 'short', display_name: 'Short', kind: 'screen_snapshot', retention_seconds: 1 });
    const gone = await put('short', purgedToken);
    clock.advance(2_000);
    const { sweepOnce } = await import('../src/retention/sweep.js');
    expect((await sweepOnce(d.daemon.deps)).purged).toBeGreaterThanOrEqual(1);
    const lockedToken = await createSource(d, {
      source_id: 'locked',
      display_name: 'Locked',
      kind: 'screen_snapshot',
      allow_materialization: false,
    });
    const locked = await put('locked', lockedToken);
    const offToken = await createSource(d, { source_id: 'off', display_name: 'Off', kind: 'screen_snapshot' });
    const off = await put('off', offToken);
    expect((await d.req('/v1/observation-sources/off', { method: 'PATCH', json: { status: 'disabled' } })).status).toBe(200);
    await createSource(d, { source_id: 'empty', display_name: 'Empty', kind: 'screen_snapshot' });

    const latest = (source_id: string, extra: Record<string, unknown> = {}) => ({
      target_session_id: 's',
      selection: { type: 'latest_from_source', source_id },
      request: { content: 'x' },
      ...extra,
    });
    const cases: Array<[string, Record<string, unknown>, number, string, string?]> = [
      ['unknown observation', byIds([x.observation_id, 'obs_01ZZZZZZZZZZZZZZZZZZZZZZZZ']), 404, 'not_found'],
      ['the seed-style id that does not exist', byIds(['observation-1']), 404, 'not_found'],
      ['unknown source', latest('nope'), 404, 'not_found'],
      ['purged observation', byIds([x.observation_id, gone.observation_id]), 410, 'gone'],
      ['source disallows materialization', byIds([x.observation_id, locked.observation_id]), 403, 'forbidden'],
      ['latest from a source that disallows it', latest('locked'), 403, 'forbidden'],
      ['disabled source', byIds([off.observation_id]), 403, 'forbidden'],
      ['nothing selected', latest('empty'), 422, 'empty_selection'],
      ['only purged in the source', latest('short'), 422, 'empty_selection'],
      ['unknown selection type', { ...byIds([]), selection: { type: 'everything' } }, 400, 'validation_failed', 'selection.type'],
      [
        'stream_id without source_id',
        { ...byIds([]), selection: { type: 'latest_from_stream', stream_id: 'call-7' } },
        400,
        'validation_failed',
        'selection.source_id',
      ],
      [
        'max_observations 0',
        { ...byIds([]), selection: { type: 'latest_from_source', source_id: 'screen-main', max_observations: 0 } },
        400,
        'validation_failed',
        'selection.max_observations',
      ],
      ['no observation ids', byIds([]), 400, 'validation_failed', 'selection.observation_ids'],
      [
        'unknown raw_asset_policy',
        byIds([x.observation_id], { raw_asset_policy: 'sometimes' }),
        400,
        'validation_failed',
        'raw_asset_policy',
      ],
      [
        'no request',
        { target_session_id: 's', selection: { type: 'observation_ids', observation_ids: [x.observation_id] } },
        400,
        'validation_failed',
        'request',
      ],
      ['request content not a string', byIds([x.observation_id], { request: { content: 5 } }), 400, 'validation_failed', 'request.content'],
    ];
    const before = eventsOf(d, 'run.queued').length;
    for (const [name, body, status, code, path] of cases) {
      const r = await materialize(d, body);
      expect(r.status, `${name}: ${JSON.stringify(r.body)}`).toBe(status);
      expect(r.body.code, name).toBe(code);
      if (path)
        expect(
          r.body.errors?.map((e) => e.path),
          name,
        ).toContain(path);
    }
    // Refused materializations record nothing.
    expect(eventsOf(d, 'run.queued').length).toBe(before);
    const bad = await d.req('/v1/observation-materializations', {
      method: 'POST',
      body: '{nope',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    // As in Kheish, unknown fields are ignored and `request.content` defaults to "".
    for (const body of [
      { ...byIds([]), selection: { type: 'latest_from_source', source_id: 'screen-main', stream_id: 'x' } },
      byIds([x.observation_id], { request: { input_items: [] } }),
      byIds([x.observation_id], { extra: 1 }),
    ]) {
      const r = await materialize(d, body);
      expect(r.status, JSON.stringify(r.body)).toBe(202);
    }
  });

  it('an empty selection without fail_when_empty is an empty run', async () => {
    const r = await materialize(d, {
      target_session_id: 'empty-ok',
      selection: { type: 'latest_from_source', source_id: 'empty' },
      request: { content: 'anything new?' },
      fail_when_empty: false,
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body).toMatchObject({ observation_ids: [], asset_ids: [], source_ids: ['empty'], sensitivity: 'sensitive', status: 'queued' });
    expect(r.body.input!.evidence_text).toContain('(no observations were selected)');
  });

  it('lookback_seconds leaves out what was captured earlier', async () => {
    const t = await createSource(d, { source_id: 'lookback', display_name: 'L', kind: 'screen_snapshot' });
    await put('lookback', t, { captured_at_ms: clock() - 120_000 });
    const r = await materialize(d, {
      target_session_id: 's',
      selection: { type: 'latest_from_source', source_id: 'lookback', lookback_seconds: 60 },
      request: { content: 'x' },
    });
    expect(r.status).toBe(422);
  });
});

describe('GET /v1/runs', () => {
  it('lists runs with filters and cursor pagination, without their input', async () => {
    const x = await put('screen-main', screen);
    for (let i = 0; i < 3; i++) expect((await materialize(d, byIds([x.observation_id], { target_session_id: 'paged' }))).status).toBe(202);
    const seen: string[] = [];
    for (const page of await allPages(d.url, '/v1/runs?target_session_id=paged&status=queued&limit=2')) {
      for (const run of page.items) {
        expect(run.input).toBeUndefined();
        expect(run.target_session_id).toBe('paged');
        seen.push(run.run_id);
      }
    }
    expect(seen).toHaveLength(3);
    expect([...seen].sort()).toEqual(seen);
    expect((await d.req('/v1/runs?status=bogus')).status).toBe(400);
    expect((await d.req('/v1/runs?cursor=abc')).status).toBe(400);
    expect((await d.req(`/v1/runs/${seen[0]}`)).status).toBe(200);
    expect((await d.req('/v1/runs/run_01ZZZZZZZZZZZZZZZZZZZZZZZZ')).status).toBe(404);
    expect((await d.req('/v1/runs/nope')).status).toBe(404);
    expect((await d.req('/v1/runs/run-1')).status).toBe(404);
  });
});
