import { createCanvas, loadImage, type Image } from '@napi-rs/canvas';

/** One line of OCR output with its box in the frame's pixel coordinates. */
export interface OcrLine {
  text: string;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** What the screen text tracker needs from the OCR engine. */
export interface LineRecognizer {
  recognizeLines(image: Buffer): Promise<OcrLine[]>;
}

/**
 * Where a frame's text came from, recorded on its derivation:
 * - `full`: the whole frame was OCR'd;
 * - `reused`: the frame looks the same as `observation_id` (same stream), whose text it reuses;
 * - `region`: only the rectangles `regions` changed since `observation_id`; they (widened to
 *   whole text lines) were OCR'd and spliced into that frame's text; `scrolled` lists the shifts
 *   (pixels, up positive) of content that moved, whose lines were moved rather than OCR'd again;
 * - `coalesced`: the frame arrived while OCR was busy and a newer frame of its stream
 *   (`observation_id`) superseded it before its turn: it shares that frame's text.
 */
export type TextFrom =
  | { mode: 'full'; observation_id: null; regions: null }
  | { mode: 'reused' | 'coalesced'; observation_id: string; regions: null }
  | { mode: 'region'; observation_id: string; regions: Rect[]; scrolled?: number[] };

/** A rectangle of a frame, in pixels. */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface FrameText {
  text: string;
  from: TextFrom;
}

/** A frame of a capture stream. `lane` names the (source, stream) pair; text is only ever shared within one lane. */
export interface Frame {
  lane: string;
  observationId: string;
  sha256: string;
  bytes: Buffer;
}

export interface ScreenTextOptions {
  /**
   * Views ("windows") remembered per stream as bases for reuse and region OCR: the latest OCR'd
   * frame of each of the last `history` views (a whole-frame OCR starts a view, a frame made from
   * a base continues its view), so switching back to a window finds its text. The last two
   * OCR'd frames are bases too (a blinking cursor's two states).
   */
  history: number;
  /** A change taller than this fraction of the frame is OCR'd whole. */
  maxRegionFraction: number;
  /** Most streams tracked at once (each base holds about 2.5 MB for a 1080p frame); the least recently used idle one is forgotten beyond it. */
  maxLanes: number;
}

export const DEFAULT_SCREEN_TEXT_OPTIONS: ScreenTextOptions = { history: 4, maxRegionFraction: 0.6, maxLanes: 32 };

/** Downscale factor of the signature (a 1920x1080 frame gives 480x270). */
const SCALE = 4;
/** A signature cell differing by more than this (0-255 grey, averaged over SCALE x SCALE pixels) is a change. */
const CELL_THRESHOLD = 2;
/** Pixels added around a change before OCR (signature cells already round it out to 4 px). */
const BAND_MARGIN = 4;

/** A frame decoded once: its signature, and the image for cropping a region. */
interface Decoded {
  width: number;
  height: number;
  /** Grey SCALE x SCALE box averages, row by row. */
  sig: Uint8Array;
  /** Full-resolution grey, row by row (for finding scrolled content). */
  gray: Uint8Array;
  sw: number;
  sh: number;
  image: Image | null;
}

/** An OCR'd frame: a base for later frames of its lane. */
interface Base {
  /** The view this frame continues (the observation that started it with a whole OCR). */
  view: string;
  observationId: string;
  sha256: string;
  decoded: Decoded;
  lines: OcrLine[];
}

interface Waiter {
  observationId: string;
  resolve: (t: FrameText) => void;
  reject: (e: Error) => void;
}

/** A frame waiting for its OCR turn (the newest of its lane), with the skipped frames that will share its text. */
interface Next {
  frame: Frame;
  decoded: Decoded;
  own: Waiter;
  followers: Waiter[];
}

interface Lane {
  /** Bases to compare new frames with: the last two OCR'd frames, then the latest of each remembered view. */
  bases: Base[];
  recent: Base[];
  views: Base[];
  /** The frame being OCR'd now, and frames identical to it waiting for its text. */
  busy: { observationId: string; decoded: Decoded; waiters: Waiter[] } | null;
  next: Next | null;
  /** Frames enter the lane one at a time, in arrival order. */
  intake: Promise<void>;
  inflight: number;
  usedAt: number;
}

export type ScreenTextStats = { [mode in TextFrom['mode']]: number };

const linesText = (lines: OcrLine[]) => lines.map((l) => l.text).join('\n');

/**
 * Text of screen capture streams that keeps up with one frame per second. Consecutive frames of a
 * stream are compared on a downscaled grey signature: a frame that looks the same as a recent
 * OCR'd frame of its stream reuses that text; one that changed in places has only those
 * rectangles (widened to whole text lines) OCR'd and spliced into the base frame's lines by
 * position; a frame that changed more is OCR'd whole. One OCR runs per stream at a
 * time; frames arriving meanwhile wait, and a waiting frame superseded by a newer one shares the
 * newer frame's text instead of being OCR'd (coalescing). State lives in memory; a restart
 * starts every stream with a full OCR. Given the same frame and base, the result is the same.
 */
export class ScreenText {
  private lanes = new Map<string, Lane>();
  readonly stats: ScreenTextStats = { full: 0, region: 0, reused: 0, coalesced: 0 };
  private tick = 0;

