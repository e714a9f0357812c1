import { parse as parseToml } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import {
  CaptureAgentAlertView,
  CaptureAgentHeartbeatResponse,
  CaptureAgentProvisionResponse,
  CaptureAgentView,
  decode,
  expectKheishOk,
  ProblemDetails,
  type Type,
  Vec,
} from './helpers/kheish-decoder.js';
import { makePng, uploadBody } from './helpers/media.js';
import { eventually, provisionBody } from './helpers/fixtures.js';
import { expectProblem } from './helpers/problem.js';

const ADMIN = 'capture-admin-token-000000001';
const READER = 'capture-reader-token-00000001';
const clock = testClock(Date.UTC(2026, 3, 1, 9, 0, 0));
let d: TestDaemon;

/** Sends a request and decodes the 2xx answer by Kheish's rules (any 2xx, then the struct). */
async function kheish(path: string, init: { method?: string; json?: unknown; token?: string }, type: Type): Promise<any> {
  const res = await d.req(path, { method: init.method ?? 'GET', json: init.json, token: init.token ?? ADMIN });
  return expectKheishOk({ status: res.status, json: await res.json() }, type);
}

const post = (path: string, json: unknown, token = ADMIN) => d.req(path, { method: 'POST', json, token });

beforeAll(async () => {
  d = await startDaemon(
    {
      admin_token: ADMIN,
      readonly_token: READER,
      capture: { heartbeat_check_interval_ms: 3_600_000 },
      retention: { sweep_interval_ms: 3_600_000 },
    },
    { now: clock },
  );
});
afterAll(async () => {
  await d?.close();
});

