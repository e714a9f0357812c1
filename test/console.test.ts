import { existsSync } from 'node:fs';
import { createCanvas } from '@napi-rs/canvas';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../src/http/routes/console.js';
import { CHROMIUM, launchBrowser, screenshot, type TestBrowser } from './helpers/browser.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { upload } from './helpers/derivations.js';
import { createSource, provisionBody } from './helpers/fixtures.js';
import { makePng, makeWav } from './helpers/media.js';

const ADMIN = 'console-admin-token-0123456789';
const READER = 'console-reader-token-0123456789';
const SCREEN_TOKEN = 'screen-upload-token-0123456789';
const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);

/** A screen-like PNG: a window with a title bar and a few lines of text. */
function screenPng(title: string, lines: string[], hue: number): Buffer {
  const c = createCanvas(640, 400);
  const g = c.getContext('2d');
  g.fillStyle = `hsl(${hue}, 35%, 88%)`;
  g.fillRect(0, 0, 640, 400);
  g.fillStyle = '#ffffff';
  g.fillRect(30, 30, 580, 340);
  g.fillStyle = `hsl(${hue}, 45%, 40%)`;
  g.fillRect(30, 30, 580, 34);
  g.fillStyle = '#ffffff';
  g.font = 'bold 18px sans-serif';
  g.fillText(title, 44, 54);
  g.fillStyle = '#222222';
  g.font = '20px sans-serif';
  lines.forEach((l, i) => g.fillText(l, 50, 110 + i * 34));
  return c.toBuffer('image/png');
}

/** Creates a source readable by the read-only token: `standard` (Kheish's value), or `public` on older daemons. */
async function createStandardSource(d: TestDaemon, body: Record<string, unknown>, token?: string): Promise<string> {
  for (const sensitivity of ['standard', 'public']) {
    const r = await d.req('/v1/observation-sources', { method: 'POST', json: { ...body, sensitivity }, token });
    if (r.status === 201) return (await r.json()).upload_token;
  }
  throw new Error('could not create a standard source');
}

async function uploadStatus(d: TestDaemon, sourceId: string, token: string, seed: number): Promise<number> {
  const r = await d.req(`/v1/observation-sources/${sourceId}/observations`, {
    method: 'POST',
    token,
    json: {
      upload: { file_name: 'f.png', media_type: 'image/png', content_base64: makePng(8, 8, seed).toString('base64') },
      idempotency_key: `k-${seed}`,
    },
  });
  await r.arrayBuffer();
  return r.status;
}

/** Opens a console view and waits until its request settled (no spinner left of the first load). */
async function open(page: Page, d: TestDaemon, hash: string): Promise<void> {
  await page.goto(`${d.url}/console${hash}`);
  await page.waitForSelector('#view');
}

