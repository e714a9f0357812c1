import { describe, expect, it } from 'vitest';
import { imageSize } from '../src/derivations/image-size.js';
import { durationOf, parseWav } from '../src/derivations/wav.js';
import { sniffMediaType } from '../src/observations/media.js';
import { makePng, makeWav } from './helpers/media.js';

/**
 * The header readers' edge cases that the libraries weighed in docs/architecture.md ("Libraries
 * considered") answer differently: these pin observd's answers, so a swap cannot change them unseen.
 */

const SOI = Buffer.from([0xff, 0xd8]);

/** A JPEG marker segment with its length field. */
function segment(marker: number, body: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

/** A frame header (SOFn) for `w`×`h`, one component. */
const frame = (marker: number, w: number, h: number) => segment(marker, Buffer.from([8, h >> 8, h & 255, w >> 8, w & 255, 1, 1, 0x11, 0]));
const app0 = segment(0xe0, Buffer.from('JFIF\0\x01\x02\0\0\x01\0\x01\0\0', 'latin1'));

describe('imageSize', () => {
  it('reads a JPEG whose frame header comes right after SOI', () => {
    expect(imageSize(Buffer.concat([SOI, frame(0xc0, 640, 480), Buffer.from([0xff, 0xd9])]))).toEqual({ width: 640, height: 480 });
  });

  it('reads every frame kind (SOF0–SOF15 but DHT, JPG and DAC), lossless and arithmetic ones included', () => {
    for (const marker of [0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]) {
      expect(imageSize(Buffer.concat([SOI, app0, frame(marker, 320, 200)])), marker.toString(16)).toEqual({ width: 320, height: 200 });
    }
    // A DHT segment is skipped, not taken for a frame.
    expect(imageSize(Buffer.concat([SOI, segment(0xc4, Buffer.alloc(20, 9)), frame(0xc0, 7, 5)]))).toEqual({ width: 7, height: 5 });
  });

  it('skips fill bytes between segments', () => {
    expect(imageSize(Buffer.concat([SOI, app0, Buffer.from([0xff, 0xff]), frame(0xc0, 100, 50)]))).toEqual({ width: 100, height: 50 });
  });

  it('finds no size in a frame header cut short, a lying segment length or a JPEG without a frame', () => {
    expect(imageSize(Buffer.concat([SOI, app0, frame(0xc0, 100, 50).subarray(0, 6)]))).toBeUndefined();
    expect(imageSize(Buffer.concat([SOI, Buffer.from([0xff, 0xe0, 0xff, 0xff]), Buffer.alloc(20)]))).toBeUndefined();
    expect(imageSize(Buffer.concat([SOI, app0, Buffer.from([0xff, 0xd9])]))).toBeUndefined();
  });

  it('finds no size in a PNG cut before the end of IHDR, whatever memory follows the slice', () => {
    const png = makePng(37, 23);
    expect(imageSize(png)).toEqual({ width: 37, height: 23 });
    const pool = Buffer.concat([png, png]); // the bytes after the slice are a whole PNG's
    for (const n of [8, 16, 20, 23]) expect(imageSize(pool.subarray(0, n)), `${n} bytes`).toBeUndefined();
  });

  it('answers only PNG and JPEG', () => {
    expect(imageSize(Buffer.from('GIF89a\x0a\x00\x0b\x00\x00\x00\x00', 'latin1'))).toBeUndefined();
    expect(imageSize(Buffer.concat([Buffer.from('RIFF\0\0\0\0WEBPVP8X', 'latin1'), Buffer.alloc(20)]))).toBeUndefined();
    expect(imageSize(Buffer.alloc(0))).toBeUndefined();
  });
});

/** A RIFF chunk, padded to an even length. */
function chunk(id: string, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body, Buffer.alloc(body.length & 1)]);
}

function fmt(bitsPerSample = 16, channels = 1, sampleRate = 8000): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(1, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(sampleRate, 4);
  b.writeUInt32LE((sampleRate * channels * bitsPerSample) / 8, 8);
  b.writeUInt16LE((channels * bitsPerSample) / 8, 12);
  b.writeUInt16LE(bitsPerSample, 14);
  return chunk('fmt ', b);
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...chunks]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

describe('parseWav', () => {
  it('takes the rest of the file when a streaming writer left the data size 0 or 0xFFFFFFFF', () => {
    for (const size of [0, 0xffffffff]) {
      const wav = makeWav(0.5, 8000);
      wav.writeUInt32LE(size, 40);
      const w = parseWav(wav);
      expect(w.frames).toBe(4000);
      expect(durationOf(w)).toBe(0.5);
    }
  });

  it('skips odd-sized chunks by their pad byte and does not count a pad byte as a sample', () => {
    const w = parseWav(riff(fmt(8), chunk('LIST', Buffer.from('INFOISFT\x03\0\0\0abc', 'latin1')), chunk('data', Buffer.alloc(101, 128))));
    expect(w.frames).toBe(101);
    expect(w.data.length).toBe(101);
  });

  it('drops a trailing partial frame of a data chunk cut short', () => {
    const wav = riff(fmt(16, 2), chunk('data', Buffer.alloc(1600)));
    expect(parseWav(wav.subarray(0, 44 + 801)).frames).toBe(200);
  });

  it('refuses a data chunk before its fmt chunk, a truncated fmt chunk and a file without data', () => {
    expect(() => parseWav(riff(chunk('data', Buffer.alloc(16)), fmt()))).toThrow('WAV data chunk comes before its fmt chunk');
    expect(() => parseWav(riff(fmt()).subarray(0, 30))).toThrow('WAV fmt chunk is truncated');
    expect(() => parseWav(riff(fmt()))).toThrow('WAV has no data chunk');
  });
});

describe('sniffMediaType', () => {
  const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

  it('takes the PNG signature alone for PNG, whatever follows it', () => {
    expect(sniffMediaType(PNG_SIG)).toBe('image/png');
    expect(sniffMediaType(Buffer.concat([PNG_SIG, Buffer.from('not a chunk at all, just bytes')]))).toBe('image/png');
    // An animated PNG is a PNG.
    expect(sniffMediaType(Buffer.concat([PNG_SIG, Buffer.from([0, 0, 0, 8]), Buffer.from('acTL'), Buffer.alloc(12)]))).toBe('image/png');
  });

  it('takes any EBML header for WebM audio, whatever its DocType and however short', () => {
    const ebml = (docType: string) =>
      Buffer.concat([
        Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x80 | (3 + docType.length), 0x42, 0x82, 0x80 | docType.length]),
        Buffer.from(docType),
      ]);
    expect(sniffMediaType(ebml('webm'))).toBe('audio/webm');
    expect(sniffMediaType(ebml('matroska'))).toBe('audio/webm');
    expect(sniffMediaType(ebml('webm').subarray(0, 4))).toBe('audio/webm');
  });

  it('takes any SOI followed by a marker for JPEG, and nothing else RIFF but WAVE', () => {
    expect(sniffMediaType(Buffer.from([0xff, 0xd8, 0xff, 0xf7, 0, 0]))).toBe('image/jpeg');
    expect(sniffMediaType(Buffer.from('RIFF\0\0\0\0AVI LIST', 'latin1'))).toBeUndefined();
    expect(sniffMediaType(Buffer.from('RIFF\0\0\0\0WEBPVP8 ', 'latin1'))).toBeUndefined();
    expect(sniffMediaType(Buffer.from('GIF89a', 'latin1'))).toBeUndefined();
  });
});
