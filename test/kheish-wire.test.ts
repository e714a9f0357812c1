import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import {
  decode,
  DerivationView,
  expectKheishOk as ok,
  ListPage,
  ObservationAuditRecord,
  ObservationSourceView,
  ObservationView,
  ProblemDetails,
  RunView,
  RuntimeSettingsView,
  TERMINAL_RUN_STATUSES,
  Vec,
} from './helpers/kheish-decoder.js';
import { makePng } from './helpers/media.js';

/**
 * Replays the Kheish CLI's requests (shared/kheish-wire.md: bodies in serde declaration order,
 * compact JSON, `Content-Type: application/json`, the admin bearer on control-plane calls, only
 * the upload token on uploads, path segments encoded as `url_encode_path_segment` does) and
 * decodes every answer by the reference's serde rules. Any 2xx is success, as the CLI sees it.
 */
const ADMIN = 'kheish-admin-token-0123456789';
const TOKEN = 'kheish-upload-token-0123456789';
const TOKEN_2 = 'kheish-rotated-token-0123456789';

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon({ admin_token: ADMIN });
});
afterAll(() => d.close());

/** `cli/io.rs` url_encode_path_segment: keeps only A–Z a–z 0–9 - _ ~. */
const seg = (s: string) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');

interface Answer {
  status: number;
  json: unknown;
  type: string;
}

/** One request as the CLI sends it: `body` is the exact bytes (a compact serde_json string). */
async function cli(method: string, path: string, body?: string, bearer: string | null = ADMIN): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(d.url + path, { method, headers, body });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined, type: res.headers.get('content-type') ?? '' };
}

/** An error the CLI decodes as ProblemDetails, with the status class (and so exit code) Kheish gives. */
function problem(a: Answer, status: number, domain?: string) {
  expect(a.status, JSON.stringify(a.json)).toBe(status);
  expect(a.type).toMatch(/^application\/problem\+json/);
  expect(decode(a.json, ProblemDetails)).toEqual([]);
  if (domain) expect((a.json as { domain?: string }).domain).toBe(domain);
  return a.json as { code: string; domain?: string };
}

type Obj = Record<string, any>;
const png1 = makePng(4, 3, 7001);
const png2 = makePng(4, 3, 7002);
const ids: { source: string; generated: string; obs: string[]; derivations: string[]; runs: string[] } = {
  source: 'screen-main',
  generated: '',
  obs: [],
  derivations: [],
  runs: [],
};