  constructor(
    private ocr: LineRecognizer,
    private opts: ScreenTextOptions = DEFAULT_SCREEN_TEXT_OPTIONS,
  ) {}

  /**
   * The text of `frame`. `park` is called when the frame starts waiting on its stream rather
   * than working (so a job queue may run other jobs meanwhile).
   */
  textOf(frame: Frame, park: () => void = () => {}): Promise<FrameText> {
    const lane = this.laneOf(frame.lane);
    lane.inflight++;
    lane.usedAt = ++this.tick;
    // A frame's decision (reuse, OCR now, or wait) is taken once the frame before it took its own.
    const decided = lane.intake.then(() => this.decide(lane, frame, park));
    lane.intake = decided.then(
      () => {},
      () => {},
    );
    return decided
      .then((d) => d.text)
      .finally(() => {
        lane.inflight--;
        this.trimLanes();
      });
  }

  /** A frame's own whole-frame text, outside its stream's history (force_refresh). */
  async wholeText(bytes: Buffer): Promise<FrameText> {
    const lines = await this.ocr.recognizeLines(bytes);
    this.stats.full++;
    return { text: linesText(lines), from: { mode: 'full', observation_id: null, regions: null } };
  }

  private laneOf(key: string): Lane {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { bases: [], recent: [], views: [], busy: null, next: null, intake: Promise.resolve(), inflight: 0, usedAt: 0 };
      this.lanes.set(key, lane);
    }
    return lane;
  }

  private trimLanes(): void {
    if (this.lanes.size <= this.opts.maxLanes) return;
    const idle = [...this.lanes.entries()].filter(([, l]) => l.inflight === 0).sort((a, b) => a[1].usedAt - b[1].usedAt);
    for (const [k] of idle.slice(0, this.lanes.size - this.opts.maxLanes)) this.lanes.delete(k);
  }

  /**
   * Decides, in arrival order, what a frame needs: reuse a base's text, OCR now, or wait for the
   * OCR in progress. Resolves once decided, with the (boxed) promise of the text.
   */
  private async decide(lane: Lane, frame: Frame, park: () => void): Promise<{ text: Promise<FrameText> }> {
    const same = lane.bases.find((b) => b.sha256 === frame.sha256);
    if (same) return { text: Promise.resolve(this.reuse(same.observationId, linesText(same.lines))) };
    const decoded = await decode(frame.bytes);
    const identical = lane.bases.find((b) => sameLooking(b.decoded, decoded));
    if (identical) return { text: Promise.resolve(this.reuse(identical.observationId, linesText(identical.lines))) };
    const busy = lane.busy;
    if (busy && sameLooking(busy.decoded, decoded)) {
      park();
      const text = new Promise<FrameText>((resolve, reject) => busy.waiters.push({ observationId: frame.observationId, resolve, reject }));
      return { text: text.then((t) => this.reuse(busy.observationId, t.text)) };
    }
    if (!busy) return { text: this.run(lane, frame, decoded) };
    // OCR is busy on this stream: wait as its newest frame; the frame waiting before, if any, is superseded.
    park();
    const text = new Promise<FrameText>((resolve, reject) => {
      const own = { observationId: frame.observationId, resolve, reject };
      const prev = lane.next;
      const followers = prev ? [...prev.followers, prev.own] : [];
      if (prev) prev.decoded.image = null;
      lane.next = { frame, decoded, own, followers };
    });
    return { text };
  }

