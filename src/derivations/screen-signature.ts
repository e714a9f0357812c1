import { type Canvas, createCanvas, type Image, loadImage } from '@napi-rs/canvas';
import type { Box } from './screen-geometry.js';

/** Downscale factor of the signature (a 1920x1080 frame gives 480x270): cells of 2^SHIFT pixels a side. */
export const SCALE = 4;
const SHIFT = 2;
/** A signature cell differing by more than this (0-255 grey, averaged over SCALE x SCALE pixels) is a change. */
const CELL_THRESHOLD = 2;
/** Rows of unchanged cells that still join two changes into one box. */
const JOIN_CELLS = 4;

/** A frame decoded once: its signature, and the image for cropping a region. */
export interface Decoded {
  width: number;
  height: number;
  /** Grey SCALE x SCALE box averages, row by row. */
  sig: Uint8Array;
  /** Full-resolution grey, row by row (for finding scrolled content). */
  gray: Uint8Array;
  sw: number;
  sh: number;
  /** The decoded image, kept until the frame's regions are cropped. */
  image: Image | null;
}

/**
 * The canvas frames are drawn on to read their pixels, kept for the next frame of the same size:
 * a new 1080p canvas each frame is 8 MB more for the garbage collector to account for. Only used
 * between an image's load and the end of its (synchronous) pixel pass, so never by two frames at once.
 */
let scratch: Canvas | null = null;

/**
 * Decodes a PNG/JPEG and computes, in one pass over its pixels, the full-resolution grey and the
 * signature (SCALE x SCALE box averages of it). The pixels are read as 32-bit words (RGBA in
 * memory, so R is the low byte on the little-endian machines Node runs on).
 */
export async function decode(bytes: Buffer): Promise<Decoded> {
  const image = await loadImage(bytes);
  const width = image.width;
  const height = image.height;
  if (scratch?.width !== width || scratch.height !== height) scratch = createCanvas(width, height);
  const ctx = scratch.getContext('2d');
  // Replaces every pixel, whatever the previous frame left.
  ctx.globalCompositeOperation = 'copy';
  ctx.drawImage(image, 0, 0);
  const raw = scratch.data();
  const px = new Uint32Array(raw.buffer, raw.byteOffset, width * height);
  const sw = (width + SCALE - 1) >> SHIFT;
  const sh = (height + SCALE - 1) >> SHIFT;
  const sum = new Uint32Array(sw * sh);
  const gray = new Uint8Array(width * height);
  for (let y = 0, i = 0; y < height; y++) {
    const row = (y >> SHIFT) * sw;
    for (let x = 0; x < width; x++, i++) {
      const p = px[i];
      const v = ((p & 0xff) * 77 + ((p >>> 8) & 0xff) * 150 + ((p >>> 16) & 0xff) * 29) >> 8;
      gray[i] = v;
      sum[row + (x >> SHIFT)] += v;
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
export function sameLooking(a: Decoded, b: Decoded): boolean {
  const boxes = changedBoxes(a, b);
  return boxes !== 'incomparable' && boxes.length === 0;
}

/**
 * Where two frames differ, in frame pixels: one box per run of changed signature rows (runs
 * closer than JOIN_CELLS joined), spanning that run's changed columns. Empty when they look the
 * same; 'incomparable' for frames of different sizes.
 */
export function changedBoxes(a: Decoded, b: Decoded): Box[] | 'incomparable' {
  if (a.width !== b.width || a.height !== b.height) return 'incomparable';
  const boxes: Box[] = [];
  let cur: Box | null = null;
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
