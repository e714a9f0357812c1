import { createCanvas } from '@napi-rs/canvas';

/** Where the lines go, in pixels; every field has the large-print default that OCR reads best. */
export interface TextLayout {
  /** 1400 by default. */
  width?: number;
  /** By default 10 below the first baseline plus one line height per line. */
  height?: number;
  /** DejaVu Sans at this size; 56 by default. */
  fontPx?: number;
  /** The left edge of every line; 40 by default. */
  x?: number;
  /** The first line's baseline; 110 by default. */
  baseline?: number;
  /** 90 by default. */
  lineHeight?: number;
  /** A 3×3 dot near the top-right corner (a blinking cursor): changes pixels, not text. */
  mark?: boolean;
}

/** A screenshot-like PNG: dark text lines on white. */
export async function textPng(lines: string[], layout: TextLayout = {}): Promise<Buffer> {
  const { width = 1400, fontPx = 56, x = 40, baseline = 110, lineHeight = 90 } = layout;
  const canvas = createCanvas(width, layout.height ?? baseline + 10 + lines.length * lineHeight);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#111111';
  ctx.font = `${fontPx}px DejaVu Sans`;
  lines.forEach((l, i) => ctx.fillText(l, x, baseline + i * lineHeight));
  if (layout.mark) ctx.fillRect(canvas.width - 20, 10, 3, 3);
  return canvas.encode('png');
}