  private reuse(observationId: string, text: string): FrameText {
    this.stats.reused++;
    return { text, from: { mode: 'reused', observation_id: observationId, regions: null } };
  }

  /** OCRs a frame against the lane's best base, records it as a base, then serves the frame waiting next. */
  private async run(lane: Lane, frame: Frame, decoded: Decoded): Promise<FrameText> {
    const busy = { observationId: frame.observationId, decoded, waiters: [] as Waiter[] };
    lane.busy = busy;
    let result: FrameText;
    try {
      const r = await this.recognize(lane, frame, decoded);
      result = { text: linesText(r.lines), from: r.from };
      decoded.image = null;
      const from = r.from.mode === 'region' ? lane.bases.find((b) => b.observationId === r.from.observation_id) : undefined;
      const base: Base = {
        view: from?.view ?? frame.observationId,
        observationId: frame.observationId,
        sha256: frame.sha256,
        decoded,
        lines: r.lines,
      };
      lane.recent = [base, ...lane.recent].slice(0, 2);
      lane.views = [base, ...lane.views.filter((b) => b.view !== base.view)].slice(0, this.opts.history);
      lane.bases = [...lane.recent, ...lane.views.filter((b) => !lane.recent.includes(b))];
      for (const w of busy.waiters) w.resolve(result);
    } catch (e) {
      for (const w of busy.waiters) w.reject(e as Error);
      throw e;
    } finally {
      lane.busy = null;
      this.serveNext(lane);
    }
    return result;
  }

  private serveNext(lane: Lane): void {
    const next = lane.next;
    if (!next) return;
    lane.next = null;
    const share = (t: FrameText) => {
      for (const f of next.followers) {
        this.stats.coalesced++;
        f.resolve({ text: t.text, from: { mode: 'coalesced', observation_id: next.frame.observationId, regions: null } });
      }
    };
    const fail = (e: Error) => {
      for (const f of [next.own, ...next.followers]) f.reject(e);
    };
    const identical = lane.bases.find((b) => sameLooking(b.decoded, next.decoded));
    if (identical) {
      const t = this.reuse(identical.observationId, linesText(identical.lines));
      next.own.resolve(t);
      share(t);
      return;
    }
    this.run(lane, next.frame, next.decoded).then((t) => {
      next.own.resolve(t);
      share(t);
    }, fail);
  }

  /** Whole-frame OCR, or OCR of the changed rectangles spliced into the closest base's lines. */
  private async recognize(lane: Lane, frame: Frame, decoded: Decoded): Promise<{ lines: OcrLine[]; from: TextFrom }> {
    let best: { base: Base; lines: OcrLine[]; rects: Box[]; area: number; scrolls: Scroll[] } | undefined;
    for (const base of lane.bases) {
      const changed = changedBoxes(base.decoded, decoded);
      if (changed === 'incomparable' || changed.length === 0) continue;
      // Content that scrolled within a changed box keeps its lines, moved; only rows new to it are OCR'd.
      let lines = base.lines;
      const boxes: Box[] = [];
      const scrolls: Scroll[] = [];
      for (const c of columnClusters(changed)) {
        const s = c.box.bottom - c.box.top >= MIN_SCROLL_BOX ? findScroll(base.decoded, decoded, c.box) : undefined;
        if (!s) boxes.push(...c.members);
        else {
          lines = scrollLines(lines, c.box, s);
          boxes.push(...s.fresh);
          scrolls.push(s);
        }
      }
      const rects = widenToLines(boxes, lines, decoded.width, decoded.height);
      const area = rects.reduce((a, r) => a + (r.right - r.left) * (r.bottom - r.top), 0);
      if (!best || area < best.area) best = { base, lines, rects, area, scrolls };
    }
    if (!best || best.area > this.opts.maxRegionFraction * decoded.width * decoded.height) {
      this.stats.full++;
      return { lines: await this.ocr.recognizeLines(frame.bytes), from: { mode: 'full', observation_id: null, regions: null } };
    }
    let lines = best.lines;
    for (const r of best.rects) {
      const dx = r.left - CROP_PAD;
      const dy = r.top - CROP_PAD;
      const found = (await this.ocr.recognizeLines(await encodeRect(decoded.image!, r))).map((l) => ({
        ...l,
        top: l.top + dy,
        bottom: l.bottom + dy,
        left: l.left + dx,
        right: l.right + dx,
      }));
      lines = splice(lines, found, r);
    }
    this.stats.region++;
    const regions = best.rects.map((r) => ({ left: r.left, top: r.top, width: r.right - r.left, height: r.bottom - r.top }));
    const scrolled = best.scrolls.map((x) => x.dy);
    return { lines, from: { mode: 'region', observation_id: best.base.observationId, regions, ...(scrolled.length ? { scrolled } : {}) } };
  }
}