describe('provisioning, as the Kheish CLI sends it', () => {
  let provisioned: Record<string, any>;

  it('provisions a batch; every credential once, machine ids normalized, sources per agent', async () => {
    provisioned = await kheish(
      '/v1/capture-agent-provisions',
      {
        method: 'POST',
        json: provisionBody('Fleet 2026.Q2', ['Desk Mac.02', 'lab-000'], {
          sources: { screen: true, camera: false, system_audio: true, microphone: true },
        }),
      },
      CaptureAgentProvisionResponse,
    );
    const t = clock();
    expect(provisioned.batch_id).toBe('Fleet 2026.Q2');
    expect(provisioned.agents.map((a: any) => a.machine_id)).toEqual(['desk-mac-02', 'lab-000']);
    const a = provisioned.agents[0];
    expect(a).toMatchObject({ os_profile: 'macos', heartbeat_deadline_ms: t + 150000, token_expires_at_ms: t + 604800000 });
    expect(a.heartbeat_token).toMatch(/^khc_[0-9a-f]{64}$/);
    expect(a.sources.map((s: any) => [s.source_id, s.kind])).toEqual([
      ['macos-desk-mac-02-screen', 'screen_snapshot'],
      ['macos-desk-mac-02-call-audio', 'microphone_segment'],
    ]);
    for (const s of a.sources) {
      expect(s.upload_token).toMatch(/^khc_[0-9a-f]{64}$/);
      expect(s.lease_id).toMatch(new RegExp(`^lease-${s.source_id}-[0-9a-f]{16}$`));
      expect(s.expires_at_ms).toBe(a.token_expires_at_ms);
    }
    const config = parseToml(a.config_toml) as any;
    expect(config.capture_agent).toMatchObject({
      machine_id: 'desk-mac-02',
      heartbeat_url: 'http://127.0.0.1:4000/v1/capture-agents/desk-mac-02/heartbeat',
      heartbeat_token: a.heartbeat_token,
    });
    expect(config.sources.map((s: any) => s.stream_id)).toEqual([
      'screen:display:display-main',
      'call:desk-mac-02-capture:conversation',
      'call:desk-mac-02-capture:microphone',
    ]);
    expect(config.sources[0].remote).toMatchObject({ ensure_exists: false, upload_token: a.sources[0].upload_token });
    expect(config.sources[0].driver.metadata).toMatchObject({
      schema: 'kheish.macos.capture.v1',
      capture_group_id: 'desk-mac-02-capture',
      role: 'screenshot',
    });
    expect(a.config_toml).not.toContain(ADMIN);
  });

  it('lists and gets agents as Kheish views, sorted, with no token anywhere', async () => {
    const list = await kheish('/v1/capture-agents', { token: READER }, Vec(CaptureAgentView));
    expect(list.map((a: any) => a.machine_id)).toEqual(['desk-mac-02', 'lab-000']);
    expect(list[0]).toMatchObject({ status: 'active', heartbeat_state: 'pending', heartbeat_token_version: 1, batch_id: 'Fleet 2026.Q2' });
    expect(list[0].source_ids).toEqual(['macos-desk-mac-02-screen', 'macos-desk-mac-02-call-audio']);
    const text = JSON.stringify(list);
    for (const ag of provisioned.agents) {
      expect(text).not.toContain(ag.heartbeat_token);
      for (const s of ag.sources) expect(text).not.toContain(s.upload_token);
    }
    const one = await kheish('/v1/capture-agents/lab-000', { token: READER }, CaptureAgentView);
    expect(one.leases[0]).toMatchObject({ source_id: 'macos-lab-000-screen', kind: 'screen_snapshot' });
    // A raw id is not re-normalized on GET.
    await expectProblem(await d.req('/v1/capture-agents/Desk%20Mac.02', { token: ADMIN }), 404, 'not_found');
    await expectProblem(await d.req('/v1/capture-agents/nobody', { token: ADMIN }), 404, 'not_found');
  });

  it('paging is opt-in: page=true gives items and pagination, limit truncates the array', async () => {
    const bare = await (await d.req('/v1/capture-agents?limit=1', { token: ADMIN })).json();
    expect(bare.map((a: any) => a.machine_id)).toEqual(['desk-mac-02']);
    const page = await (await d.req('/v1/capture-agents?page=true&limit=1', { token: ADMIN })).json();
    expect(page.pagination).toMatchObject({ limit: 1, total_count: 2, has_more: true, order: 'asc' });
    const next = await (await d.req(`/v1/capture-agents?cursor=${page.pagination.next_cursor}&limit=1`, { token: ADMIN })).json();
    expect(next.items.map((a: any) => a.machine_id)).toEqual(['lab-000']);
    expect(next.pagination.has_more).toBe(false);
  });

  it('refuses a replayed or conflicting batch id (409) and invalid requests (400)', async () => {
    const replay = await post(
      '/v1/capture-agent-provisions',
      provisionBody('Fleet 2026.Q2', ['Desk Mac.02', 'lab-000'], {
        sources: { screen: true, camera: false, system_audio: true, microphone: true },
      }),
    );
    const p = await expectProblem(replay, 409, 'conflict');
    expect(p.detail).toMatch(/already applied; raw upload tokens are not replayable/);
    await expectProblem(await post('/v1/capture-agent-provisions', provisionBody('fleet-2026-q2', ['other'])), 409, 'conflict');
    const cases: Array<[string, Record<string, unknown>]> = [
      ['duplicate after normalization', provisionBody('b1', ['Mac 001', 'mac-001'])],
      ['bad identifier', provisionBody('b2', ['mac-001!'])],
      ['linux screen', provisionBody('b3', ['l1'], { os_profile: 'linux' })],
      ['camera without target', provisionBody('b4', ['c1'], { sources: { camera: true } })],
      ['no source', provisionBody('b5', ['c1'], { sources: { screen: false } })],
      ['zero grace', provisionBody('b6', ['c1'], { heartbeat_grace_ms: 0 })],
      ['url without host', provisionBody('b7', ['c1'], { daemon_base_url: 'http://' })],
      ['no agents', provisionBody('b8', [])],
    ];
    for (const [name, body] of cases) {
      const res = await post('/v1/capture-agent-provisions', body);
      expect(res.status, name).toBe(400);
      expect(decode(await res.json(), ProblemDetails), name).toEqual([]);
    }
    await expectProblem(await post('/v1/capture-agent-provisions', provisionBody('b9', ['x']), READER), 403, 'forbidden');
  });

  it('heartbeat: `{}` with the agent bearer; every auth failure is the same 401', async () => {
    const a = provisioned.agents[1];
    clock.advance(1000);
    const hb = await kheish(
      '/v1/capture-agents/lab-000/heartbeat',
      { method: 'POST', json: {}, token: a.heartbeat_token },
      CaptureAgentHeartbeatResponse,
    );
    expect(hb).toEqual({
      machine_id: 'lab-000',
      status: 'active',
      heartbeat_state: 'healthy',
      last_heartbeat_at_ms: clock(),
      heartbeat_deadline_ms: clock() + 150000,
    });
    const withSources = await kheish(
      '/v1/capture-agents/desk-mac-02/heartbeat',
      {
        method: 'POST',
        json: { observed_source_ids: [' macos-desk-mac-02-screen '], agent_version: 'capture  1.2.3' },
        token: provisioned.agents[0].heartbeat_token,
      },
      CaptureAgentHeartbeatResponse,
    );
    expect(withSources).toMatchObject({
      agent_version: 'capture 1.2.3',
      observed_source_ids: ['macos-desk-mac-02-screen'],
      unobserved_source_ids: ['macos-desk-mac-02-call-audio'],
    });
    const failures: Array<[string, string, string | undefined]> = [
      ['unknown agent', '/v1/capture-agents/ghost/heartbeat', a.heartbeat_token],
      ['no bearer', '/v1/capture-agents/lab-000/heartbeat', undefined],
      ['wrong token', '/v1/capture-agents/lab-000/heartbeat', `khc_${'0'.repeat(64)}`],
      ['another agent token', '/v1/capture-agents/lab-000/heartbeat', provisioned.agents[0].heartbeat_token],
      ['admin token', '/v1/capture-agents/lab-000/heartbeat', ADMIN],
      ['upload token', '/v1/capture-agents/lab-000/heartbeat', a.sources[0].upload_token],
    ];
    const bodies = new Set<string>();
    for (const [name, path, token] of failures) {
      const res = await post(path, {}, token as string);
      expect(res.status, name).toBe(401);
      bodies.add(await res.text());
    }
    expect(bodies.size).toBe(1);
    expect(JSON.parse([...bodies][0])).toMatchObject({
      detail: 'missing or invalid capture agent bearer token',
      domain: 'observation_ingress',
    });
    const bad = await post(
      '/v1/capture-agents/lab-000/heartbeat',
      { observed_source_ids: ['macos-desk-mac-02-screen'] },
      a.heartbeat_token,
    );
    await expectProblem(bad, 400, 'validation_failed');
    const dup = await post(
      '/v1/capture-agents/lab-000/heartbeat',
      { observed_source_ids: ['macos-lab-000-screen', 'macos-lab-000-screen'] },
      a.heartbeat_token,
    );
    await expectProblem(dup, 400, 'validation_failed');
    const secret = await (
      await post('/v1/capture-agents/lab-000/heartbeat', { agent_version: `v1 token=${'a'.repeat(40)}` }, a.heartbeat_token)
    ).json();
    expect(secret.agent_version).toBe('agent_version_redacted');
    // No body at all is `{}` too.
    const empty = await d.req('/v1/capture-agents/lab-000/heartbeat', { method: 'POST', token: a.heartbeat_token });
    expect(empty.status).toBe(200);
  });

  it('capture-owned sources: uploads take only the lease token; admin token changes are 409', async () => {
    const a = provisioned.agents[1];
    const src = a.sources[0];
    const up = await d.req(`/v1/observation-sources/${src.source_id}/observations`, {
      method: 'POST',
      token: src.upload_token,
      json: uploadBody(makePng(2, 2, 1), 'owned-1'),
    });
    expect(up.status, await up.clone().text()).toBe(201);
    const wrong = await d.req(`/v1/observation-sources/${src.source_id}/observations`, {
      method: 'POST',
      token: provisioned.agents[0].sources[0].upload_token,
      json: uploadBody(makePng(2, 2, 2), 'owned-2'),
    });
    await expectProblem(wrong, 401, 'unauthorized');
    for (const [path, body] of [
      [`/v1/observation-sources/${src.source_id}/rotate-token`, { upload_token: 'a-new-token-of-sixteen-plus', grace_period_ms: 0 }],
      [`/v1/observation-sources/${src.source_id}/revoke-token`, {}],
      [
        '/v1/observation-sources',
        { source_id: src.source_id, kind: 'screen_snapshot', display_name: 'hijack', upload_token: 'a-new-token-of-sixteen-plus' },
      ],
    ] as const) {
      const p = await expectProblem(await post(path, body), 409, 'conflict');
      expect(p.detail).toMatch(/capture-owned observation source .* is managed by capture agent lab-000/);
    }
    await expectProblem(await d.req(`/v1/observation-sources/${src.source_id}`, { method: 'DELETE', token: ADMIN }), 409, 'conflict');
  });

  it('revoke: 401 for heartbeats and uploads, sources disabled, uploads kept, a second revoke is the same view', async () => {
    const a = provisioned.agents[1];
    const src = a.sources[0];
    const before = await (await d.req(`/v1/observations?source_id=${src.source_id}`, { token: ADMIN })).json();
    const listed = (Array.isArray(before) ? before : (before.data ?? before.items)) as Array<{ observation_id: string }>;
    expect(listed).toHaveLength(1);
    clock.advance(1000);
    const view = await kheish(
      '/v1/capture-agents/lab-000/revoke',
      { method: 'POST', json: { reason: '  laptop   stolen ' } },
      CaptureAgentView,
    );
    expect(view).toMatchObject({ status: 'revoked', heartbeat_state: 'revoked', revoked_at_ms: clock(), revoked_reason: 'laptop stolen' });
    expect(view.leases.every((l: any) => l.revoked_at_ms === clock())).toBe(true);
    const again = await kheish('/v1/capture-agents/lab-000/revoke', { method: 'POST', json: {} }, CaptureAgentView);
    expect(again).toEqual(view);
    await expectProblem(await post('/v1/capture-agents/lab-000/heartbeat', {}, a.heartbeat_token), 401, 'unauthorized');
    const up = await d.req(`/v1/observation-sources/${src.source_id}/observations`, {
      method: 'POST',
      token: src.upload_token,
      json: uploadBody(makePng(2, 2, 3), 'after-revoke'),
    });
    await expectProblem(up, 401, 'unauthorized');
    const source = await (await d.req(`/v1/observation-sources/${src.source_id}`, { token: ADMIN })).json();
    expect(source.status).toBe('disabled');
    expect((await d.req(`/v1/observations/${listed[0].observation_id}`, { token: ADMIN })).status).toBe(200);
    const audit = await eventually(async () => {
      const rows = d.daemon.services.db
        .prepare(
          `SELECT event, source_id, detail FROM audit_events WHERE event IN ('capture_agent_revoked', 'upload_rejected') ORDER BY audit_id`,
        )
        .all() as Array<{ event: string; source_id: string; detail: string }>;
      const both = rows.some((r) => r.event === 'capture_agent_revoked') && rows.some((r) => r.event === 'upload_rejected');
      return both && rows;
    });
    expect(audit.find((r) => r.event === 'capture_agent_revoked')).toMatchObject({ source_id: 'lab-000' });
    expect(JSON.parse(audit.find((r) => r.event === 'capture_agent_revoked')!.detail).purged_asset_ids).toEqual([
      'macos-lab-000-screen',
      'macos-lab-000-call-audio',
    ]);
    expect(audit.filter((r) => r.event === 'upload_rejected').map((r) => JSON.parse(r.detail).reason)).toContain('revoked_token');
    await expectProblem(await post('/v1/capture-agents/nobody/revoke', {}), 404, 'not_found');
  });

  it('re-provisioning rotates: old leases superseded, the agent active again, its heartbeat version bumped', async () => {
    const old = provisioned.agents[1];
    const again = await kheish(
      '/v1/capture-agent-provisions',
      { method: 'POST', json: provisionBody('fleet-rotate', ['lab-000']) },
      CaptureAgentProvisionResponse,
    );
    const fresh = again.agents[0];
    const view = await kheish('/v1/capture-agents/lab-000', {}, CaptureAgentView);
    expect(view).toMatchObject({ status: 'active', heartbeat_state: 'pending', heartbeat_token_version: 2, batch_id: 'fleet-rotate' });
    expect(view.revoked_at_ms).toBeUndefined();
    // History kept: the two leases the revoke ended (not superseded: they were no longer live), then the new one.
    expect(view.leases).toHaveLength(3);
    expect(view.leases[0]).toMatchObject({ source_id: 'macos-lab-000-screen' });
    expect(view.leases[0].revoked_at_ms).toBeDefined();
    expect(view.leases[0].superseded_by).toBeUndefined();
    expect(view.leases[2]).toMatchObject({ lease_id: fresh.sources[0].lease_id, upload_token_version: 2 });
    expect(view.leases[2].revoked_at_ms).toBeUndefined();
    expect(view.source_ids).toEqual(['macos-lab-000-screen']);
    const source = await (await d.req('/v1/observation-sources/macos-lab-000-screen', { token: ADMIN })).json();
    expect(source.status).toBe('active');
    const put = (token: string, key: string) =>
      d.req(`/v1/observation-sources/macos-lab-000-screen/observations`, {
        method: 'POST',
        token,
        json: uploadBody(makePng(2, 2, 9), key),
      });
    await expectProblem(await put(old.sources[0].upload_token, 'old-lease'), 401, 'unauthorized');
    expect((await put(fresh.sources[0].upload_token, 'new-lease')).status).toBe(201);
    expect((await post('/v1/capture-agents/lab-000/heartbeat', {}, fresh.heartbeat_token)).status).toBe(200);
    await expectProblem(await post('/v1/capture-agents/lab-000/heartbeat', {}, old.heartbeat_token), 401, 'unauthorized');
    // Rotating a live agent supersedes its live lease with the new one of the same source.
    const third = await kheish(
      '/v1/capture-agent-provisions',
      { method: 'POST', json: provisionBody('fleet-rotate-2', ['lab-000']) },
      CaptureAgentProvisionResponse,
    );
    const rotated = await kheish('/v1/capture-agents/lab-000', {}, CaptureAgentView);
    expect(rotated.heartbeat_state).toBe('healthy');
    expect(rotated.leases[2]).toMatchObject({ superseded_by: third.agents[0].sources[0].lease_id });
    await expectProblem(await put(fresh.sources[0].upload_token, 'superseded-lease'), 401, 'unauthorized');
  });
});

