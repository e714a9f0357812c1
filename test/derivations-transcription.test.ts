import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../src/config/schema.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { content, derive, eventually, upload } from './helpers/derivations.js';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fake-openai.js';
import { createSource } from './helpers/fixtures.js';
import { makeWav } from './helpers/media.js';

const KEY_ENV = 'OBSERVD_TEST_STT_KEY';
process.env[KEY_ENV] = 'sk-test-not-a-real-key';

let fake: FakeOpenAI;
let dataDir: string;
let d: TestDaemon;
let token: string;

const transcription = (model: string): ConfigInput['transcription'] => ({
  base_url: fake.baseUrl,
  model,
  api_key_env: KEY_ENV,
  max_retries: 0,
});

/** A distinct, non-silent WAV per seed. */
const wav = (seed: number) => makeWav(0.2 + seed / 100);

beforeAll(async () => {
  fake = await startFakeOpenAI();
  dataDir = mkdtempSync(join(tmpdir(), 'observd-stt-'));
  d = await startDaemon({ transcription: transcription('whisper-a') }, { dataDir });
  token = await createSource(d, { source_id: 'mic', display_name: 'Mic', kind: 'microphone_segment', allow_external_processing: true });
});
afterAll(async () => {
  await d?.close();
  await fake?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const observationSubject = (o: { observation_id: string }) => ({ type: 'observation', observation_id: o.observation_id });

describe('canonical_text by transcription', () => {
  let firstObservation: { observation_id: string };
  let firstDerivation: string;

  it('sends the audio and model to the configured backend and stores its text', async () => {
    const audio = wav(1);
    firstObservation = await upload(d, 'mic', token, audio, 'seg-1', 'audio/wav');
    const r = await derive(d, 'canonical_text', observationSubject(firstObservation));
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({
      status: 'completed',
      cache_status: 'miss',
      reused_subject_asset: false,
      backend: { kind: 'openai_compatible', route_id: 'transcription', model: 'whisper-a' },
    });
    firstDerivation = r.body.derivation_id;
    expect((await content(d, r.body.result_asset_id)).toString()).toBe('hello from the fake transcriber');
    expect(fake.calls).toHaveLength(1);
    const call = fake.calls[0];
    expect(call.model).toBe('whisper-a');
    expect(call.file.equals(audio)).toBe(true);
    expect(call.fileType).toBe('audio/wav');
    expect(call.authorization).toBe(`Bearer ${process.env[KEY_ENV]}`);
  });

  it('computes 16 concurrent identical requests once', async () => {
    const obs = await upload(d, 'mic', token, wav(2), 'seg-2', 'audio/wav');
    const before = fake.calls.length;
    fake.hold();
    const requests = Array.from({ length: 16 }, () => derive(d, 'canonical_text', { type: 'asset', asset_id: obs.asset_id }));
    await fake.waitForCalls(before + 1);
    fake.release();
    const results = await Promise.all(requests);
    expect(new Set(results.map((r) => r.body.derivation_id)).size).toBe(1);
    expect(results.every((r) => r.status === 200 && r.body.status === 'completed')).toBe(true);
    expect(fake.calls.length - before).toBe(1);
    const listed = await (await d.req(`/v1/derivations?query=${obs.asset_id}`)).json();
    expect(listed).toHaveLength(1);
  });

  it('answers silent audio with empty text without calling the backend', async () => {
    const obs = await upload(d, 'mic', token, makeWav(2, 8000, true), 'seg-silent', 'audio/wav');
    const before = fake.calls.length;
    const r = await derive(d, 'canonical_text', observationSubject(obs));
    expect(r.body).toMatchObject({ status: 'completed', backend: null });
    expect((await content(d, r.body.result_asset_id)).length).toBe(0);
    expect(fake.calls.length).toBe(before);
  });

  it('keeps a failure cached until retry_failed asks again', async () => {
    const obs = await upload(d, 'mic', token, wav(3), 'seg-fail', 'audio/wav');
    fake.reply = { status: 500 };
    const failed = await derive(d, 'canonical_text', observationSubject(obs));
    expect(failed.status).toBe(200);
    expect(failed.body).toMatchObject({
      status: 'failed',
      result_asset_id: '',
      backend: { kind: 'openai_compatible', model: 'whisper-a' },
    });
    expect(failed.body.error).toMatch(/500/);
    fake.reply = { text: 'second time lucky' };
    const calls = fake.calls.length;
    const cached = await derive(d, 'canonical_text', observationSubject(obs));
    expect(cached.body).toMatchObject({ derivation_id: failed.body.derivation_id, status: 'failed', cache_status: 'hit' });
    expect(fake.calls.length).toBe(calls);
    const retried = await derive(d, 'canonical_text', observationSubject(obs), '?retry_failed=true');
    expect(retried.body).toMatchObject({
      derivation_id: failed.body.derivation_id,
      status: 'completed',
      cache_status: 'miss',
      error: null,
    });
    expect((await content(d, retried.body.result_asset_id)).toString()).toBe('second time lucky');
    // retry_failed leaves a completed record alone.
    const done = await derive(d, 'canonical_text', observationSubject(obs), '?retry_failed=true');
    expect(done.body.cache_status).toBe('hit');
    expect(fake.calls.length).toBe(calls + 1);
    fake.reply = { text: 'hello from the fake transcriber' };
  });

  it('moves processing_status pending -> processing -> completed for auto_derive', async () => {
    const autoToken = await createSource(d, {
      source_id: 'mic-auto',
      display_name: 'Mic',
      kind: 'microphone_segment',
      auto_derive: ['canonical_text'],
      allow_external_processing: true,
    });
    fake.hold();
    const obs = await upload(d, 'mic-auto', autoToken, wav(4), 'auto-1', 'audio/wav');
    expect(obs.processing_status).toBe('pending');
    const read = async () => (await (await d.req(`/v1/observations/${obs.observation_id}`)).json()).processing_status;
    await eventually(async () => (await read()) === 'processing');
    fake.release();
    await eventually(async () => (await read()) === 'completed');
    const list = await (await d.req(`/v1/derivations?query=${obs.observation_id}`)).json();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ profile: 'canonical_text', status: 'completed', cache_status: null });
  });

  it('treats another model as another cache key: a new record, computed again', async () => {
    await d.close();
    d = await startDaemon({ transcription: transcription('whisper-b') }, { dataDir });
    const before = fake.calls.length;
    const r = await derive(d, 'canonical_text', observationSubject(firstObservation));
    expect(r.body).toMatchObject({ status: 'completed', cache_status: 'miss', backend: { kind: 'openai_compatible', model: 'whisper-b' } });
    expect(r.body.derivation_id).not.toBe(firstDerivation);
    expect(fake.calls.length).toBe(before + 1);
    expect(fake.calls.at(-1)!.model).toBe('whisper-b');
    // The first model's record is still there, untouched.
    expect((await (await d.req(`/v1/derivations/${firstDerivation}`)).json()).backend.model).toBe('whisper-a');
  });
});

