import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObservationView } from '../src/observations/schemas.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { eventually, upload } from './helpers/derivations.js';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fake-openai.js';
import { createSource } from './helpers/fixtures.js';
import { byIds, eventsOf, getRun, materialize, runAction, type RunBody } from './helpers/runs.js';
import { textPng } from './helpers/text-png.js';

const KEY_ENV = 'OBSERVD_TEST_RUNS_KEY';
process.env[KEY_ENV] = 'sk-runs-test-not-a-real-key';

type Part = { type: string; text?: string; image_url?: { url: string } };

let fake: FakeOpenAI;
let d: TestDaemon;
let png: Buffer;
let shot: ObservationView;

const settled = (runId: string, daemon = d) =>
  eventually(async () => {
    const r = await getRun(daemon, runId);
    return r.body.status === 'completed' || r.body.status === 'failed' ? r.body : undefined;
  });

beforeAll(async () => {
  fake = await startFakeOpenAI();
  d = await startDaemon({
    runs: { submitter: 'openai', openai: { base_url: fake.baseUrl, model: 'config-model', api_key_env: KEY_ENV, max_retries: 0 } },
  });
  const token = await createSource(d, {
    source_id: 'screen',
    display_name: 'Screen',
    kind: 'screen_snapshot',
    allow_output_delivery: true,
    allow_external_processing: true,
  });
  png = await textPng(['The quick brown fox jumps over the lazy dog']);
  // No uploader text: the run derives it by OCR on demand.
  shot = await upload(d, 'screen', token, png, 'fox', 'image/png', { stream_id: 'main', seq_no: 1 });
});
afterAll(async () => {
  await d?.close();
  await fake?.close();
});