describe('the Kheish CLI against observd', () => {
  it('observation-sources create (every field, as ObservationSourceCreateArgs sends them)', async () => {
    const body = `{"source_id":"screen-main","display_name":"Main screen","kind":"screen_snapshot","upload_token":"${TOKEN}","sensitivity":"standard","retention_seconds":604800,"max_active_observations":512,"max_active_bytes":536870912,"ingest_rate_limit_window_ms":60000,"ingest_rate_limit_burst":120,"purge_raw_on_retention":false,"allow_materialization":true,"allow_output_delivery":false}`;
    const view = ok<Obj>(await cli('POST', '/v1/observation-sources', body), ObservationSourceView);
    expect(view).toMatchObject({
      source_id: 'screen-main',
      sensitivity: 'standard',
      ingest_rate_limit_window_ms: 60000,
      ingest_rate_limit_burst: 120,
      purge_raw_on_retention: false,
      upload_token_version: 1,
    });
    expect(JSON.stringify(view)).not.toContain(TOKEN);
    // Posting it again (the CLI always resends the token) updates in place: no rotation.
    const again = ok<Obj>(await cli('POST', '/v1/observation-sources', body), ObservationSourceView);
    expect(again.upload_token_version).toBe(1);
    // Without --source-id the daemon names it.
    const anon = `{"display_name":"Webcam","kind":"webcam_snapshot","upload_token":"${TOKEN}","sensitivity":"sensitive","retention_seconds":3600,"max_active_observations":10,"max_active_bytes":10485760,"ingest_rate_limit_window_ms":1000,"ingest_rate_limit_burst":5,"purge_raw_on_retention":true,"allow_materialization":true,"allow_output_delivery":false}`;
    const gen = ok<Obj>(await cli('POST', '/v1/observation-sources', anon), ObservationSourceView);
    expect(gen).toMatchObject({ sensitivity: 'sensitive', ingest_rate_limit_window_ms: 1000, ingest_rate_limit_burst: 5 });
    ids.generated = gen.source_id;
  });

  it('observation-sources list / get (bare arrays; unknown ids are 404)', async () => {
    const all = ok<Obj[]>(await cli('GET', '/v1/observation-sources'), Vec(ObservationSourceView));
    expect(all.map((s) => s.source_id)).toContain('screen-main');
    const q = ok<Obj[]>(await cli('GET', '/v1/observation-sources?query=MAIN'), Vec(ObservationSourceView));
    expect(q.map((s) => s.source_id)).toEqual(['screen-main']);
    ok(await cli('GET', `/v1/observation-sources/${seg('screen-main')}`), ObservationSourceView);
    for (const unknown of ['source-999', 'src_01J0000000000000000000000', 'a.b']) {
      problem(await cli('GET', `/v1/observation-sources/${seg(unknown)}`), 404);
    }
  });

  it('observations ingest without media_type (the CLI default), with --media-type, replay, and refusals', async () => {
    const path = `/v1/observation-sources/${seg('screen-main')}/observations`;
    const inferred = `{"upload":{"file_name":"shot-1.png","content_base64":"${png1.toString('base64')}"},"idempotency_key":"frame-1","captured_at_ms":1767225600000,"stream_id":"display-1","seq_no":1,"canonical_text":"Build failed: 3 errors"}`;
    const a = ok<Obj>(await cli('POST', path, inferred, TOKEN), ObservationView);
    expect(a).toMatchObject({
      media_type: 'image/png',
      stream_id: 'display-1',
      seq_no: 1,
      sensitivity: 'standard',
      retention_state: 'active',
    });
    const declared = `{"upload":{"file_name":"shot-2.png","media_type":"image/png","content_base64":"${png2.toString('base64')}"},"idempotency_key":"frame-2","stream_id":"display-1","seq_no":2}`;
    const b = ok<Obj>(await cli('POST', path, declared, TOKEN), ObservationView);
    ids.obs.push(a.observation_id, b.observation_id);
    // A replay is a 2xx with the stored view.
    const replay = ok<Obj>(await cli('POST', path, inferred, TOKEN), ObservationView);
    expect(replay.observation_id).toBe(a.observation_id);
    // Errors on this route carry Kheish's ingress domain.
    const notMedia = `{"upload":{"file_name":"notes.png","content_base64":"${Buffer.from('plain words').toString('base64')}"},"idempotency_key":"frame-x"}`;
    expect(problem(await cli('POST', path, notMedia, TOKEN), 415, 'observation_ingress').code).toBe('unsupported_media_type');
    const wrongName = `{"upload":{"file_name":"clip.wav","content_base64":"${png1.toString('base64')}"},"idempotency_key":"frame-y"}`;
    problem(await cli('POST', path, wrongName, TOKEN), 400, 'observation_ingress');
    problem(await cli('POST', path, inferred, 'not-the-token-at-all'), 401, 'observation_ingress');
    problem(await cli('POST', `/v1/observation-sources/${seg('source-404')}/observations`, inferred, TOKEN), 401, 'observation_ingress');
    // Unknown fields are ignored, as Kheish ignores them.
    const newer = `{"upload":{"file_name":"shot-3.png","content_base64":"${makePng(2, 2, 7003).toString('base64')}","checksum":"x"},"idempotency_key":"frame-3","stream_id":"display-2","future_field":{"a":1}}`;
    ids.obs.push(ok<Obj>(await cli('POST', path, newer, TOKEN), ObservationView).observation_id);
  });

  it('observations list with each filter the CLI adds, in its order, and get', async () => {
    const all = ok<Obj[]>(await cli('GET', '/v1/observations'), Vec(ObservationView));
    expect(all.map((o) => o.observation_id)).toEqual(expect.arrayContaining(ids.obs));
    const bySource = ok<Obj[]>(await cli('GET', '/v1/observations?source_id=screen-main'), Vec(ObservationView));
    expect(bySource).toHaveLength(3);
    const byStream = ok<Obj[]>(await cli('GET', '/v1/observations?source_id=screen-main&stream_id=display-1'), Vec(ObservationView));
    expect(byStream.map((o) => o.observation_id)).toEqual([ids.obs[0], ids.obs[1]]);
    const bounded = ok<Obj[]>(
      await cli('GET', '/v1/observations?source_id=screen-main&after_ms=1767225600000&before_ms=1767225600000'),
      Vec(ObservationView),
    );
    expect(bounded.map((o) => o.observation_id)).toEqual([ids.obs[0]]);
    ok(await cli('GET', '/v1/observations?source_id=screen-main&include_purged=true'), Vec(ObservationView));
    problem(await cli('GET', '/v1/observations?stream_id=display-1'), 400);
    ok(await cli('GET', `/v1/observations/${seg(ids.obs[0])}`), ObservationView);
    for (const unknown of ['observation-1', 'obs_nope', 'obs_01J0000000000000000000000A'])
      problem(await cli('GET', `/v1/observations/${seg(unknown)}`), 404);
  });

  it('observation-audit with the CLI limit, source and event filters', async () => {
    const all = ok<Obj[]>(await cli('GET', '/v1/observation-audit?limit=100'), Vec(ObservationAuditRecord));
    expect(all.length).toBeGreaterThan(3);
    const mine = ok<Obj[]>(await cli('GET', '/v1/observation-audit?source_id=screen-main&limit=100'), Vec(ObservationAuditRecord));
    expect(mine.every((e) => e.source_id === 'screen-main')).toBe(true);
    const succeeded = ok<Obj[]>(
      await cli('GET', '/v1/observation-audit?source_id=screen-main&event=upload_succeeded&limit=100'),
      Vec(ObservationAuditRecord),
    );
    expect(succeeded).toHaveLength(3);
    expect(succeeded.every((e) => e.event === 'upload_succeeded' && e.media_type === 'image/png')).toBe(true);
    const replayed = ok<Obj[]>(await cli('GET', '/v1/observation-audit?event=upload_replayed&limit=100'), Vec(ObservationAuditRecord));
    expect(replayed.map((e) => e.observation_id)).toEqual([ids.obs[0]]);
    const rejected = ok<Obj[]>(await cli('GET', '/v1/observation-audit?event=upload_rejected&limit=100'), Vec(ObservationAuditRecord));
    const reasons = [
      'invalid_source_id',
      'missing_or_invalid_token',
      'invalid_token',
      'expired_token',
      'revoked_token',
      'source_not_active',
      'idempotency_conflict',
      'unsupported_media_type',
      'invalid_base64',
      'invalid_request',
      'rate_limited',
    ];
    expect(rejected.map((e) => e.reason).sort()).toEqual(['invalid_token', 'unsupported_media_type', 'unsupported_media_type']);
    for (const e of rejected) expect(reasons).toContain(e.reason);
    const created = ok<Obj[]>(await cli('GET', '/v1/observation-audit?event=source_created&limit=100'), Vec(ObservationAuditRecord));
    expect(created).toHaveLength(2);
  });

  it('derivations create / get / list', async () => {
    const preview = ok<Obj>(
      await cli(
        'POST',
        '/v1/derivations',
        `{"profile":"visual_preview","subject":{"type":"observation","observation_id":"${ids.obs[0]}"}}`,
      ),
      DerivationView,
    );
    expect(preview).toMatchObject({ status: 'completed', cache_status: 'miss', profile_version: 1 });
    const text = ok<Obj>(
      await cli(
        'POST',
        '/v1/derivations',
        `{"profile":"canonical_text","subject":{"type":"observation","observation_id":"${ids.obs[0]}"}}`,
      ),
      DerivationView,
    );
    expect(text.status).toBe('completed');
    const hit = ok<Obj>(
      await cli(
        'POST',
        '/v1/derivations?force_refresh=false',
        `{"profile":"visual_preview","subject":{"type":"asset","asset_id":"${preview.result_asset_id}"}}`,
      ),
      DerivationView,
    );
    expect(hit.status).toBe('completed');
    ids.derivations.push(preview.derivation_id, text.derivation_id);
    // `derivations get` does not encode the id.
    ok(await cli('GET', `/v1/derivations/${preview.derivation_id}`), DerivationView);
    const listed = ok<Obj[]>(await cli('GET', '/v1/derivations'), Vec(DerivationView));
    expect(listed.map((x) => x.derivation_id)).toEqual(expect.arrayContaining(ids.derivations));
    ok(await cli('GET', `/v1/derivations?query=${ids.obs[0]}`), Vec(DerivationView));
    problem(await cli('GET', '/v1/derivations/derivation-1'), 404);
    problem(
      await cli(
        'POST',
        '/v1/derivations',
        '{"profile":"canonical_text","subject":{"type":"observation","observation_id":"observation-1"}}',
      ),
      404,
    );
  });

  it('runtime, then materialize by ids and latest_from_stream, then poll the run', async () => {
    const runtime = ok<Obj>(await cli('GET', '/v1/runtime'), RuntimeSettingsView);
    expect(runtime.submitter.name).toBe('queue');

    const request = (target: string, text: string) =>
      `{"source_plugin":null,"source_kind":null,"actor_id":"${target}","content":"${text}","generation":null,"metadata":null,"reply_address":null}`;
    const byIds = `{"target_session_id":"session-7","selection":{"type":"observation_ids","observation_ids":["${ids.obs[1]}","${ids.obs[0]}"]},"request":${request('session-7', 'What went wrong?')},"include_raw_assets":true,"fail_when_empty":true}`;
    const run = ok<Obj>(await cli('POST', '/v1/observation-materializations', byIds), RunView);
    expect(run).toMatchObject({
      session_id: 'session-7',
      kind: 'observation_materialization',
      status: 'queued',
      request: { source_plugin: 'daemon', source_kind: 'observation_materialization', actor_id: ids.obs[1] },
    });
    const stream = `{"target_session_id":"session-7","selection":{"type":"latest_from_stream","source_id":"screen-main","stream_id":"display-1","max_observations":3},"request":${request('session-7', 'And now?')},"include_raw_assets":false,"raw_asset_policy":"never","fail_when_empty":true}`;
    const latest = ok<Obj>(await cli('POST', '/v1/observation-materializations', stream), RunView);
    expect(latest.request.actor_id).toBe('screen-main:display-1');
    ids.runs.push(run.run_id, latest.run_id);

    // `--wait`: poll until terminal; an agent runtime completes the queued run meanwhile.
    const polled = ok<Obj>(await cli('GET', `/v1/runs/${seg(run.run_id)}`), RunView);
    expect(polled.status).toBe('queued');
    expect((await cli('POST', `/v1/runs/${run.run_id}/claim`)).status).toBe(200);
    ok(await cli('GET', `/v1/runs/${seg(run.run_id)}`), RunView);
    expect((await cli('POST', `/v1/runs/${run.run_id}/complete`, '{"output":"Three type errors."}')).status).toBe(200);
    const done = ok<Obj>(await cli('GET', `/v1/runs/${seg(run.run_id)}`), RunView);
    expect(TERMINAL_RUN_STATUSES).toContain(done.status);
    const runs = ok<Obj[]>(await cli('GET', '/v1/runs'), Vec(RunView));
    expect(runs.map((r) => r.run_id)).toEqual(expect.arrayContaining(ids.runs));
    problem(await cli('GET', '/v1/runs/run-1'), 404);
    problem(await cli('POST', '/v1/observation-materializations', byIds.replace(ids.obs[1], 'observation-1')), 404);
  });

  it('rotate-token and revoke-token ({} and {reason})', async () => {
    const rotated = ok<Obj>(
      await cli('POST', `/v1/observation-sources/${seg('screen-main')}/rotate-token`, `{"upload_token":"${TOKEN_2}","grace_period_ms":0}`),
      ObservationSourceView,
    );
    expect(rotated.upload_token_version).toBe(2);
    expect(rotated.last_token_rotated_at_ms).toEqual(expect.any(Number));
    const revoked = ok<Obj>(await cli('POST', `/v1/observation-sources/${seg('screen-main')}/revoke-token`, '{}'), ObservationSourceView);
    expect(revoked.upload_token_revoked_at_ms).toEqual(expect.any(Number));
    const body = `{"upload":{"file_name":"late.png","content_base64":"${makePng(1, 1, 7009).toString('base64')}"},"idempotency_key":"late"}`;
    problem(await cli('POST', `/v1/observation-sources/${seg('screen-main')}/observations`, body, TOKEN_2), 401, 'observation_ingress');
    ok(await cli('POST', `/v1/observation-sources/${seg(ids.generated)}/revoke-token`, '{"reason":"laptop lost"}'), ObservationSourceView);
    const events = ok<Obj[]>(await cli('GET', '/v1/observation-audit?event=source_token_revoked&limit=100'), Vec(ObservationAuditRecord));
    expect(events.map((e) => e.reason)).toContain('laptop lost');
    const rejections = ok<Obj[]>(
      await cli('GET', '/v1/observation-audit?source_id=screen-main&event=upload_rejected&limit=1'),
      Vec(ObservationAuditRecord),
    );
    expect(rejections[0].reason).toBe('revoked_token');
  });

  it('opt-in paging answers Kheish ListPage envelopes', async () => {
    for (const path of ['/v1/observation-sources', '/v1/observations', '/v1/observation-audit', '/v1/derivations', '/v1/runs']) {
      const page = await cli('GET', `${path}?page=true&limit=1`);
      expect(decode(page.json, ListPage('any')), path).toEqual([]);
      expect((page.json as Obj).pagination).toMatchObject({ limit: 1, has_more: true });
    }
    ok(await cli('GET', '/v1/observations?page=true'), ListPage(ObservationView));
    ok(await cli('GET', '/v1/observation-sources?page=true'), ListPage(ObservationSourceView));
  });
});