describe.skipIf(!existsSync(CHROMIUM))('web console (loopback-open daemon)', () => {
  let d: TestDaemon;
  let b: TestBrowser;
  let page: Page;
  const seeded: string[] = [];

  beforeAll(async () => {
    d = await startDaemon({ retention: { sweep_interval_ms: 3_600_000 } });
    await createStandardSource(d, {
      source_id: 'screen-main',
      display_name: 'Main screen',
      kind: 'screen_snapshot',
      upload_token: SCREEN_TOKEN,
    });
    const texts = [
      'quarterly revenue dashboard in the editor',
      'terminal running the deploy script',
      'design review of the console layout',
    ];
    for (let i = 0; i < 3; i++) {
      const png = screenPng(['editor: report.md', 'terminal', 'console review'][i], texts[i].match(/.{1,34}(\s|$)/g)!, 40 + i * 90);
      const obs = await upload(d, 'screen-main', SCREEN_TOKEN, png, `seed-${i}`, 'image/png', {
        captured_at_ms: T0 + i * 60_000,
        stream_id: 'call-7',
        seq_no: i + 1,
        canonical_text: texts[i],
        metadata: { window: i === 0 ? 'editor' : 'terminal' },
      });
      seeded.push(obs.observation_id);
    }
    const micToken = await createStandardSource(d, { source_id: 'mic', display_name: 'Microphone', kind: 'microphone_segment' });
    await upload(d, 'mic', micToken, makeWav(0.5), 'mic-1', 'audio/wav', {
      captured_at_ms: T0,
      canonical_text: 'hello from the microphone',
    });
    const run = await d.req('/v1/observation-materializations', {
      method: 'POST',
      json: {
        target_session_id: 'incident-review',
        selection: { type: 'observation_ids', observation_ids: seeded.slice(0, 2) },
        request: { content: 'Summarize what changed on the screen.' },
      },
    });
    expect(run.status).toBeLessThan(300);
    b = await launchBrowser();
    page = await b.newPage();
  }, 120_000);

  afterAll(async () => {
    await b?.close();
    await d?.close();
  });

  it('serves the console from the package with a strict CSP and caching headers', async () => {
    const r = await d.req('/console');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('content-security-policy')).toBe(CONSOLE_CSP);
    expect(CONSOLE_CSP).toContain("default-src 'self'");
    expect(CONSOLE_CSP).not.toContain('unsafe-inline');
    expect(r.headers.get('cache-control')).toBe('no-cache');
    const html = await r.text();
    expect(html).not.toMatch(/<script>|<script [^>]*>[^<]+<\/script>|https?:\/\//);
    const js = /src="(\/console\/app-[A-Z0-9]+\.js)"/.exec(html)![1];
    const asset = await d.req(js);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toContain('immutable');
    const body = await asset.text();
    expect(body.length).toBeLessThan(300 * 1024);
    expect(body).not.toMatch(/https?:\/\/(?!www\.w3\.org)[a-z]/i);
    const again = await d.req(js, { headers: { 'if-none-match': asset.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await d.req('/console/nope.js')).status).toBe(404);
    expect((await d.req('/console/..%2Fpackage.json')).status).toBe(404);
    const slash = await d.req('/console/', { redirect: 'manual' });
    expect(slash.status).toBe(301);
  });

  it('opens every view with seeded data', async () => {
    await open(page, d, '#/sources');
    await page.getByRole('heading', { name: 'Sources' }).waitFor();
    await page.locator('article[data-source="screen-main"]').waitFor();
    expect(await page.locator('article[data-source="screen-main"]').textContent()).toContain('Observations 3 / 512');
    await expect(page.getByTestId('role').textContent()).resolves.toContain('admin');
    await screenshot(page, 'sources');

    await open(page, d, '#/timeline?source=screen-main');
    await page.locator('.tile').nth(2).waitFor();
    const order = await page.locator('.tile').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    expect(order).toEqual([...seeded].reverse());
    await page.locator('.tile img').nth(2).waitFor();
    await screenshot(page, 'timeline');

    await open(page, d, `#/observations/${seeded[0]}`);
    await page.getByTestId('full-image').waitFor();
    await expect.poll(() => page.getByTestId('canonical-text').textContent()).toBe('quarterly revenue dashboard in the editor');
    expect(await page.locator('.observation').textContent()).toContain('"window": "editor"');
    await page.getByTestId('expires').waitFor();
    await screenshot(page, 'observation');

    await open(page, d, '#/timeline?source=mic');
    await page.locator('.tile img').first().waitFor();
    await page.locator('.tile').first().click();
    await page.getByTestId('audio').waitFor();
    await page.locator('img.waveform').waitFor();
    await expect.poll(() => page.getByTestId('canonical-text').textContent()).toBe('hello from the microphone');
    expect(await page.locator('h2', { hasText: 'Transcript' }).count()).toBe(1);

    await open(page, d, '#/runs');
    await page.locator('tr[data-run]').first().waitFor();
    await page.locator('tr[data-run] a').first().click();
    await page.getByTestId('evidence').waitFor();
    expect(await page.getByTestId('evidence').textContent()).toContain('Untrusted evidence');
    expect(await page.getByTestId('request').textContent()).toContain('Summarize what changed');

    await open(page, d, '#/audit');
    await page.locator('tr[data-event]').first().waitFor();
    await page.getByLabel('source id').fill('mic');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => page.url()).toContain('source=mic');
    await expect
      .poll(async () => {
        const sources = await page.locator('tr[data-event] td:nth-child(3)').allTextContents();
        return sources.length > 0 && sources.every((s) => s === 'mic');
      })
      .toBe(true);
    await screenshot(page, 'audit');
  }, 90_000);

  it('moves a run from the queue to finished live, with its output and usage', async () => {
    await open(page, d, '#/runs');
    const queued = page.locator('h2:text-is("Queue") + table tr[data-run]');
    await queued.first().waitFor();
    const runId = (await queued.first().getAttribute('data-run'))!;
    const claim = await d.req(`/v1/runs/${runId}/claim`, { method: 'POST', json: {} });
    expect(claim.status, await claim.clone().text()).toBe(200);
    const done = await d.req(`/v1/runs/${runId}/complete`, {
      method: 'POST',
      json: { output: 'The revenue dashboard replaced the terminal.', usage: { input_tokens: 120, output_tokens: 9, total_tokens: 129 } },
    });
    expect(done.status, await done.clone().text()).toBe(200);
    await page.locator(`h2:text-is("Finished") + table tr[data-run="${runId}"]`).waitFor();
    await page.locator(`tr[data-run="${runId}"] a`).click();
    await expect.poll(() => page.getByTestId('output').textContent()).toBe('The revenue dashboard replaced the terminal.');
    expect(await page.getByTestId('usage').textContent()).toContain('120 in, 9 out, 129 total');
    await screenshot(page, 'run', true);
  }, 60_000);

  it('searches and opens a hit', async () => {
    await open(page, d, '#/search');
    await page.getByLabel('search words').fill('revenue');
    await page.getByRole('button', { name: 'Search' }).click();
    const hit = page.locator('.hit').first();
    await hit.waitFor();
    expect(await hit.getAttribute('data-id')).toBe(seeded[0]);
    expect(await hit.locator('mark').first().textContent()).toMatch(/revenue/i);
    await screenshot(page, 'search');
    await hit.locator('a').click();
    await page.locator(`.observation[data-id="${seeded[0]}"]`).waitFor();
  }, 60_000);

  it("shows marker-like text of a snippet literally: only the daemon's «…» marks a match", async () => {
    const token = await createStandardSource(d, { source_id: 'ocr-notes', display_name: 'OCR notes', kind: 'screen_snapshot' });
    await upload(d, 'ocr-notes', token, makePng(8, 8, 71), 'ocr-1', 'image/png', {
      captured_at_ms: T0,
      canonical_text: 'ledger [[draft]] and <b>bold</b> notes',
    });
    await open(page, d, '#/search?q=ledger');
    const snippet = page.locator('.hit .snippet').first();
    await snippet.waitFor();
    expect(await snippet.textContent()).toBe('ledger [[draft]] and <b>bold</b> notes');
    expect(await snippet.locator('mark').allTextContents()).toEqual(['ledger']);
  }, 60_000);

  it("shows each source's capture agent health", async () => {
    const prov = await d.req('/v1/capture-agent-provisions', {
      method: 'POST',
      json: provisionBody('console-fleet', ['desk-mac'], { daemon_base_url: d.url }),
    });
    expect(prov.status, await prov.clone().text()).toBeLessThan(300);
    await prov.arrayBuffer();
    const agents = (await (await d.req('/v1/capture-agents')).json()) as Array<{ machine_id: string; source_ids: string[] }>;
    const sourceId = agents.find((a) => a.machine_id === 'desk-mac')!.source_ids[0];
    await open(page, d, '#/sources');
    const card = page.locator(`article[data-source="${sourceId}"]`);
    await card.waitFor();
    await expect.poll(() => card.locator('.agent').textContent()).toMatch(/desk-mac: (pending|healthy)/);
  }, 60_000);

  it('creates a source and shows its generated token once', async () => {
    await open(page, d, '#/sources');
    await page.getByLabel('Source id').fill('webcam-desk');
    await page.getByLabel('Display name').fill('Desk webcam');
    await page.getByLabel('Kind').selectOption('webcam_snapshot');
    await page.getByRole('button', { name: 'Create source' }).click();
    const panel = page.getByTestId('new-token');
    await panel.waitFor();
    expect(await panel.textContent()).toContain('shown only this once');
    const token = await page.getByLabel('new upload token').inputValue();
    expect(token.length).toBeGreaterThanOrEqual(16);
    await page.locator('article[data-source="webcam-desk"]').waitFor();
    await page.getByRole('button', { name: 'I saved it' }).click();
    await panel.waitFor({ state: 'detached' });
    expect(await page.content()).not.toContain(token);
    await page.reload();
    await page.locator('article[data-source="webcam-desk"]').waitFor();
    expect(await page.content()).not.toContain(token);
    expect(await uploadStatus(d, 'webcam-desk', token, 1)).toBe(201);
  }, 60_000);

  it('shows an upload live: the thumbnail appears without a reload', async () => {
    await open(page, d, '#/timeline?source=screen-main');
    await page.locator('.tile').first().waitFor();
    await expect.poll(() => page.getByTestId('live').textContent()).toContain('live');
    const obs = await upload(d, 'screen-main', SCREEN_TOKEN, screenPng('live upload', ['captured just now'], 300), 'live-1', 'image/png', {
      captured_at_ms: T0 + 3_600_000,
    });
    const tile = page.locator(`.tile[data-id="${obs.observation_id}"]`);
    await tile.waitFor();
    await tile.locator('img[src^="blob:"]').waitFor();
    expect(await page.locator('.tile').first().getAttribute('data-id')).toBe(obs.observation_id);
  }, 60_000);

  it('navigates the timeline with the keyboard', async () => {
    await open(page, d, '#/timeline?source=screen-main');
    await page.locator('.tile').nth(2).waitFor();
    const ids = await page.locator('.tile').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    await page.locator('.tile').first().focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-id'))).toBe(ids[1]);
    await page.keyboard.press('End');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('data-id'))).toBe(ids[ids.length - 1]);
    await page.keyboard.press('Home');
    await page.keyboard.press('Enter');
    await page.locator(`.observation[data-id="${ids[0]}"]`).waitFor();
  }, 60_000);

  it('filters the timeline by stream and time range', async () => {
    await open(page, d, '#/timeline?source=screen-main');
    await page.locator('.tile').nth(3).waitFor();
    await page.getByLabel('stream').fill('call-7');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => page.url()).toContain('stream=call-7');
    await expect
      .poll(() => page.locator('.tile').evaluateAll((els) => els.map((e) => e.getAttribute('data-id'))))
      .toEqual([...seeded].reverse());
    await open(page, d, `#/timeline?source=screen-main&after=${T0 + 30_000}&before=${T0 + 90_000}`);
    await expect.poll(() => page.locator('.tile').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')))).toEqual([seeded[1]]);
    await page.getByLabel('time range preset').selectOption('3600000');
    await expect.poll(() => page.locator('.empty').textContent()).toContain('No observations in this time range');
  }, 60_000);

  it('rotates a token with a grace period: the new one is shown once, the old one still works', async () => {
    const old = await createSource(d, { source_id: 'rotating', display_name: 'Rotating', kind: 'screen_snapshot' });
    await open(page, d, '#/sources');
    const card = page.locator('article[data-source="rotating"]');
    await card.waitFor();
    await card.getByRole('button', { name: 'Rotate token' }).click();
    await card.getByLabel('grace period').selectOption('300000');
    await card.getByRole('button', { name: 'Rotate', exact: true }).click();
    await page.getByTestId('new-token').waitFor();
    const fresh = await page.getByLabel('new upload token').inputValue();
    expect(fresh).not.toBe(old);
    await expect.poll(() => card.getByTestId('token-state').textContent()).toContain('v2');
    expect(await uploadStatus(d, 'rotating', old, 2)).toBe(201);
    expect(await uploadStatus(d, 'rotating', fresh, 3)).toBe(201);
  }, 60_000);

  it('runs a derivation from the observation view and shows its progress and result', async () => {
    await open(page, d, `#/observations/${seeded[1]}`);
    await page.getByRole('heading', { name: 'Derivations' }).waitFor();
    await page.getByRole('button', { name: 'Run canonical_text' }).click();
    const item = page.locator('li[data-profile="canonical_text"]');
    await item.locator('.badge', { hasText: 'completed' }).waitFor();
    await expect.poll(() => item.locator('pre').textContent()).toBe('terminal running the deploy script');
    await page.getByRole('button', { name: 'Run canonical_text' }).waitFor();
  }, 60_000);

  it('pauses, resumes, revokes and deletes a source (typed confirmation)', async () => {
    const token = await createSource(d, { source_id: 'doomed', display_name: 'Doomed', kind: 'screen_snapshot' });
    await open(page, d, '#/sources');
    const card = page.locator('article[data-source="doomed"]');
    await card.waitFor();
    await card.getByRole('button', { name: 'Pause' }).click();
    await card.locator('.badge.status-paused').waitFor();
    expect([401, 403]).toContain(await uploadStatus(d, 'doomed', token, 10));
    await card.getByRole('button', { name: 'Resume' }).click();
    await card.locator('.badge.status-active').waitFor();
    expect(await uploadStatus(d, 'doomed', token, 11)).toBe(201);
    await card.getByRole('button', { name: 'Revoke token' }).click();
    await card.getByRole('dialog', { name: 'revoke token' }).getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => card.getByTestId('token-state').textContent()).toContain('revoked');
    expect(await uploadStatus(d, 'doomed', token, 12)).toBe(401);
    await card.getByRole('button', { name: 'Delete' }).click();
    const confirm = card.getByRole('button', { name: 'delete this source and everything it stored' });
    expect(await confirm.isDisabled()).toBe(true);
    await card.getByLabel('confirmation').fill('doome');
    expect(await confirm.isDisabled()).toBe(true);
    await card.getByLabel('confirmation').fill('doomed');
    await confirm.click();
    await card.waitFor({ state: 'detached' });
    const r = await d.req('/v1/observation-sources/doomed');
    await r.arrayBuffer();
    expect(r.status).toBe(404);
  }, 60_000);

  it('deletes an observation after a typed confirmation', async () => {
    const victim = seeded[2];
    await open(page, d, `#/observations/${victim}`);
    await page.getByRole('button', { name: 'Delete observation' }).click();
    const confirm = page.getByRole('button', { name: 'delete this observation' });
    expect(await confirm.isDisabled()).toBe(true);
    await page.getByLabel('confirmation').fill('delete');
    await confirm.click();
    await expect.poll(() => page.url()).toContain('#/timeline');
    const r = await d.req(`/v1/observations/${victim}`);
    await r.arrayBuffer();
    expect(r.status).toBe(404);
  }, 60_000);

  it('opens a timeline of 100,000 observations fast and scrolls with thumbnails only', async () => {
    const first = await (async () => {
      await createStandardSource(d, {
        source_id: 'big',
        display_name: 'Big',
        kind: 'screen_snapshot',
        upload_token: 'big-upload-token-0123456789',
        max_active_observations: 200_000,
      });
      return upload(
        d,
        'big',
        'big-upload-token-0123456789',
        screenPng('one of 100,000', ['the same frame, many times'], 200),
        'big-0',
        'image/png',
        { captured_at_ms: T0 },
      );
    })();
    const db = d.daemon.services.db;
    const cols = db
      .prepare(`SELECT name FROM pragma_table_info('observations')`)
      .all()
      .map((r) => (r as { name: string }).name);
    const computed: Record<string, string> = {
      observation_id: `'obs_' || printf('%026d', n.i)`,
      idempotency_key: `'big-' || n.i`,
      captured_at_ms: `t.captured_at_ms - n.i * 1000`,
      received_at_ms: `t.received_at_ms`,
      request_fingerprint: `t.request_fingerprint || n.i`,
    };
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 99999)
      INSERT INTO observations (${cols.join(', ')})
      SELECT ${cols.map((c) => computed[c] ?? `t.${c}`).join(', ')} FROM n, observations t WHERE t.observation_id = '${first.observation_id}'`);
    db.prepare(
      `UPDATE sources SET active_observation_count = 100000, active_byte_length = active_byte_length * 100000 WHERE source_id = 'big'`,
    ).run();

    const p = await b.newPage();
    const assetRequests: string[] = [];
    p.on('request', (r) => {
      const m = /\/v1\/assets\/(ast_[0-9a-f]+)\/content/.exec(r.url());
      if (m) assetRequests.push(m[1]);
    });
    await p.goto(`${d.url}/console#/timeline?source=big`);
    await p
      .locator('.tile')
      .nth(59)
      .waitFor({ state: 'attached' })
      .catch(async (err) => {
        throw new Error(`${err.message}\n${(await p.locator('#view').textContent())?.slice(0, 2000)}`);
      });
    await p.locator('.tile img').nth(3).waitFor();
    const figures = await p.evaluate(() => ({
      firstPage: performance.getEntriesByName('observd:timeline-first-page')[0]?.startTime,
      firstThumb: performance.getEntriesByName('observd:thumb')[0]?.startTime,
    }));
    expect(figures.firstPage).toBeGreaterThan(0);
    console.log(
      `console timeline of 100,000 observations: first page on screen ${figures.firstPage!.toFixed(0)} ms, first thumbnail ${figures.firstThumb?.toFixed(0)} ms after navigation`,
    );
    await screenshot(p, 'timeline-100k');
    for (let i = 0; i < 3; i++) {
      const before = await p.locator('.tile').count();
      await p.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
      await expect.poll(() => p.locator('.tile').count(), { timeout: 15_000 }).toBeGreaterThan(before);
    }
    expect(await p.locator('.tile').count()).toBeGreaterThanOrEqual(240);
    // Thumbnails only: the preview of the shared image, never the full image itself.
    expect(assetRequests.length).toBeGreaterThan(0);
    expect(assetRequests).not.toContain(first.asset_id);
    await p.close();
  }, 180_000);

  it('is readable on a narrow window', async () => {
    await page.setViewportSize({ width: 420, height: 800 });
    await open(page, d, '#/timeline?source=screen-main');
    await page.locator('.tile img').first().waitFor();
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBeLessThanOrEqual(1);
    await screenshot(page, 'timeline-narrow');
    await open(page, d, '#/sources');
    await page.locator('article[data-source="screen-main"]').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(1);
    await open(page, d, `#/observations/${seeded[0]}`);
    await page.getByTestId('full-image').waitFor();
    expect(await overflow()).toBeLessThanOrEqual(1);
    await page.setViewportSize({ width: 1280, height: 800 });
  }, 60_000);

  it('never sent a request off the loopback interface, and the page had no errors', () => {
    expect(b.offLoopback).toEqual([]);
    expect(b.requests.length).toBeGreaterThan(10);
    expect(b.requests.every((u) => new URL(u).hostname === '127.0.0.1')).toBe(true);
    expect(b.errors).toEqual([]);
  });
});

