/** A word of OCR output with its box in the frame's pixel coordinates. */
export interface OcrWord {
  text: string;
  top: number;
  bottom: number;
  left: number;
  right: number;
}

/** One line of OCR output with its box in the frame's pixel coordinates, and its words when the engine gave them. */
export interface OcrLine extends OcrWord {
  words?: OcrWord[];
}

/** A rectangle as edges, [left, right) x [top, bottom). */
export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export const intersects = (l: Box, r: Box) => l.right > r.left && l.left < r.right && l.bottom > r.top && l.top < r.bottom;

/** The smallest box holding both. */
export const union = (a: Box, b: Box): Box => ({
  left: Math.min(a.left, b.left),
  top: Math.min(a.top, b.top),
  right: Math.max(a.right, b.right),
  bottom: Math.max(a.bottom, b.bottom),
});

/** `b` moved by (dx, dy). */
export const shifted = <T extends Box>(b: T, dx: number, dy: number): T => ({
  ...b,
  left: b.left + dx,
  right: b.right + dx,
  top: b.top + dy,
  bottom: b.bottom + dy,
});

/** A line moved by (dx, dy), its words with it. */
export const shiftedLine = (l: OcrLine, dx: number, dy: number): OcrLine => {
  const moved = shifted(l, dx, dy);
  return l.words ? { ...moved, words: l.words.map((w) => shifted(w, dx, dy)) } : moved;
};
