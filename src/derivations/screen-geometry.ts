/** One line of OCR output with its box in the frame's pixel coordinates. */
export interface OcrLine {
  text: string;
  top: number;
  bottom: number;
  left: number;
  right: number;
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
