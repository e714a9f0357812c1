import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OcrPool } from '../src/derivations/ocr.js';
import { JobQueue } from '../src/job-queue.js';
import { decode } from '../src/derivations/screen-signature.js';
import { ScreenText, type Frame, type FrameText, type LineRecognizer, type OcrLine } from '../src/derivations/screen-text.js';
import { ocrWorkers } from '../src/derivations/engines.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { content, derive, eventually, upload } from './helpers/derivations.js';
import { createSource, sha256 } from './helpers/fixtures.js';
import { pngChunk } from './helpers/media.js';
import { textPng } from './helpers/text-png.js';

for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy']) process.env[k] = 'http://127.0.0.1:9';

const LINES = [
  'Quarterly report for the north region',
  'Revenue grew by eleven percent',
  'Shipping delays affected March orders',
  'Customer churn stayed below target',
  'Next review is planned for Friday',
];

/** A small screen-like PNG: dark text lines on white (inverted, light on black: `dark`), with an optional tiny mark (a blinking cursor). */
async function screen(lines: string[], opts: { mark?: boolean; width?: number; dark?: boolean } = {}): Promise<Buffer> {
  const layout = { width: opts.width ?? 1000, height: 60 + lines.length * 64, fontPx: 34, x: 30, baseline: 70, lineHeight: 64 };
  const png = await textPng(lines, { ...layout, mark: opts.mark });
  if (!opts.dark) return png;
  const canvas = createCanvas(layout.width, layout.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(await loadImage(png), 0, 0);
  ctx.globalCompositeOperation = 'difference';
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, layout.width, layout.height);
  return canvas.encode('png');
}

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const frame = (lane: string, id: string, bytes: Buffer): Frame => ({ lane, observationId: id, sha256: sha256(bytes), bytes });

/** A recognizer that counts calls and remembers the size and top-left pixel's grey of each image it was given. */
function counting(pool: OcrPool) {
  const heights: number[] = [];
  const widths: number[] = [];
  const corners: number[] = [];
  const r: LineRecognizer & { heights: number[]; widths: number[]; corners: number[] } = {
    heights,
    widths,
    corners,
    async recognizeLines(image: Buffer): Promise<OcrLine[]> {
      widths.push(image.readUInt32BE(16)); // PNG IHDR width
      heights.push(image.readUInt32BE(20)); // PNG IHDR height
      const c = createCanvas(1, 1).getContext('2d');
      c.drawImage(await loadImage(image), 0, 0);
      const [red, green, blue] = c.getImageData(0, 0, 1, 1).data;
      corners.push(Math.round((red + green + blue) / 3));
      return pool.recognizeLines(image);
    },
  };
  return r;
}

