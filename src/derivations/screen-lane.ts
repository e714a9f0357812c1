import type { OcrLine } from './screen-geometry.js';
import type { Decoded } from './screen-signature.js';
import type { Frame, FrameText } from './screen-text.js';

/** An OCR'd frame: a base for later frames of its lane. */
export interface Base {
  /** The view this frame continues (the observation that started it with a whole OCR). */
  view: string;
  observationId: string;
  sha256: string;
  decoded: Decoded;
  lines: OcrLine[];
}

export interface Waiter {
  observationId: string;
  resolve: (t: FrameText) => void;
  reject: (e: Error) => void;
}

/** A frame waiting for its OCR turn (the newest of its lane), with the skipped frames that will share its text. */
export interface Next {
  frame: Frame;
  decoded: Decoded;
  own: Waiter;
  followers: Waiter[];
}

/** The state of one (source, stream) pair. Nothing in it is ever read for another lane. */
export interface Lane {
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

/** Records an OCR'd frame as the lane's newest base: one of the two most recent, and the latest of its view. */
export function remember(lane: Lane, base: Base, history: number): void {
  lane.recent = [base, ...lane.recent].slice(0, 2);
  lane.views = [base, ...lane.views.filter((b) => b.view !== base.view)].slice(0, history);
  lane.bases = [...lane.recent, ...lane.views.filter((b) => !lane.recent.includes(b))];
}

/** The lanes of every stream, the least recently used idle ones forgotten beyond `max`. */
export class Lanes {
  private lanes = new Map<string, Lane>();
  private tick = 0;

  constructor(private max: number) {}

  /** The lane of `key`, created empty if new, marked as used now. */
  use(key: string): Lane {
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { bases: [], recent: [], views: [], busy: null, next: null, intake: Promise.resolve(), inflight: 0, usedAt: 0 };
      this.lanes.set(key, lane);
    }
    lane.usedAt = ++this.tick;
    return lane;
  }

  trim(): void {
    if (this.lanes.size <= this.max) return;
    const idle = [...this.lanes.entries()].filter(([, l]) => l.inflight === 0).sort((a, b) => a[1].usedAt - b[1].usedAt);
    for (const [k] of idle.slice(0, this.lanes.size - this.max)) this.lanes.delete(k);
  }
}