/** A rectangle as edges, [left, right) x [top, bottom). */
export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Decodes a PNG/JPEG and computes its grey signature (SCALE x SCALE box averages). */
export async function decode(bytes: Buffer): Promise<Decoded> {
  const image = await loadImage(bytes);
  const width = image.width;
  const height = image.height;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, 0, 0);
  const px = ctx.getImageData(0, 0, width, height).data;
  const sw = Math.ceil(width / SCALE);
  const sh = Math.ceil(height / SCALE);
  const sum = new Uint32Array(sw * sh);
  const gray = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const row = ((y / SCALE) | 0) * sw;
    let i = y * width * 4;
    let g = y * width;
    for (let x = 0; x < width; x++, i += 4, g++) {
      const v = (px[i] * 77 + px[i + 1] * 150 + px[i + 2] * 29) >> 8;
      gray[g] = v;
      sum[row + ((x / SCALE) | 0)] += v;
    }
  }
  const sig = new Uint8Array(sw * sh);
  for (let cy = 0; cy < sh; cy++) {
    const h = Math.min(SCALE, height - cy * SCALE);
    for (let cx = 0; cx < sw; cx++) {
      const w = Math.min(SCALE, width - cx * SCALE);
      sig[cy * sw + cx] = Math.round(sum[cy * sw + cx] / (w * h));
    }
  }
  return { width, height, sig, gray, sw, sh, image };
}

/** True when no signature cell differs (beyond noise): the frames look the same. */
function sameLooking(a: Decoded, b: Decoded): boolean {
  const boxes = changedBoxes(a, b);
  return boxes !== 'incomparable' && boxes.length === 0;
}

/** Rows of unchanged cells that still join two changes into one box. */
const JOIN_CELLS = 4;

/**
 * Where two frames differ, in frame pixels: one box per run of changed signature rows (runs
 * closer than JOIN_CELLS joined), spanning that run's changed columns. Empty when they look the
 * same; 'incomparable' for frames of different sizes.
 */
export function changedBoxes(a: Decoded, b: Decoded): Box[] | 'incomparable' {
  if (a.width !== b.width || a.height !== b.height) return 'incomparable';
  const boxes: Box[] = [];
  let cur: { top: number; bottom: number; left: number; right: number } | null = null;
  for (let cy = 0; cy < a.sh; cy++) {
    const o = cy * a.sw;
    let first = -1;
    let last = -1;
    for (let cx = 0; cx < a.sw; cx++) {
      if (Math.abs(a.sig[o + cx] - b.sig[o + cx]) > CELL_THRESHOLD) {
        if (first < 0) first = cx;
        last = cx;
      }
    }
    if (first < 0) continue;
    if (cur && cy - cur.bottom <= JOIN_CELLS) {
      cur.bottom = cy + 1;
      cur.left = Math.min(cur.left, first);
      cur.right = Math.max(cur.right, last + 1);
    } else {
      if (cur) boxes.push(cur);
      cur = { top: cy, bottom: cy + 1, left: first, right: last + 1 };
    }
  }
  if (cur) boxes.push(cur);
  return boxes.map((c) => ({
    left: c.left * SCALE,
    top: c.top * SCALE,
    right: Math.min(a.width, c.right * SCALE),
    bottom: Math.min(a.height, c.bottom * SCALE),
  }));
}

const intersects = (l: Box, r: Box) => l.right > r.left && l.left < r.right && l.bottom > r.top && l.top < r.bottom;

/**
 * Widens changed boxes by a margin and to every base line they touch (so each holds whole text
 * lines), then merges boxes that came to overlap. Deterministic for the same input.
 */
