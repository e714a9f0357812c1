import { createCanvas, loadImage } from '@napi-rs/canvas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { content, derive, upload } from './helpers/derivations.js';
import { createSource } from './helpers/fixtures.js';
import { makePng, makeWav } from './helpers/media.js';

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

let d: TestDaemon;
let screen: string;
let mic: string;
beforeAll(async () => {
  d = await startDaemon();
  screen = await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot', sensitivity: 'internal' });
  mic = await createSource(d, { source_id: 'mic', display_name: 'Mic', kind: 'microphone_segment' });
});
afterAll(() => d?.close());

/** Derives a visual preview of an observation and returns the record and the decoded picture. */
async function preview(observationId: string) {
  const r = await derive(d, 'visual_preview', { type: 'observation', observation_id: observationId });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.status).toBe('completed');
  const bytes = await content(d, r.body.result_asset_id);
  expect(bytes.subarray(0, 8).equals(PNG_MAGIC)).toBe(true);
  const img = await loadImage(bytes);
  return { record: r.body, width: img.width, height: img.height };
}

describe('visual_preview', () => {
  it('downscales a 4000x3000 JPEG to 512x384 PNG, aspect kept', async () => {
    const canvas = createCanvas(4000, 3000);
    const ctx = canvas.getContext('2d');
    const g = ctx.createLinearGradient(0, 0, 4000, 3000);
    g.addColorStop(0, '#204080');
    g.addColorStop(1, '#f0c040');
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, 4000, 3000);
    ctx.fillStyle = '#fff';
    ctx.fillRect(1000, 1000, 2000, 1000);
    const jpeg = await canvas.encode('jpeg', 85);
    const obs = await upload(d, 'screen', screen, jpeg, 'jpeg-1', 'image/jpeg');
    const { record, width, height } = await preview(obs.observation_id);
    expect([width, height]).toEqual([512, 384]);
    expect(record).toMatchObject({
      profile: 'visual_preview',
      subject: { type: 'observation', observation_id: obs.observation_id },
      reused_subject_asset: false,
      cache_status: 'miss',
      error: null,
      backend: null,
    });
    expect(record.derivation_id).toMatch(/^der_[0-9A-Z]{26}$/);
    const meta = await (await d.req(`/v1/assets/${record.result_asset_id}`)).json();
    expect(meta.media_type).toBe('image/png');
  });

  it('keeps a 1x1 PNG at 1x1 (never upscales)', async () => {
    const obs = await upload(d, 'screen', screen, makePng(1, 1, 7), 'png-1x1');
    const { width, height } = await preview(obs.observation_id);
    expect([width, height]).toEqual([1, 1]);
  });

  it('draws a waveform of a whole 30 s WAV within 512 px', async () => {
    const obs = await upload(d, 'mic', mic, makeWav(30), 'wav-30s', 'audio/wav');
    const { width, height } = await preview(obs.observation_id);
    expect(Math.max(width, height)).toBeLessThanOrEqual(512);
    expect(width).toBeGreaterThan(height);
  });

  it('answers a repeat from the cache, and recomputes on force_refresh into the same record', async () => {
    const obs = await upload(d, 'screen', screen, makePng(64, 32, 11), 'png-cache');
    const subject = { type: 'observation', observation_id: obs.observation_id };
    const first = await derive(d, 'visual_preview', subject);
    const again = await derive(d, 'visual_preview', subject);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ derivation_id: first.body.derivation_id, cache_status: 'hit', status: 'completed' });
    expect(again.body.result_asset_id).toBe(first.body.result_asset_id);
    const refreshed = await derive(d, 'visual_preview', subject, '?force_refresh=true');
    expect(refreshed.body).toMatchObject({ derivation_id: first.body.derivation_id, cache_status: 'miss', status: 'completed' });
    expect(refreshed.body.updated_at_ms).toBeGreaterThanOrEqual(first.body.updated_at_ms);
    // Deterministic: the same bytes again.
    expect(refreshed.body.result_asset_id).toBe(first.body.result_asset_id);
    // An asset subject is another subject, so another record.
    const byAsset = await derive(d, 'visual_preview', { type: 'asset', asset_id: obs.asset_id });
    expect(byAsset.body.derivation_id).not.toBe(first.body.derivation_id);
    expect(byAsset.body.result_asset_id).toBe(first.body.result_asset_id);
  });

  it('fails a WebM waveform with a clear error (no offline decoder), as a record, not a 500', async () => {
    const webm = Buffer.concat([Buffer.from([0x1a, 0x45, 0xdf, 0xa3]), Buffer.alloc(64, 1)]);
    const obs = await upload(d, 'mic', mic, webm, 'webm-1', 'audio/webm');
    const r = await derive(d, 'visual_preview', { type: 'observation', observation_id: obs.observation_id });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('failed');
    expect(r.body.error).toMatch(/audio\/webm.*offline/);
    expect(r.body.result_asset_id).toBe('');
  });

  it('fails an undecodable image as a record', async () => {
    const broken = Buffer.concat([makePng(8, 8).subarray(0, 33), Buffer.alloc(40, 0xab)]);
    const obs = await upload(d, 'screen', screen, broken, 'png-broken');
    const r = await derive(d, 'visual_preview', { type: 'observation', observation_id: obs.observation_id });
    expect(r.body.status).toBe('failed');
    expect(r.body.error).toMatch(/decode/);
  });

  it('refuses a preview of text with 400 unsupported_derivation', async () => {
    const obs = await upload(d, 'screen', screen, makePng(2, 2, 3), 'png-text', 'image/png', { canonical_text: 'some words' });
    const r = await derive(d, 'visual_preview', { type: 'asset', asset_id: obs.canonical_text_asset_id });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('unsupported_derivation');
    expect(r.body.detail).toMatch(/visual_preview.*text\/plain/);
  });
});
