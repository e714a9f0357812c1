import { createCanvas, loadImage } from '@napi-rs/canvas';
import { assertDecodable } from './image-size.js';
import { durationOf, parseWav, peaks } from './wav.js';

/** Longest edge of every visual preview, in pixels. */
export const PREVIEW_MAX_EDGE = 512;
/** Size of an audio waveform picture. */
export const WAVEFORM_SIZE = { width: 512, height: 160 };

export interface Preview {
  bytes: Buffer;
  mediaType: 'image/png';
  width: number;
  height: number;
}

/** The size that fits `w`×`h` within `max` on its longest edge, keeping the aspect ratio (never upscaling). */
export function fitWithin(w: number, h: number, max: number): { width: number; height: number } {
  const scale = Math.min(1, max / Math.max(w, h));
  return { width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)) };
}

/** A PNG of a PNG or JPEG image, downscaled to at most 512 px on its longest edge; throws on undecodable input. */
export async function imagePreview(bytes: Buffer, maxPixels: number): Promise<Preview> {
  assertDecodable(bytes, maxPixels);
  let img: Awaited<ReturnType<typeof loadImage>>;
  try {
    img = await loadImage(bytes);
  } catch (e) {
    throw new Error(`the image cannot be decoded: ${(e as Error).message}`);
  }
  const { width, height } = fitWithin(img.width, img.height, PREVIEW_MAX_EDGE);
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img, 0, 0, width, height);
  return { bytes: await canvas.encode('png'), mediaType: 'image/png', width, height };
}

/**
 * A waveform picture of a whole audio segment: min/max envelope per pixel column over a centre
 * line. Only PCM WAV can be decoded in-process; anything else throws saying so.
 */
export async function waveformPreview(bytes: Buffer, mediaType: string): Promise<Preview> {
  if (mediaType !== 'audio/wav') {
    throw new Error(`no ${mediaType} decoder is available offline; waveform previews need audio/wav (PCM)`);
  }
  const wav = parseWav(bytes);
  const { width, height } = WAVEFORM_SIZE;
  const canvas = createCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#10151c';
  ctx.fillRect(0, 0, width, height);
  const mid = height / 2;
  ctx.fillStyle = '#2c3a4a';
  ctx.fillRect(0, Math.floor(mid), width, 1);
  if (wav.frames > 0) {
    const { min, max } = peaks(wav, width);
    ctx.fillStyle = '#4fc3f7';
    const amp = mid - 4;
    for (let x = 0; x < width; x++) {
      const top = Math.floor(mid - max[x] * amp);
      const bottom = Math.ceil(mid - min[x] * amp);
      ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
  }
  // Second ticks along the bottom edge give the picture a sense of length.
  const seconds = durationOf(wav);
  ctx.fillStyle = '#5b6b7c';
  if (seconds > 0) {
    const every = seconds > 120 ? 10 : 1;
    for (let s = every; s < seconds; s += every) ctx.fillRect(Math.round((s / seconds) * width), height - 6, 1, 6);
  }
  return { bytes: await canvas.encode('png'), mediaType: 'image/png', width, height };
}