export function widenToLines(boxes: Box[], lines: OcrLine[], width: number, height: number): Box[] {
  const m = BAND_MARGIN;
  let rects = boxes.map((b) => ({
    left: Math.max(0, b.left - m),
    top: Math.max(0, b.top - m),
    right: Math.min(width, b.right + m),
    bottom: Math.min(height, b.bottom + m),
  }));
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of rects) {
      for (const l of lines) {
        if (!intersects(l, r)) continue;
        const w = {
          left: Math.max(0, Math.min(r.left, l.left - m)),
          top: Math.max(0, Math.min(r.top, l.top - m / 2)),
          right: Math.min(width, Math.max(r.right, l.right + m)),
          bottom: Math.min(height, Math.max(r.bottom, l.bottom + m / 2)),
        };
        if (w.left < r.left || w.top < r.top || w.right > r.right || w.bottom > r.bottom) {
          Object.assign(r, w);
          changed = true;
        }
      }
    }
    const merged: Box[] = [];
    for (const r of rects) {
      const o = merged.find((x) => intersects(x, r));
      if (o) {
        Object.assign(o, {
          left: Math.min(o.left, r.left),
          top: Math.min(o.top, r.top),
          right: Math.max(o.right, r.right),
          bottom: Math.max(o.bottom, r.bottom),
        });
        changed = true;
      } else merged.push({ ...r });
    }
    rects = merged;
  }
  return rects
    .map((r) => ({ left: Math.floor(r.left), top: Math.floor(r.top), right: Math.ceil(r.right), bottom: Math.ceil(r.bottom) }))
    .sort((a, b) => a.top - b.top || a.left - b.left);
}

/**
 * The base's lines with those touching `rect` replaced by `found` (already in frame
 * coordinates), placed where the replaced lines were, else before the first line below the rect.
 */
export function splice(base: OcrLine[], found: OcrLine[], rect: Box): OcrLine[] {
  const inside = (l: OcrLine) => intersects(l, rect);
  let at = base.findIndex(inside);
  if (at < 0) at = base.findIndex((l) => l.top >= rect.bottom);
  if (at < 0) at = base.length;
  const before = base.slice(0, at).filter((l) => !inside(l));
  const after = base.slice(at).filter((l) => !inside(l));
  return [...before, ...found, ...after];
}

/** Plain border added around a cropped rectangle: tesseract reads text touching the image edge poorly. */
const CROP_PAD = 10;

/**
 * A rectangle of the image as a PNG for the OCR engine, on a border of its own corner colour
 * (not the neighbouring pixels, which may hold other lines). Lines found in it are offset by
 * (left - CROP_PAD, top - CROP_PAD).
 */
async function encodeRect(image: Image, r: Box): Promise<Buffer> {
  const w = r.right - r.left;
  const h = r.bottom - r.top;
  const canvas = createCanvas(w + 2 * CROP_PAD, h + 2 * CROP_PAD);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(image, r.left, r.top, w, h, CROP_PAD, CROP_PAD, w, h);
  const [red, green, blue] = ctx.getImageData(CROP_PAD, CROP_PAD, 1, 1).data;
  ctx.fillStyle = `rgb(${red}, ${green}, ${blue})`;
  ctx.fillRect(0, 0, w + 2 * CROP_PAD, CROP_PAD);
  ctx.fillRect(0, h + CROP_PAD, w + 2 * CROP_PAD, CROP_PAD);
  ctx.fillRect(0, CROP_PAD, CROP_PAD, h);
  ctx.fillRect(w + CROP_PAD, CROP_PAD, CROP_PAD, h);
  return canvas.encode('png');
}

/** A changed box shorter than this is not searched for scrolled content. */
const MIN_SCROLL_BOX = 64;

/** Content of a box moved up by `dy` pixels (down when negative); `fresh` holds the rows that are new. */
interface Scroll {
  box: Box;
  dy: number;
  fresh: Box[];
}

/** A hash of each row from `top` to `bottom` over the box's columns; null for a uniform row. */
function rowHashes(d: Decoded, box: Box, top = box.top, bottom = box.bottom): Array<number | null> {
  const out: Array<number | null> = [];
  for (let y = top; y < bottom; y++) {
    const o = y * d.width;
    let h = 0x811c9dc5;
    let uniform = true;
    const first = d.gray[o + box.left];
    for (let x = box.left; x < box.right; x++) {
      const v = d.gray[o + x];
      if (v !== first) uniform = false;
      h = Math.imul(h ^ v, 0x01000193);
    }
    // A uniform row matches any other: it says nothing about a shift.
    out.push(uniform ? null : h >>> 0);
  }
  return out;
}