describe('canonical_text without a usable transcription backend', () => {
  it('fails the derivation naming the missing settings, and fails auto_derive', async () => {
    const bare = await startDaemon();
    try {
      const t = await createSource(bare, {
        source_id: 'mic',
        display_name: 'Mic',
        kind: 'microphone_segment',
        auto_derive: ['canonical_text'],
      });
      const obs = await upload(bare, 'mic', t, wav(5), 'seg-1', 'audio/wav');
      const r = await derive(bare, 'canonical_text', observationSubject(obs));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ status: 'failed', backend: null, result_asset_id: '' });
      expect(r.body.error).toContain('transcription.base_url');
      expect(r.body.error).toContain('transcription.model');
      await eventually(
        async () => (await (await bare.req(`/v1/observations/${obs.observation_id}`)).json()).processing_status === 'failed',
      );
    } finally {
      await bare.close();
    }
  });

  it('fails naming the API key variable when it is not set', async () => {
    const noKey = await startDaemon({ transcription: { base_url: fake.baseUrl, model: 'm', api_key_env: 'OBSERVD_TEST_UNSET_KEY' } });
    try {
      const t = await createSource(noKey, { source_id: 'mic', display_name: 'Mic', kind: 'microphone_segment' });
      const obs = await upload(noKey, 'mic', t, wav(6), 'seg-1', 'audio/wav');
      const calls = fake.calls.length;
      const r = await derive(noKey, 'canonical_text', observationSubject(obs));
      expect(r.body.status).toBe('failed');
      expect(r.body.error).toContain('OBSERVD_TEST_UNSET_KEY');
      expect(fake.calls.length).toBe(calls);
    } finally {
      await noKey.close();
    }
  });
});
