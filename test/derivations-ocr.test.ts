import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OCR_LANG_PATH } from '../src/derivations/ocr.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { content, derive, eventually, upload } from './helpers/derivations.js';
import { createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { textPng } from './helpers/text-png.js';

// Any attempt to reach the network through a proxy-aware client goes nowhere: OCR must not need it.
for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) process.env[k] = 'http://127.0.0.1:9';

const SENTENCE = 'The quick brown fox jumps over the lazy dog';

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

let d: TestDaemon;
let token: string;
let dataDir: string;
beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'observd-ocr-'));
  d = await startDaemon({ derivations: { ocr_workers: 1 } }, { dataDir });
  token = await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot' });
});
afterAll(async () => {
  await d?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('canonical_text by OCR (offline)', () => {
  it('reads the language data from the installed package', () => {
    expect(existsSync(join(OCR_LANG_PATH, 'eng.traineddata.gz'))).toBe(true);
  });

  it('reads a sentence from a rendered PNG, caches it, and recomputes on force_refresh', async () => {
    const obs = await upload(d, 'screen', token, await textPng([SENTENCE]), 'ocr-1');
    const subject = { type: 'observation', observation_id: obs.observation_id };
    const first = await derive(d, 'canonical_text', subject);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toMatchObject({
      status: 'completed',
      cache_status: 'miss',
      reused_subject_asset: false,
      backend: { kind: 'tesseract', route_id: 'ocr', model: 'eng' },
      error: null,
    });
    const text = (await content(d, first.body.result_asset_id)).toString('utf8');
    expect(squash(text)).toContain(SENTENCE);
    const meta = await (await d.req(`/v1/assets/${first.body.result_asset_id}`)).json();
    expect(meta.media_type).toMatch(/^text\/plain/);

    const hit = await derive(d, 'canonical_text', subject);
    expect(hit.body).toMatchObject({
      derivation_id: first.body.derivation_id,
      cache_status: 'hit',
      result_asset_id: first.body.result_asset_id,
    });

    const again = await derive(d, 'canonical_text', subject, '?force_refresh=1');
    expect(again.body).toMatchObject({ derivation_id: first.body.derivation_id, cache_status: 'miss', status: 'completed' });
    expect(again.body.result_asset_id).toBe(first.body.result_asset_id);
  });

  it('serves several images through the one warm worker', async () => {
    const lines = ['Invoice number 4471', 'Meeting moved to Thursday'];
    const obs = await Promise.all(lines.map(async (l, i) => upload(d, 'screen', token, await textPng([l]), `ocr-many-${i}`)));
    const results = await Promise.all(
      obs.map((o) => derive(d, 'canonical_text', { type: 'observation', observation_id: o.observation_id })),
    );
    for (const [i, r] of results.entries()) {
      expect(r.body.status).toBe('completed');
      expect(squash((await content(d, r.body.result_asset_id)).toString('utf8'))).toContain(lines[i]);
    }
  });

  it('reuses uploader canonical text without recomputing', async () => {
    const obs = await upload(d, 'screen', token, makePng(4, 4, 99), 'ocr-uploader', 'image/png', { canonical_text: 'typed by the agent' });
    const r = await derive(d, 'canonical_text', { type: 'observation', observation_id: obs.observation_id });
    expect(r.body).toMatchObject({
      status: 'completed',
      reused_subject_asset: true,
      result_asset_id: obs.canonical_text_asset_id,
      backend: null,
    });
  });

  it('answers canonical_text of a text asset with the asset itself', async () => {
    const obs = await upload(d, 'screen', token, makePng(4, 4, 98), 'ocr-text-asset', 'image/png', { canonical_text: 'plain words' });
    const r = await derive(d, 'canonical_text', { type: 'asset', asset_id: obs.canonical_text_asset_id });
    expect(r.body).toMatchObject({ status: 'completed', reused_subject_asset: true, result_asset_id: obs.canonical_text_asset_id });
  });

  it('fails an image tesseract cannot read as a record, and keeps serving', async () => {
    const broken = Buffer.concat([makePng(8, 8).subarray(0, 33), Buffer.alloc(40, 0xcd)]);
    const obs = await upload(d, 'screen', token, broken, 'ocr-broken');
    const r = await derive(d, 'canonical_text', { type: 'observation', observation_id: obs.observation_id });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('failed');
    expect(r.body.error).toMatch(/OCR failed|image/);
    const ok = await upload(d, 'screen', token, await textPng(['Still working']), 'ocr-after-broken');
    const r2 = await derive(d, 'canonical_text', { type: 'observation', observation_id: ok.observation_id });
    expect(squash((await content(d, r2.body.result_asset_id)).toString('utf8'))).toContain('Still working');
  });

  it('closes promptly while OCR runs, and finishes the job after a restart', async () => {
    // Many lines keep the worker busy for a while, so the close lands mid-recognition.
    const lines = ['Interrupted but not lost', ...Array.from({ length: 11 }, (_, i) => `Filler line number ${i} of the report`)];
    const obs = await upload(d, 'screen', token, await textPng(lines), 'ocr-restart');
    const r = await derive(d, 'canonical_text', { type: 'observation', observation_id: obs.observation_id }, '?wait=false');
    expect(r.status).toBe(202);
    await eventually(async () => (await (await d.req(`/v1/derivations/${r.body.derivation_id}`)).json()).status !== 'pending');
    const t = Date.now();
    await d.close();
    expect(Date.now() - t).toBeLessThan(5_000);
    d = await startDaemon({ derivations: { ocr_workers: 1 } }, { dataDir });
    const done = await eventually(async () => {
      const v = await (await d.req(`/v1/derivations/${r.body.derivation_id}`)).json();
      return v.status === 'completed' && v;
    });
    expect(squash((await content(d, done.result_asset_id)).toString('utf8'))).toContain('Interrupted but not lost');
  });
});
