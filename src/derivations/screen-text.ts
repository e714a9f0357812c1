import type { OcrLine } from './screen-geometry.js';
import { type Base, type Lane, Lanes, remember, type Waiter } from './screen-lane.js';
import { type Plan, planRegions } from './screen-regions.js';
import { decode, type Decoded, sameLooking } from './screen-signature.js';
import { type LineRecognizer, recognizeRect, splice } from './screen-splice.js';

export type { Box, OcrLine } from './screen-geometry.js';
export type { LineRecognizer } from './screen-splice.js';

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
  private lanes: Lanes;
  readonly stats: ScreenTextStats = { full: 0, region: 0, reused: 0, coalesced: 0 };

  constructor(
    private ocr: LineRecognizer,
    private opts: ScreenTextOptions = DEFAULT_SCREEN_TEXT_OPTIONS,
  ) {
    this.lanes = new Lanes(opts.maxLanes);
  }

  /**
   * The text of `frame`. `park` is called when the frame starts waiting on its stream rather
   * than working (so a job queue may run other jobs meanwhile).
   */
  textOf(frame: Frame, park: () => void = () => {}): Promise<FrameText> {
    const lane = this.lanes.use(frame.lane);
    lane.inflight++;
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
        this.lanes.trim();
      });
  }

  /** A frame's own whole-frame text, outside its stream's history (force_refresh). */
  async wholeText(bytes: Buffer): Promise<FrameText> {
    const lines = await this.ocr.recognizeLines(bytes);
    this.stats.full++;
    return { text: linesText(lines), from: { mode: 'full', observation_id: null, regions: null } };
  }

  /**
   * Decides, in arrival order, what a frame needs: reuse a base's text, OCR now, or wait for the
   * OCR in progress. Resolves once decided, with the (boxed) promise of the text.
   */
  private async decide(lane: Lane, frame: Frame, park: () => void): Promise<{ text: Promise<FrameText> }> {
    const same = lane.bases.find((b) => b.sha256 === frame.sha256);
    if (same) return { text: Promise.resolve(this.reuse(same)) };
    const decoded = await decode(frame.bytes);
    const identical = lane.bases.find((b) => sameLooking(b.decoded, decoded));
    if (identical) return { text: Promise.resolve(this.reuse(identical)) };
    const busy = lane.busy;
    if (busy && sameLooking(busy.decoded, decoded)) {
      park();
      const text = new Promise<FrameText>((resolve, reject) => busy.waiters.push({ observationId: frame.observationId, resolve, reject }));
      return { text: text.then((t) => this.reused(busy.observationId, t.text)) };
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

  private reuse(base: Base): FrameText {
    return this.reused(base.observationId, linesText(base.lines));
  }

  private reused(observationId: string, text: string): FrameText {
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
      const view = from?.view ?? frame.observationId;
      remember(lane, { view, observationId: frame.observationId, sha256: frame.sha256, decoded, lines: r.lines }, this.opts.history);
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
    const done = (t: FrameText) => {
      next.own.resolve(t);
      for (const f of next.followers) {
        this.stats.coalesced++;
        f.resolve({ text: t.text, from: { mode: 'coalesced', observation_id: next.frame.observationId, regions: null } });
      }
    };
    const identical = lane.bases.find((b) => sameLooking(b.decoded, next.decoded));
    if (identical) done(this.reuse(identical));
    else
      this.run(lane, next.frame, next.decoded).then(done, (e: Error) => {
        for (const f of [next.own, ...next.followers]) f.reject(e);
      });
  }

  /** Whole-frame OCR, or OCR of the changed rectangles spliced into the closest base's lines. */
  private async recognize(lane: Lane, frame: Frame, decoded: Decoded): Promise<{ lines: OcrLine[]; from: TextFrom }> {
    let best: (Plan & { base: Base }) | undefined;
    for (const base of lane.bases) {
      const plan = planRegions(base.decoded, base.lines, decoded);
      if (plan && (!best || plan.area < best.area)) best = { ...plan, base };
    }
    if (!best || best.area > this.opts.maxRegionFraction * decoded.width * decoded.height) {
      this.stats.full++;
      return { lines: await this.ocr.recognizeLines(frame.bytes), from: { mode: 'full', observation_id: null, regions: null } };
    }
    let lines = best.lines;
    for (const r of best.rects) lines = splice(lines, await recognizeRect(this.ocr, decoded.image!, r), r);
    this.stats.region++;
    const regions = best.rects.map((r) => ({ left: r.left, top: r.top, width: r.right - r.left, height: r.bottom - r.top }));
    const scrolled = best.scrolls.map((x) => x.dy);
    return { lines, from: { mode: 'region', observation_id: best.base.observationId, regions, ...(scrolled.length ? { scrolled } : {}) } };
  }
}