let pool: OcrPool;
let cacheDir: string;
beforeAll(() => {
  cacheDir = mkdtempSync(join(tmpdir(), 'observd-screen-text-'));
  pool = new OcrPool({ size: 1, cachePath: cacheDir });
});
afterAll(async () => {
  await pool?.close();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('ScreenText (in-process)', () => {
  it('reuses the text of a same-looking frame without running OCR', async () => {
    const ocr = counting(pool);
    const st = new ScreenText(ocr);
    const a = await screen(LINES);
    const first = await st.textOf(frame('s', 'obs_a', a));
    expect(first.from.mode).toBe('full');
    expect(ocr.heights).toHaveLength(1);
    // The same bytes, and the same pixels in other bytes (a PNG re-encoded with another filter setting).
    const sameBytes = await st.textOf(frame('s', 'obs_b', a));
    const reencoded = await screen(LINES);
    const other = Buffer.concat([
      reencoded.subarray(0, reencoded.length - 12),
      pngTextChunk('Comment', 'x'),
      reencoded.subarray(reencoded.length - 12),
    ]);
    expect(sha256(other)).not.toBe(sha256(a));
    const samePixels = await st.textOf(frame('s', 'obs_c', other));
    for (const r of [sameBytes, samePixels]) {
      expect(r).toEqual({ text: first.text, from: { mode: 'reused', observation_id: 'obs_a', regions: null } });
    }
    expect(ocr.heights).toHaveLength(1);
    expect(st.stats).toMatchObject({ full: 1, reused: 2, region: 0 });
  });

  it('OCRs only the changed lines and splices them where full OCR puts them', async () => {
    const ocr = counting(pool);
    const st = new ScreenText(ocr);
    const a = await screen(LINES);
    const changed = [...LINES];
    changed[2] = 'Warehouse inventory counted on Monday';
    const b = await screen(changed);
    await st.textOf(frame('s', 'obs_a', a));
    const spliced = await st.textOf(frame('s', 'obs_b', b));
    expect(spliced.from.mode).toBe('region');
    expect(spliced.from.observation_id).toBe('obs_a');
    // One small region, about one text line high.
    expect(ocr.heights).toHaveLength(2);
    const height = 60 + LINES.length * 64;
    expect(ocr.heights[1]).toBeLessThan(height / 3);
    const full = (await pool.recognizeLines(b)).map((l) => l.text).join('\n');
    expect(words(spliced.text)).toEqual(words(full));
    expect(spliced.text).toContain('Warehouse inventory counted on Monday');
    expect(spliced.text).not.toContain('Shipping');
  });

  it('re-reads only the words typed at the end of a line, not the whole line', async () => {
    const ocr = counting(pool);
    const st = new ScreenText(ocr);
    // Typing goes on: the word being typed grows, then a new word follows a space.
    const typed = [`${LINES[1]}age`, `${LINES[1]}age points`].map((l) => LINES.map((x, i) => (i === 1 ? l : x)));
    await st.textOf(frame('s', 'obs_a', await screen(LINES)));
    const b = await screen(typed[0]);
    const rb = await st.textOf(frame('s', 'obs_b', b));
    const c = await screen(typed[1]);
    const rc = await st.textOf(frame('s', 'obs_c', c));
    for (const r of [rb, rc]) expect(r.from).toMatchObject({ mode: 'region' });
    expect(ocr.widths).toHaveLength(3);
    // Each crop holds the word being typed, well under half the line's ~800 px.
    expect(ocr.widths[1]).toBeLessThan(300);
    expect(ocr.widths[2]).toBeLessThan(300);
    expect(rb.text.split('\n')[1]).toBe(typed[0][1]);
    expect(rc.text.split('\n')[1]).toBe(typed[1][1]);
    const full = (await pool.recognizeLines(c)).map((l) => l.text).join('\n');
    expect(words(rc.text)).toEqual(words(full));
  });

  it('hands OCR a region on a dark background inverted, dark text on light', async () => {
    const ocr = counting(pool);
    const st = new ScreenText(ocr);
    const changed = [...LINES];
    changed[3] = 'Deploy finished at noon';
    await st.textOf(frame('s', 'obs_a', await screen(LINES, { dark: true })));
    const r = await st.textOf(frame('s', 'obs_b', await screen(changed, { dark: true })));
    expect(r.from.mode).toBe('region');
    expect(ocr.corners[0]).toBeLessThan(64); // the whole frame goes as it is
    expect(ocr.corners[1]).toBeGreaterThan(192);
    expect(r.text).toContain('Deploy finished at noon');
    expect(r.text).not.toContain('churn');
  });

  it('follows content that scrolled and OCRs only the new line', async () => {
    const ocr = counting(pool);
    const st = new ScreenText(ocr);
    const a = await screen(LINES);
    const b = await screen([...LINES.slice(1), 'Budget approved by the board']);
    await st.textOf(frame('s', 'obs_a', a));
    const r = await st.textOf(frame('s', 'obs_b', b));
    expect(r.from).toMatchObject({ mode: 'region', observation_id: 'obs_a', scrolled: [64] });
    expect(ocr.heights[1]).toBeLessThan(200);
    const full = (await pool.recognizeLines(b)).map((l) => l.text).join('\n');
    expect(words(r.text)).toEqual(words(full));
  });

  it('keeps a line the scroll brings up from below the changed rows', async () => {
    const st = new ScreenText(pool);
    // The last line is the same before and after, so it is outside the change; its copy scrolls up into it.
    const a = await screen([...LINES.slice(0, 4), 'ok done']);
    const b = await screen([LINES[2], LINES[3], 'ok done', 'Build finished without warnings', 'ok done']);
    await st.textOf(frame('s', 'obs_a', a));
    const r = await st.textOf(frame('s', 'obs_b', b));
    expect(r.from).toMatchObject({ mode: 'region', scrolled: [128] });
    const full = (await pool.recognizeLines(b)).map((l) => l.text).join('\n');
    expect(words(r.text)).toEqual(words(full));
  });

  it('never shares text between streams', async () => {
    const ocr = counting(pool);
    const st = new ScreenText(ocr);
    const a = await screen(LINES);
    const one = await st.textOf(frame('["src1","s"]', 'obs_1', a));
    const two = await st.textOf(frame('["src1","t"]', 'obs_2', a));
    const three = await st.textOf(frame('["src2","s"]', 'obs_3', a));
    for (const r of [one, two, three]) expect(r.from).toEqual({ mode: 'full', observation_id: null, regions: null });
    expect(ocr.heights).toHaveLength(3);
  });

  it('decodes frames decoded at once (one kept canvas) each to its own pixels', async () => {
    const images = await Promise.all([screen(LINES), screen(LINES, { dark: true }), screen(LINES.slice(2), { width: 800 })]);
    const alone = [];
    for (const b of images) alone.push(await decode(b));
    const together = await Promise.all(images.map((b) => decode(b)));
    for (const [i, d] of together.entries()) {
      expect(Buffer.from(d.sig).equals(Buffer.from(alone[i].sig))).toBe(true);
      expect(Buffer.from(d.gray).equals(Buffer.from(alone[i].gray))).toBe(true);
    }
    expect(Buffer.from(together[0].sig).equals(Buffer.from(together[1].sig))).toBe(false);
  });

  it('coalesces a burst: the newest waiting frame is OCR’d, the frames it superseded share its text', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let calls = 0;
    const gated: LineRecognizer = {
      async recognizeLines(image) {
        if (calls++ === 0) await gate;
        return pool.recognizeLines(image);
      },
    };
    const st = new ScreenText(gated);
    const images = await Promise.all([0, 1, 2, 3].map((i) => screen([`Frame number ${i} of the burst`, ...LINES.slice(i)])));
    const parked: string[] = [];
    const results: Array<Promise<FrameText>> = [];
    results.push(st.textOf(frame('s', 'obs_0', images[0]), () => parked.push('obs_0')));
    // Each frame is decided in arrival order; wait until OCR of the first is running.
    await eventually(async () => calls === 1);
    for (const i of [1, 2, 3]) results.push(st.textOf(frame('s', `obs_${i}`, images[i]), () => parked.push(`obs_${i}`)));
    await eventually(async () => parked.length === 3);
    release();
    const [r0, r1, r2, r3] = await Promise.all(results);
    expect(parked).toEqual(['obs_1', 'obs_2', 'obs_3']);
    expect(r0.from.mode).toBe('full');
    expect(r0.text).toContain('Frame number 0');
    expect(['full', 'region']).toContain(r3.from.mode);
    expect(r3.text).toContain('Frame number 3');
    for (const r of [r1, r2]) {
      expect(r.from).toEqual({ mode: 'coalesced', observation_id: 'obs_3', regions: null });
      expect(r.text).toBe(r3.text);
    }
    // Only frames 0 and 3 were OCR'd.
    expect(st.stats.full + st.stats.region).toBe(2);
    expect(st.stats).toMatchObject({ coalesced: 2, reused: 0 });
  });

  it('is deterministic: the same frames give the same texts and provenance', async () => {
    const seq = await Promise.all([
      screen(LINES),
      screen(LINES, { mark: true }),
      screen([...LINES.slice(0, 4), 'Next review moved to Monday']),
      screen(LINES, { mark: true }),
    ]);
    const runs: FrameText[][] = [];
    for (let k = 0; k < 2; k++) {
      const st = new ScreenText(pool);
      const out: FrameText[] = [];
      for (const [i, b] of seq.entries()) out.push(await st.textOf(frame('s', `obs_${i}`, b)));
      runs.push(out);
    }
    expect(runs[0]).toEqual(runs[1]);
    expect(runs[0].map((r) => r.from.mode)).toEqual(['full', 'region', 'region', 'reused']);
    expect(runs[0][3].from.observation_id).toBe('obs_1');
  });
});

describe('JobQueue parking', () => {
  it('a parked job frees its slot for the next one and still resolves', async () => {
    const order: string[] = [];
    let releaseA!: () => void;
    const q = new JobQueue(
      1,
      async (id, park) => {
        order.push(`start ${id}`);
        if (id === 'a') {
          park();
          await new Promise<void>((r) => (releaseA = r));
        }
        order.push(`end ${id}`);
      },
      () => {},
    );
    q.start();
    const a = q.ensure('a');
    const b = q.ensure('b');
    await b;
    expect(order).toEqual(['start a', 'start b', 'end b']);
    expect(q.size).toBe(1);
    releaseA();
    await a;
    expect(q.size).toBe(0);
  });
});

describe('OCR pool size', () => {
  it('auto gives one worker per core but one, at least one and at most eight', () => {
    expect([1, 2, 4, 16].map((c) => ocrWorkers('auto', c))).toEqual([1, 1, 3, 8]);
    expect(ocrWorkers(3, 16)).toBe(3);
  });
});

describe('screen text through the daemon', () => {
  let d: TestDaemon;
  let token: string;
  let token2: string;
  beforeAll(async () => {
    d = await startDaemon({ derivations: { ocr_workers: 1 } });
    token = await createSource(d, { source_id: 'desk', display_name: 'Desk', kind: 'screen_snapshot', auto_derive: ['canonical_text'] });
    token2 = await createSource(d, {
      source_id: 'laptop',
      display_name: 'Laptop',
      kind: 'screen_snapshot',
      auto_derive: ['canonical_text'],
    });
  });
  afterAll(async () => d?.close());

  const recognitions = async () => Number(/^observd_ocr_recognitions_total (\d+)/m.exec(await (await d.req('/metrics')).text())?.[1]);
  const settled = async (observationId: string) =>
    eventually(async () => {
      const r = await derive(d, 'canonical_text', { type: 'observation', observation_id: observationId }, '?wait=true');
      return r.body.status === 'completed' && r.body;
    }, 60_000);

  it('auto-derives a same-looking frame by reusing text, never across streams or sources, and force_refresh OCRs it whole', async () => {
    const a = await screen(LINES);
    const first = await upload(d, 'desk', token, a, 'f1', 'image/png', { stream_id: 'main' });
    const t1 = await settled(first.observation_id);
    expect(t1.text_from).toEqual({ mode: 'full', observation_id: null, regions: null });
    const before = await recognitions();

    const second = await upload(d, 'desk', token, await screen(LINES, { mark: true }), 'f2', 'image/png', { stream_id: 'main' });
    const t2 = await settled(second.observation_id);
    expect(t2.text_from?.mode).toBe('region');
    const third = await upload(d, 'desk', token, a, 'f3', 'image/png', { stream_id: 'main' });
    const t3 = await settled(third.observation_id);
    expect(t3.text_from).toEqual({ mode: 'reused', observation_id: first.observation_id, regions: null });
    expect((await content(d, t3.result_asset_id)).toString()).toBe((await content(d, t1.result_asset_id)).toString());
    expect(await recognitions()).toBe(before + 1); // the mark's region only

    // Another stream of the same source, and another source: their own OCR.
    const other = await upload(d, 'desk', token, a, 'g1', 'image/png', { stream_id: 'second-monitor' });
    const elsewhere = await upload(d, 'laptop', token2, a, 'h1', 'image/png', { stream_id: 'main' });
    for (const o of [other, elsewhere])
      expect((await settled(o.observation_id)).text_from).toEqual({ mode: 'full', observation_id: null, regions: null });
    expect(await recognitions()).toBe(before + 3);

    // Cached like any derivation: asking again is a hit with the same record.
    const hit = await derive(d, 'canonical_text', { type: 'observation', observation_id: third.observation_id });
    expect(hit.body).toMatchObject({
      cache_status: 'hit',
      derivation_id: t3.derivation_id,
      result_asset_id: t3.result_asset_id,
      text_from: t3.text_from,
    });

    // force_refresh: the frame's own whole OCR.
    const fresh = await derive(d, 'canonical_text', { type: 'observation', observation_id: third.observation_id }, '?force_refresh=1');
    expect(fresh.body).toMatchObject({ status: 'completed', text_from: { mode: 'full', observation_id: null, regions: null } });
    expect(await recognitions()).toBe(before + 4);
  });

  it('forgets a deleted source: one created again under its id starts over', async () => {
    const a = await screen(LINES.slice(0, 2));
    const kiosk = { source_id: 'kiosk', display_name: 'Kiosk', kind: 'screen_snapshot', auto_derive: ['canonical_text'] };
    const t = await createSource(d, kiosk);
    const o1 = await upload(d, 'kiosk', t, a, 'k1', 'image/png', { stream_id: 'main' });
    expect((await settled(o1.observation_id)).text_from?.mode).toBe('full');
    expect((await d.req('/v1/observation-sources/kiosk', { method: 'DELETE' })).status).toBe(204);
    // Created again in a later millisecond.
    await new Promise((r) => setTimeout(r, 5));
    const t2 = await createSource(d, kiosk);
    const o2 = await upload(d, 'kiosk', t2, a, 'k1', 'image/png', { stream_id: 'main' });
    expect((await settled(o2.observation_id)).text_from).toEqual({ mode: 'full', observation_id: null, regions: null });
  });
});

/** A PNG tEXt chunk (changes the bytes, not the pixels). */
const pngTextChunk = (key: string, value: string) => pngChunk('tEXt', Buffer.from(`${key}\0${value}`, 'latin1'));
