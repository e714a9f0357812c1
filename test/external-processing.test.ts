import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObservationView } from '../src/observations/schemas.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { derive, eventually, upload } from './helpers/derivations.js';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fake-openai.js';
import { createSource } from './helpers/fixtures.js';
import { makePng, makeWav } from './helpers/media.js';
import { getRun, materialize } from './helpers/runs.js';
import { startReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

type Json = Record<string, any>;

/** A sensitivity whose data may leave the machine by default (Kheish's "standard"). */
const STANDARD = 'standard';
const SECRET_TEXT = 'SECRET-PASSWORD-MARKER-7731';
const PUBLIC_TEXT = 'ordinary-public-text-4410';
const secretPng = makePng(5, 5, 42);
const publicPng = makePng(5, 5, 43);

const source = async (d: TestDaemon, path: string) => (await (await d.req(`/v1/observation-sources/${path}`)).json()) as Json;

describe('the allow_external_processing source setting', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(() => d.close());

  it('defaults to false for sensitive sources and true for standard ones, follows the sensitivity until set, and null resets it', async () => {
    await createSource(d, { source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot' });
    expect(await source(d, 'cam')).toMatchObject({ sensitivity: 'sensitive', allow_external_processing: false });
    await createSource(d, { source_id: 'std', display_name: 'Std', kind: 'screen_snapshot', sensitivity: STANDARD });
    expect((await source(d, 'std')).allow_external_processing).toBe(true);

    // Unset, it follows the sensitivity, also after other settings change.
    await d.req('/v1/observation-sources/std', { method: 'PATCH', json: { display_name: 'renamed' } });
    await d.req('/v1/observation-sources/std', { method: 'PATCH', json: { sensitivity: 'sensitive' } });
    expect((await source(d, 'std')).allow_external_processing).toBe(false);

    const on = await d.req('/v1/observation-sources/cam', { method: 'PATCH', json: { allow_external_processing: true } });
    expect(((await on.json()) as Json).allow_external_processing).toBe(true);
    await d.req('/v1/observation-sources/cam', { method: 'PATCH', json: { display_name: 'still allowed' } });
    expect((await source(d, 'cam')).allow_external_processing).toBe(true);
    await d.req('/v1/observation-sources/cam', { method: 'PATCH', json: { allow_external_processing: null } });
    expect((await source(d, 'cam')).allow_external_processing).toBe(false);
    const bad = await d.req('/v1/observation-sources/cam', { method: 'PATCH', json: { allow_external_processing: 'yes' } });
    expect(bad.status).toBe(400);
  });
});

describe('the transcription backend', () => {
  let fake: FakeOpenAI;
  let d: TestDaemon;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fake.reply = { text: 'transcribed words' };
    d = await startDaemon({ transcription: { base_url: fake.baseUrl, model: 'whisper-x', max_retries: 0 } });
  });
  afterAll(async () => {
    await d?.close();
    await fake?.close();
  });

  it('never receives audio of a sensitive source that does not allow it; the derivation records that it was withheld', async () => {
    const token = await createSource(d, { source_id: 'mic', display_name: 'Mic', kind: 'microphone_segment' });
    const seg = await upload(d, 'mic', token, makeWav(0.3), 'seg-1', 'audio/wav');
    const r = await derive(d, 'canonical_text', { type: 'observation', observation_id: seg.observation_id });
    expect(r.body).toMatchObject({ status: 'failed', external_processing_withheld: true, backend: null });
    expect(r.body.error).toMatch(/withheld.*allow_external_processing/);
    expect(fake.calls).toHaveLength(0);
    // Reads of the record say so too.
    expect(((await (await d.req(`/v1/derivations/${r.body.derivation_id}`)).json()) as Json).external_processing_withheld).toBe(true);

    // Once the source allows it, a retry sends it.
    await d.req('/v1/observation-sources/mic', { method: 'PATCH', json: { allow_external_processing: true } });
    const again = await derive(d, 'canonical_text', { type: 'observation', observation_id: seg.observation_id }, '?retry_failed=true');
    expect(again.body).toMatchObject({ status: 'completed', external_processing_withheld: false });
    expect(fake.calls).toHaveLength(1);
  });

  it('transcribes standard sources by default', async () => {
    const token = await createSource(d, { source_id: 'mic-std', display_name: 'Mic', kind: 'microphone_segment', sensitivity: STANDARD });
    const seg = await upload(d, 'mic-std', token, makeWav(0.35), 'seg-2', 'audio/wav');
    const before = fake.calls.length;
    const r = await derive(d, 'canonical_text', { type: 'observation', observation_id: seg.observation_id });
    expect(r.body).toMatchObject({ status: 'completed', external_processing_withheld: false });
    expect(fake.calls).toHaveLength(before + 1);
  });
});