describe('the openai submitter', () => {
  let run: RunBody;

  it('sends the header, context lines, OCR text and the image as a data URL, and stores output and usage', async () => {
    const r = await materialize(d, {
      target_session_id: 'incident-review',
      selection: { type: 'latest_from_stream', source_id: 'screen', stream_id: 'main', max_observations: 2 },
      request: {
        content: 'What is on the screen?',
        generation: {
          model: 'gpt-5.4',
          tool_choice: 'auto',
          allow_parallel_tool_calls: true,
          response_format: { type: 'text' },
          temperature: 0.1,
        },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.submitter).toBe('openai');
    expect(r.body.input!.observations[0]).toMatchObject({ text_origin: 'derived' });
    expect(r.body.input!.observations[0].canonical_text!.toLowerCase()).toContain('quick brown fox');

    run = await settled(r.body.run_id);
    expect(run).toMatchObject({
      status: 'completed',
      output: 'hello from the fake chat model',
      usage: { input_tokens: 11, output_tokens: 7, total_tokens: 18 },
      error: null,
      attempts: 1,
    });
    expect(run.finished_at_ms).not.toBeNull();

    expect(fake.chatCalls).toHaveLength(1);
    const call = fake.chatCalls[0];
    expect(call.authorization).toBe(`Bearer ${process.env[KEY_ENV]}`);
    const body = call.body as {
      model: string;
      messages: Array<{ role: string; content: Part[] }>;
      response_format?: unknown;
      temperature?: number;
      tool_choice?: unknown;
    };
    expect(body.model).toBe('gpt-5.4');
    expect(body.response_format).toEqual({ type: 'text' });
    expect(body.temperature).toBe(0.1);
    expect(body.tool_choice).toBeUndefined();
    expect(body.messages).toHaveLength(1);
    const parts = body.messages[0].content;
    const texts = parts.filter((p) => p.type === 'text').map((p) => p.text!);
    expect(texts[0].startsWith('[observd] UNTRUSTED EVIDENCE FOLLOWS.')).toBe(true);
    expect(texts[0]).toContain(`Observation 1 of 1: id=${shot.observation_id} source=screen stream=main seq_no=1`);
    expect(texts[0].toLowerCase()).toContain('quick brown fox');
    const images = parts.filter((p) => p.type === 'image_url');
    expect(images).toEqual([{ type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }]);
    // Evidence (text and image) first, then the closing line, then the caller's request.
    const kinds = parts.map((p) => (p.type === 'image_url' ? 'image' : p.text));
    expect(kinds.indexOf('image')).toBeLessThan(kinds.indexOf(run.input!.footer));
    expect(kinds[kinds.length - 1]).toBe('What is on the screen?');
  });

  it('emits run.completed with the output, since every source allows output delivery', () => {
    const ev = eventsOf(d, 'run.completed').find((e) => e.data.run_id === run.run_id)!;
    expect(ev.data).toMatchObject({ status: 'completed', output_delivery_allowed: true, output: 'hello from the fake chat model' });
  });

  it('falls back to the configured model and keeps output out of events when delivery is not allowed', async () => {
    const token = await createSource(d, { source_id: 'private', display_name: 'Private', kind: 'screen_snapshot' });
    const o = await upload(d, 'private', token, await textPng(['Private']), 'p-1', 'image/png', { canonical_text: 'private words' });
    const r = await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'never' }));
    const done = await settled(r.body.run_id);
    expect(done).toMatchObject({ status: 'completed', output: 'hello from the fake chat model', output_delivery_allowed: false });
    const call = fake.chatCalls[fake.chatCalls.length - 1].body as { model: string; messages: Array<{ content: Part[] }> };
    expect(call.model).toBe('config-model');
    expect(call.messages[0].content.some((p) => p.type === 'image_url')).toBe(false);
    const ev = eventsOf(d, 'run.completed').find((e) => e.data.run_id === r.body.run_id)!;
    expect(ev.data.output_delivery_allowed).toBe(false);
    expect(ev.data).not.toHaveProperty('output');
  });

  it('marks the run failed with the error when the API answers 500', async () => {
    fake.chatReply = { status: 500 };
    try {
      const r = await materialize(d, byIds([shot.observation_id]));
      expect(r.status).toBe(202);
      const done = await settled(r.body.run_id);
      expect(done.status).toBe('failed');
      expect(done.error).toMatch(/500/);
      expect(done.output).toBeNull();
      const ev = eventsOf(d, 'run.failed').find((e) => e.data.run_id === r.body.run_id)!;
      expect(ev.data).toMatchObject({ status: 'failed', error: done.error });
    } finally {
      fake.chatReply = { content: 'hello from the fake chat model', usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } };
    }
  });

  it('does not let an agent claim or complete a run the openai submitter carries', async () => {
    fake.hold();
    try {
      const r = await materialize(d, byIds([shot.observation_id]));
      expect((await runAction(d, r.body.run_id, 'claim')).status).toBe(409);
      expect((await runAction(d, r.body.run_id, 'complete', { output: 'mine' })).status).toBe(409);
    } finally {
      fake.release();
    }
  });
});

describe('a run cut off by a shutdown', () => {
  it('is asked again when the daemon starts next', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'observd-runs-restart-'));
    const config = { runs: { submitter: 'openai' as const, openai: { base_url: fake.baseUrl, api_key_env: KEY_ENV, max_retries: 0 } } };
    try {
      const first = await startDaemon(config, { dataDir });
      const token = await createSource(first, {
        source_id: 'screen',
        display_name: 'Screen',
        kind: 'screen_snapshot',
        allow_external_processing: true,
      });
      const o = await upload(first, 'screen', token, png, 'again', 'image/png', { canonical_text: 'words' });
      const calls = fake.chatCalls.length;
      fake.hold();
      const r = await materialize(first, byIds([o.observation_id], { request: { content: 'x', generation: { model: 'm' } } }));
      await eventually(async () => fake.chatCalls.length > calls);
      expect((await getRun(first, r.body.run_id)).body.status).toBe('running');
      await first.close();
      fake.release();

      const second = await startDaemon(config, { dataDir });
      try {
        const done = await settled(r.body.run_id, second);
        expect(done).toMatchObject({ status: 'completed', output: 'hello from the fake chat model', attempts: 2 });
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
