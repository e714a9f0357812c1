import { type Box, intersects, type OcrLine, shiftedLine, union } from './screen-geometry.js';
import { changedBoxes, type Decoded } from './screen-signature.js';

/** Pixels added around a change before OCR (signature cells already round it out to 4 px). */
export const BAND_MARGIN = 4;
/** A changed box shorter than this is not searched for scrolled content. */
const MIN_SCROLL_BOX = 64;

/** Content of a box moved up by `dy` pixels (down when negative); `fresh` holds the rows that are new. */
export interface Scroll {
  box: Box;
  dy: number;
  fresh: Box[];
}

/** What to OCR to make a frame's text from a base's lines: `rects` of the frame, after moving scrolled lines. */
export interface Plan {
  /** The base's lines, with scrolled ones moved to where they are in the frame. */
  lines: OcrLine[];
  rects: Box[];
  area: number;
  scrolls: Scroll[];
}

/**
 * How to get `decoded`'s text from a base frame and its lines: the changed rectangles widened to
 * whole text lines, content that scrolled within a changed box kept (moved) so only rows new to
 * it are OCR'd. Undefined when the frames cannot be compared or look the same.
 */
export function planRegions(base: Decoded, lines: OcrLine[], decoded: Decoded): Plan | undefined {
  const changed = changedBoxes(base, decoded);
  if (changed === 'incomparable' || changed.length === 0) return undefined;
  const boxes: Box[] = [];
  const scrolls: Scroll[] = [];
  for (const c of columnClusters(changed)) {
    const s = c.box.bottom - c.box.top >= MIN_SCROLL_BOX ? findScroll(base, decoded, c.box) : undefined;
    if (!s) boxes.push(...c.members);
    else {
      lines = scrollLines(lines, c.box, s);
      boxes.push(...s.fresh);
      scrolls.push(s);
    }
  }
  const rects = widenToLines(boxes, lines, decoded.width, decoded.height);
  const area = rects.reduce((a, r) => a + (r.right - r.left) * (r.bottom - r.top), 0);
  return { lines, rects, area, scrolls };
}

/**
 * Widens changed boxes by a margin and to every base line they touch: to its height, and across
 * the words of it they touch (the whole line when its words are not known), so each holds whole
 * words of whole-height lines — typing at the end of a line re-reads the word being typed, not
 * the line. Boxes that came to overlap are merged. Deterministic for the same input.
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
        const touched = l.words ? l.words.filter((x) => intersects(x, r)) : [l];
        const span = touched.length ? touched.reduce<Box>((a, x) => union(a, x), touched[0]) : { left: r.left + m, right: r.right - m };
        const w = {
          left: Math.max(0, Math.min(r.left, span.left - m)),
          top: Math.max(0, Math.min(r.top, l.top - m / 2)),
          right: Math.min(width, Math.max(r.right, span.right + m)),
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
        Object.assign(o, union(o, r));
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
 * A hash of each row from `top` to `bottom` over the box's columns; null for a uniform row. Reads
 * four grey pixels at a time where the columns allow it (they do for boxes made of signature cells).
 */
function rowHashes(d: Decoded, box: Box, top = box.top, bottom = box.bottom): Array<number | null> {
  const out: Array<number | null> = [];
  const words = d.width % 4 === 0 && box.left % 4 === 0 && box.right % 4 === 0 && d.gray.byteOffset % 4 === 0;
  const g32 = words ? new Uint32Array(d.gray.buffer, d.gray.byteOffset, d.gray.length >> 2) : null;
  for (let y = top; y < bottom; y++) {
    const o = y * d.width;
    let h = 0x811c9dc5;
    let uniform = true;
    if (g32) {
      const first = d.gray[o + box.left] * 0x01010101;
      for (let i = (o + box.left) >> 2, end = (o + box.right) >> 2; i < end; i++) {
        const v = g32[i];
        if (v !== first) uniform = false;
        h = Math.imul(h ^ v, 0x01000193);
      }
    } else {
      const first = d.gray[o + box.left];
      for (let x = box.left; x < box.right; x++) {
        const v = d.gray[o + x];
        if (v !== first) uniform = false;
        h = Math.imul(h ^ v, 0x01000193);
      }
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
    const m = shiftedLine(l, 0, -s.dy);
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
      c.box = union(c.box, b);
    }
  }
  return out;
}