/** A sensitive source (default settings) and a standard one, each with one screenshot carrying uploader text. */
async function twoSources(d: TestDaemon): Promise<{ secret: ObservationView; open: ObservationView }> {
  const t1 = await createSource(d, { source_id: 'private', display_name: 'Private', kind: 'screen_snapshot' });
  const t2 = await createSource(d, { source_id: 'open', display_name: 'Open', kind: 'screen_snapshot', sensitivity: STANDARD });
  const secret = await upload(d, 'private', t1, secretPng, 's1', 'image/png', { canonical_text: SECRET_TEXT });
  const open = await upload(d, 'open', t2, publicPng, 'o1', 'image/png', { canonical_text: PUBLIC_TEXT });
  return { secret, open };
}

const request = (ids: string[]) => ({
  target_session_id: 'sess',
  selection: { type: 'observation_ids', observation_ids: ids },
  raw_asset_policy: 'always',
  request: { content: 'Summarise.', generation: { model: 'm' } },
});

function expectWithheld(run: Json, secretId: string, openId: string) {
  expect(run.external_processing_withheld).toEqual([secretId]);
  const [s, o] = run.input.observations as Json[];
  expect(s).toMatchObject({ observation_id: secretId, text_origin: 'withheld', canonical_text: null, attachment_asset_id: null });
  expect(s.text_note).toMatch(/allow external processing/);
  expect(o).toMatchObject({ observation_id: openId, text_origin: 'uploader', canonical_text: PUBLIC_TEXT });
  expect(run.input.attachments.map((a: Json) => a.observation_id)).toEqual([openId]);
}

describe('the openai run submitter', () => {
  let fake: FakeOpenAI;
  let d: TestDaemon;
  beforeAll(async () => {
    fake = await startFakeOpenAI();
    d = await startDaemon({ runs: { submitter: 'openai', openai: { base_url: fake.baseUrl, model: 'm', max_retries: 0 } } });
  });
  afterAll(async () => {
    await d?.close();
    await fake?.close();
  });

  it('gets neither the text nor the image of a sensitive source, and the run lists what was withheld', async () => {
    const { secret, open } = await twoSources(d);
    const r = await materialize(d, request([secret.observation_id, open.observation_id]));
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expectWithheld(r.body, secret.observation_id, open.observation_id);
    await eventually(async () => ['completed', 'failed'].includes((await getRun(d, r.body.run_id)).body.status));
    expect(fake.chatCalls).toHaveLength(1);
    const sent = fake.chatCalls[0].raw;
    expect(sent).toContain(PUBLIC_TEXT);
    expect(sent).toContain(publicPng.toString('base64'));
    expect(sent).not.toContain(SECRET_TEXT);
    expect(sent).not.toContain(secretPng.toString('base64'));
    expect((await getRun(d, r.body.run_id)).body.external_processing_withheld).toEqual([secret.observation_id]);
  });
});

describe('the http run submitter', () => {
  let receiver: WebhookReceiver;
  let d: TestDaemon;
  beforeAll(async () => {
    receiver = await startReceiver();
    d = await startDaemon({ runs: { submitter: 'http', http: { url: receiver.url, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' } } });
  });
  afterAll(async () => {
    await d?.close();
    await receiver?.close();
  });

  it('POSTs a run without the sensitive source text, naming it as withheld', async () => {
    const { secret, open } = await twoSources(d);
    const r = await materialize(d, request([secret.observation_id, open.observation_id]));
    expect(r.status).toBe(202);
    await receiver.waitFor(1);
    const body = receiver.received[0].body;
    expect(body).toContain(PUBLIC_TEXT);
    expect(body).not.toContain(SECRET_TEXT);
    expectWithheld(JSON.parse(body), secret.observation_id, open.observation_id);
  });
});

describe('the queue submitter (runs stay inside observd)', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(() => d.close());

  it('withholds nothing', async () => {
    const { secret, open } = await twoSources(d);
    const r = await materialize(d, request([secret.observation_id, open.observation_id]));
    expect(r.status).toBe(202);
    expect(r.body.external_processing_withheld).toEqual([]);
    expect(r.body.input!.observations[0]).toMatchObject({ text_origin: 'uploader', canonical_text: SECRET_TEXT });
  });
});