describe('heartbeat deadlines on an injected clock', () => {
  it('raises an alert only after the deadline, clears it on a heartbeat, audits and emits both', async () => {
    const r = await kheish(
      '/v1/capture-agent-provisions',
      { method: 'POST', json: provisionBody('deadline-batch', ['clocked'], { heartbeat_interval_ms: 1000, heartbeat_grace_ms: 500 }) },
      CaptureAgentProvisionResponse,
    );
    const token = r.agents[0].heartbeat_token;
    const deadline = r.agents[0].heartbeat_deadline_ms;
    const { checkHeartbeats } = await import('../src/capture/heartbeats.js');
    const deps = d.daemon.deps;
    clock.set(deadline);
    expect(checkHeartbeats(deps, clock())).not.toContain('clocked');
    const alertsOf = async () =>
      (await kheish('/v1/capture-alerts', { token: READER }, Vec(CaptureAgentAlertView))).filter((x: any) => x.machine_id === 'clocked');
    expect(await alertsOf()).toEqual([]);
    clock.advance(1);
    // The daemon's own job (what the periodic schedule runs) raises it.
    expect(await d.daemon.jobs.runOnce('capture.heartbeat_deadlines')).toEqual(['clocked']);
    expect(checkHeartbeats(deps, clock())).toEqual([]);
    expect(await alertsOf()).toEqual([
      {
        machine_id: 'clocked',
        kind: 'missing_heartbeat',
        severity: 'warning',
        message: `capture agent clocked missed heartbeat deadline ${deadline}`,
        detected_at_ms: deadline + 1,
        heartbeat_deadline_ms: deadline,
      },
    ]);
    const view = await kheish('/v1/capture-agents/clocked', {}, CaptureAgentView);
    expect(view).toMatchObject({ heartbeat_state: 'missing', heartbeat_missing_since_ms: deadline + 1 });
    const metrics = await (await d.req('/metrics')).text();
    expect(metrics).toMatch(/observd_capture_agents\{state="missing"\} [1-9]/);

    clock.advance(10);
    expect((await post('/v1/capture-agents/clocked/heartbeat', {}, token)).status).toBe(200);
    expect(await alertsOf()).toEqual([]);
    const after = await kheish('/v1/capture-agents/clocked', {}, CaptureAgentView);
    expect(after).toMatchObject({ heartbeat_state: 'healthy', heartbeat_deadline_ms: clock() + 1500 });
    expect(after.heartbeat_missing_since_ms).toBeUndefined();

    const events = deps.events
      .readAfter(0, 1000, { types: ['capture_agent.missing', 'capture_agent.recovered'] })
      .filter((e) => e.data.machine_id === 'clocked');
    expect(events.map((e) => e.type)).toEqual(['capture_agent.missing', 'capture_agent.recovered']);
    const audit = d.daemon.services.db
      .prepare(`SELECT event FROM audit_events WHERE source_id = 'clocked' ORDER BY audit_id`)
      .pluck()
      .all();
    expect(audit).toEqual(['capture_agent_provisioned', 'capture_agent_heartbeat_missing', 'capture_agent_heartbeat_recovered']);

    // Revoked agents raise no alert and leave the list.
    clock.advance(100_000);
    await post('/v1/capture-agents/clocked/revoke', {});
    expect(await alertsOf()).toEqual([]);
  });

  it('an expired credential: heartbeats and uploads get 401 (expired_token), the agent stays active', async () => {
    const r = await kheish(
      '/v1/capture-agent-provisions',
      { method: 'POST', json: provisionBody('ttl-batch', ['short-lived'], { token_ttl_ms: 5000 }) },
      CaptureAgentProvisionResponse,
    );
    const a = r.agents[0];
    clock.set(a.token_expires_at_ms - 1);
    expect((await post('/v1/capture-agents/short-lived/heartbeat', {}, a.heartbeat_token)).status).toBe(200);
    clock.set(a.token_expires_at_ms);
    await expectProblem(await post('/v1/capture-agents/short-lived/heartbeat', {}, a.heartbeat_token), 401, 'unauthorized');
    const up = await d.req(`/v1/observation-sources/${a.sources[0].source_id}/observations`, {
      method: 'POST',
      token: a.sources[0].upload_token,
      json: uploadBody(makePng(2, 2, 77), 'expired'),
    });
    await expectProblem(up, 401, 'unauthorized');
    await new Promise((res) => setTimeout(res, 20));
    const reasons = (
      d.daemon.services.db
        .prepare(`SELECT detail FROM audit_events WHERE event = 'upload_rejected' AND source_id = ?`)
        .pluck()
        .all(a.sources[0].source_id) as string[]
    ).map((x) => JSON.parse(x).reason);
    expect(reasons).toEqual(['expired_token']);
    expect((await kheish('/v1/capture-agents/short-lived', {}, CaptureAgentView)).status).toBe('active');
    // After revoking, its sources may be deleted, and the id becomes an ordinary source again.
    await post('/v1/capture-agents/short-lived/revoke', {});
    expect((await d.req(`/v1/observation-sources/${a.sources[0].source_id}`, { method: 'DELETE', token: ADMIN })).status).toBe(204);
    const again = await post('/v1/observation-sources', {
      source_id: a.sources[0].source_id,
      kind: 'screen_snapshot',
      display_name: 'plain',
      upload_token: 'plain-token-0000000001',
    });
    expect(again.status).toBe(201);
  });

  it('a read right after the deadline shows the alert without the periodic check', async () => {
    const r = await kheish(
      '/v1/capture-agent-provisions',
      { method: 'POST', json: provisionBody('read-batch', ['reader-raised'], { heartbeat_interval_ms: 1, heartbeat_grace_ms: 1 }) },
      CaptureAgentProvisionResponse,
    );
    clock.set(r.agents[0].heartbeat_deadline_ms + 1);
    const alerts = await kheish('/v1/capture-alerts', {}, Vec(CaptureAgentAlertView));
    expect(alerts.map((a: any) => a.machine_id)).toContain('reader-raised');
  });
});