/**
 * Finds content that scrolled vertically inside `box`: the shift most rows agree on (rows of the
 * new frame's box compared exactly, over the box's columns, with rows anywhere in the base's
 * columns), when it explains at least half of the box's rows that are not blank. Deterministic.
 */
export function findScroll(a: Decoded, b: Decoded, box: Box): Scroll | undefined {
  const ha = rowHashes(a, box, 0, a.height);
  const hb = rowHashes(b, box);
  const where = new Map<number, number[]>();
  ha.forEach((h, y) => h !== null && (where.get(h) ?? where.set(h, []).get(h)!).push(y));
  const votes = new Map<number, number>();
  let content = 0;
  hb.forEach((h, i) => {
    if (h === null) return;
    content++;
    const y = box.top + i;
    for (const j of where.get(h) ?? []) if (j !== y) votes.set(j - y, (votes.get(j - y) ?? 0) + 1);
  });
  let dy = 0;
  let best = 0;
  for (const [d, n] of votes) if (n > best || (n === best && Math.abs(d) < Math.abs(dy))) [dy, best] = [d, n];
  if (dy === 0 || best * 2 < content) return undefined;
  // Rows of the new frame not explained by the shift: runs of them are what is new.
  const fresh: Box[] = [];
  let start = -1;
  for (let i = 0; i <= hb.length; i++) {
    const j = box.top + i + dy;
    const same = i < hb.length && j >= 0 && j < a.height && (hb[i] === ha[j] || (hb[i] === null && ha[j] === null));
    if (i < hb.length && !same) {
      if (start < 0) start = i;
    } else if (start >= 0) {
      fresh.push({ left: box.left, right: box.right, top: box.top + start, bottom: box.top + i });
      start = -1;
    }
  }
  return { box, dy, fresh };
}

/**
 * The lines after a scroll: lines in the box's columns move by the shift (those outside the box
 * stay where they are too), and are dropped if they left it or now overlap rows that are new —
 * those still in it join the rows to OCR, so the region holds them whole; other lines stay.
 */
function scrollLines(lines: OcrLine[], box: Box, s: Scroll): OcrLine[] {
  const out: OcrLine[] = [];
  const moved: OcrLine[] = [];
  const partly: Box[] = [];
  let at = -1;
  for (const l of lines) {
    const inColumns = l.left >= box.left - BAND_MARGIN && l.right <= box.right + BAND_MARGIN;
    const outside = l.bottom <= box.top || l.top >= box.bottom;
    // A line outside the box did not change; if the shift brings its copy into the box, the copy is there too.
    if (!inColumns || outside) out.push(l);
    if (!inColumns) continue;
    if (!outside && at < 0) at = out.length;
    const m = { ...l, top: l.top - s.dy, bottom: l.bottom - s.dy };
    if (m.bottom <= box.top || m.top >= box.bottom) continue;
    if (m.top < box.top || m.bottom > box.bottom || s.fresh.some((f) => intersects(m, f))) {
      partly.push({ left: m.left, right: m.right, top: Math.max(box.top, m.top), bottom: Math.min(box.bottom, m.bottom) });
      continue;
    }
    moved.push(m);
  }
  s.fresh.push(...partly);
  // The box's lines, top to bottom, where its first line was.
  moved.sort((p, q) => p.top - q.top || p.left - q.left);
  if (at < 0) at = out.findIndex((l) => l.top >= box.bottom);
  if (at < 0) at = out.length;
  return [...out.slice(0, at), ...moved, ...out.slice(at)];
}

/** Groups changed boxes whose columns overlap (a scrolling pane changes in many row runs), with their bounding box. */
function columnClusters(boxes: Box[]): Array<{ box: Box; members: Box[] }> {
  const out: Array<{ box: Box; members: Box[] }> = [];
  for (const b of boxes) {
    const c = out.find((x) => b.left < x.box.right && b.right > x.box.left);
    if (!c) out.push({ box: { ...b }, members: [b] });
    else {
      c.members.push(b);
      c.box = {
        left: Math.min(c.box.left, b.left),
        top: Math.min(c.box.top, b.top),
        right: Math.max(c.box.right, b.right),
        bottom: Math.max(c.box.bottom, b.bottom),
      };
    }
  }
  return out;
}
