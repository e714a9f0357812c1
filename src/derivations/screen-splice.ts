import { createCanvas, type Image } from '@napi-rs/canvas';
import { type Box, intersects, type OcrLine } from './screen-geometry.js';

/** What the screen text tracker needs from the OCR engine. */
export interface LineRecognizer {
  recognizeLines(image: Buffer): Promise<OcrLine[]>;
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
/** A crop whose corner is darker than this (0-255 grey) is light text on a dark background. */
const DARK = 128;

/** The lines of rectangle `r` of `image`, in frame coordinates. */
export async function recognizeRect(ocr: LineRecognizer, image: Image, r: Box): Promise<OcrLine[]> {
  const dx = r.left - CROP_PAD;
  const dy = r.top - CROP_PAD;
  return (await ocr.recognizeLines(await encodeRect(image, r))).map((l) => ({
    ...l,
    top: l.top + dy,
    bottom: l.bottom + dy,
    left: l.left + dx,
    right: l.right + dx,
  }));
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
