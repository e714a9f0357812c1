import { createCanvas, type Image } from '@napi-rs/canvas';
import { type Box, intersects, type OcrLine, type OcrWord, shiftedLine, union } from './screen-geometry.js';

/** What the screen text tracker needs from the OCR engine. */
export interface LineRecognizer {
  recognizeLines(image: Buffer): Promise<OcrLine[]>;
}

/**
 * The base's lines with what of them touches `rect` replaced by `found` (already in frame
 * coordinates). A line wholly in the rect is replaced, the found lines placed where the replaced
 * lines were, else before the first line below the rect. A line only partly in it or beside it
 * (the rect holds the words typed at its end) keeps its words outside the rect and takes the
 * found words level with it and as near as OCR keeps words of one line, in left-to-right order.
 */
export function splice(base: OcrLine[], found: OcrLine[], rect: Box): OcrLine[] {
  const inside = (l: OcrLine) => intersects(l, rect);
  let at = base.findIndex(inside);
  if (at < 0) at = base.findIndex((l) => l.top >= rect.bottom);
  if (at < 0) at = base.length;
  let rest = found;
  const kept = base.map((l) => {
    const words = inside(l) ? (l.words?.filter((w) => !intersects(w, rect)) ?? []) : (l.words ?? [l]);
    const level = words.length ? rest.filter((f) => sameLine(l, f)) : [];
    if (!level.length) return inside(l) ? (words.length ? lineOf(words) : null) : l;
    rest = rest.filter((f) => !level.includes(f));
    return lineOf([...words, ...level.flatMap((f) => f.words ?? [f])]);
  });
  const present = (ls: Array<OcrLine | null>) => ls.filter((l): l is OcrLine => l !== null);
  return [...present(kept.slice(0, at)), ...rest, ...present(kept.slice(at))];
}

/** Level with each other and no further apart than the OCR keeps words of one line (see ocr.ts `segments`). */
const sameLine = (a: Box, b: Box) =>
  b.top < a.bottom && b.bottom > a.top && Math.max(b.left - a.right, a.left - b.right) <= 3 * Math.max(1, a.bottom - a.top);

/** A line made of words, ordered left to right. */
function lineOf(words: OcrWord[]): OcrLine {
  const sorted = [...words].sort((a, b) => a.left - b.left || a.top - b.top);
  const box = sorted.reduce<Box>((a, w) => union(a, w), sorted[0]);
  return { text: sorted.map((w) => w.text).join(' '), left: box.left, top: box.top, right: box.right, bottom: box.bottom, words: sorted };
}

/** Plain border added around a cropped rectangle: tesseract reads text touching the image edge poorly. */
const CROP_PAD = 10;
/** A crop whose corner is darker than this (0-255 grey) is light text on a dark background. */
const DARK = 128;

/** The lines of rectangle `r` of `image`, in frame coordinates. */
export async function recognizeRect(ocr: LineRecognizer, image: Image, r: Box): Promise<OcrLine[]> {
  return (await ocr.recognizeLines(await encodeRect(image, r))).map((l) => shiftedLine(l, r.left - CROP_PAD, r.top - CROP_PAD));
}

/**
 * A rectangle of the image as a PNG for the OCR engine, on a border of its own corner colour
 * (not the neighbouring pixels, which may hold other lines). Lines found in it are offset by
 * (left - CROP_PAD, top - CROP_PAD). A crop on a dark background (a terminal, a taskbar) is
 * inverted: tesseract's LSTM reads light-on-dark text with low confidence and then reads the
 * line again inverted, so handing it dark-on-light text halves the cost of such a line.
 */
export async function encodeRect(image: Image, r: Box): Promise<Buffer> {
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
  if ((red * 77 + green * 150 + blue * 29) >> 8 < DARK) {
    ctx.globalCompositeOperation = 'difference';
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, w + 2 * CROP_PAD, h + 2 * CROP_PAD);
  }
  return canvas.encode('png');
}