describe.skipIf(!existsSync(CHROMIUM))('web console with tokens', () => {
  let d: TestDaemon;
  let b: TestBrowser;
  let secretObs: string;
  let plainObs: string;

  beforeAll(async () => {
    d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
    const secret = await createSource(d, { source_id: 'secret-cam', display_name: 'Secret webcam', kind: 'webcam_snapshot' }, ADMIN);
    secretObs = (
      await upload(d, 'secret-cam', secret, makePng(64, 40, 9), 's-1', 'image/png', {
        captured_at_ms: T0,
        canonical_text: 'words only an admin reads',
      })
    ).observation_id;
    const plain = await createStandardSource(
      d,
      { source_id: 'plain-screen', display_name: 'Plain screen', kind: 'screen_snapshot' },
      ADMIN,
    );
    plainObs = (await upload(d, 'plain-screen', plain, makePng(64, 40, 10), 'p-1', 'image/png', { captured_at_ms: T0 })).observation_id;
    // A preview a read-only reader can find (it cannot ask for one).
    const r = await d.req('/v1/derivations', {
      method: 'POST',
      token: ADMIN,
      json: { profile: 'visual_preview', subject: { type: 'observation', observation_id: plainObs } },
    });
    await r.arrayBuffer();
    b = await launchBrowser();
  }, 120_000);

  afterAll(async () => {
    await b?.close();
    await d?.close();
  });

  async function signIn(token: string): Promise<Page> {
    const page = await b.newPage();
    await page.goto(`${d.url}/console#/sources`);
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('role').waitFor();
    return page;
  }

  it('asks for a token and refuses a wrong one', async () => {
    const page = await b.newPage();
    await page.goto(`${d.url}/console`);
    await page.getByLabel('Token').fill('not-the-right-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was not accepted').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.close();
  }, 60_000);

  it('read-only sign-in sees no write controls and no raw media of sensitive sources', async () => {
    const page = await signIn(READER);
    expect(await page.getByTestId('role').textContent()).toBe('read-only');
    await page.locator('article[data-source="secret-cam"]').waitFor();
    expect(await page.locator('[data-write]').count()).toBe(0);
    expect(await page.getByRole('button', { name: /Create source|Pause|Rotate token|Delete/ }).count()).toBe(0);
    await screenshot(page, 'sources-readonly');

    await page.goto(`${d.url}/console#/observations/${secretObs}`);
    await page.getByTestId('media-hidden').waitFor();
    await page.getByText('The text of sensitive sources is shown to admins only').waitFor();
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(await page.content()).not.toContain('words only an admin reads');
    expect(await page.locator('[data-write]').count()).toBe(0);
    expect(await page.getByRole('button', { name: /Delete|Run / }).count()).toBe(0);

    await page.goto(`${d.url}/console#/timeline?source=secret-cam`);
    await page.locator('.tile .thumb[data-state="hidden"]').first().waitFor();

    await page.goto(`${d.url}/console#/observations/${plainObs}`);
    await page.getByTestId('full-image').waitFor();
    await page.goto(`${d.url}/console#/timeline?source=plain-screen`);
    await page.locator('.tile img[src^="blob:"]').first().waitFor();
    await page.close();
  }, 60_000);

  it('admin sign-in keeps the token in sessionStorage, sends it as a header, never in a URL', async () => {
    const page = await signIn(ADMIN);
    expect(await page.getByTestId('role').textContent()).toBe('admin');
    const headers: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/v1/')) headers.push(r.headers().authorization ?? '');
    });
    await page.getByRole('button', { name: 'Create source' }).waitFor();
    await page.goto(`${d.url}/console#/timeline?source=secret-cam`);
    await page.locator('.tile img[src^="blob:"]').first().waitFor();
    await expect.poll(() => page.getByTestId('live').textContent()).toContain('live');
    expect(await page.evaluate(() => Object.values(sessionStorage))).toContain(ADMIN);
    expect(headers.length).toBeGreaterThan(0);
    expect(headers.every((h) => h === `Bearer ${ADMIN}`)).toBe(true);
    expect(b.requests.some((u) => u.includes(ADMIN) || u.includes(READER))).toBe(false);
    await page.close();
  }, 60_000);

  it('goes back to the sign-in form when the token stops working', async () => {
    const page = await signIn(ADMIN);
    await page.locator('article[data-source="secret-cam"]').waitFor();
    await page.evaluate(() => sessionStorage.setItem('observd.console.token', 'a-token-that-was-revoked'));
    await page.goto(`${d.url}/console#/audit`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.close();
  }, 60_000);

  it('never sent a request off the loopback interface, and the page had no errors', () => {
    expect(b.offLoopback).toEqual([]);
    expect(b.errors).toEqual([]);
  });
});
