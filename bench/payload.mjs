// Upload bodies for the ingest benchmarks, built once outside the timed loop. Each body is a
// template holding a valid PNG of an exact size; `next(seed)` patches, in place, a 20-digit seed
// in a tEXt chunk (and that chunk's CRC) plus the idempotency key, so every request carries
// distinct bytes (content addressing cannot dedupe) for the cost of a few dozen bytes written.
// One body per concurrent uploader: a closed-loop worker has one request in flight, so its
// buffer is free to patch again once the response arrived.
import { crc32 } from 'node:zlib';
import { makePng } from './png.mjs';

const DIGITS = 20;
const KEYWORD = 'observd-bench\0';
// Layout after the 8-byte signature and the 25-byte IHDR chunk (offset 33):
// seed chunk = length(4) 'tEXt'(4) keyword(14) digits(20) crc(4).
const SEED_CHUNK = 33;
const SEED_TYPE = SEED_CHUNK + 4;
const SEED_DIGITS = SEED_TYPE + 4 + KEYWORD.length;
const SEED_CRC = SEED_DIGITS + DIGITS;
const SEED_END = SEED_CRC + 4;
// The base64 of bytes [WIN_START, WIN_END) covers the digits and the CRC; both bounds are
// multiples of 3, so those characters can be replaced without touching the rest of the string.
const WIN_START = Math.floor(SEED_DIGITS / 3) * 3;
const WIN_END = Math.ceil(SEED_END / 3) * 3;

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A valid PNG of exactly `size` bytes with a patchable seed chunk right after IHDR. */
export function pngOfSize(size) {
  const base = makePng(Math.max(0, size - 4096 - Math.ceil(size / 65535) * 5), 7);
  const seed = chunk('tEXt', Buffer.from(KEYWORD + '0'.repeat(DIGITS), 'latin1'));
  const head = base.subarray(0, SEED_CHUNK);
  const idat = base.subarray(SEED_CHUNK, base.length - 12);
  const iend = base.subarray(base.length - 12);
  const pad = size - (base.length + seed.length + 12 + 4);
  if (pad < 0) throw new Error(`cannot build a PNG of ${size} bytes`);
  const padChunk = chunk('tEXt', Buffer.concat([Buffer.from('pad\0', 'latin1'), Buffer.alloc(pad, 0x78)]));
  const png = Buffer.concat([head, seed, idat, padChunk, iend]);
  if (png.length !== size) throw new Error(`PNG is ${png.length} bytes, wanted ${size}`);
  return png;
}

/** Writes `seed` into a PNG window copy (starting at file offset `from`) and fixes that chunk's CRC. */
function patchSeed(win, from, seed) {
  win.write(String(seed).padStart(DIGITS, '0'), SEED_DIGITS - from, 'latin1');
  win.writeUInt32BE(crc32(win.subarray(SEED_TYPE - from, SEED_CRC - from)), SEED_CRC - from);
}

const keyDigits = (seed) => String(seed).padStart(DIGITS, '0');

/**
 * A factory of JSON upload bodies in the seed's shape:
 * `{upload:{file_name, media_type, content_base64}, idempotency_key}`. `body(w)` is worker w's
 * buffer; `next(w, seed)` patches it for request `seed` and returns it.
 */
export function jsonBodies(png, workers, tag) {
  const template = Buffer.from(
    JSON.stringify({
      upload: { file_name: 'bench.png', media_type: 'image/png', content_base64: png.toString('base64') },
      idempotency_key: `${tag}-${'0'.repeat(DIGITS)}`,
    }),
  );
  const contentAt = template.indexOf('"content_base64":"') + '"content_base64":"'.length;
  const keyAt = template.lastIndexOf(`"${tag}-`) + tag.length + 2;
  const bodies = Array.from({ length: workers }, () => Buffer.from(template));
  const wins = Array.from({ length: workers }, () => Buffer.from(png.subarray(SEED_CHUNK, WIN_END)));
  return {
    contentType: 'application/json',
    bytes: template.length,
    next(w, seed) {
      const body = bodies[w];
      const win = wins[w];
      patchSeed(win, SEED_CHUNK, seed);
      body.write(win.subarray(WIN_START - SEED_CHUNK).toString('base64'), contentAt + (WIN_START / 3) * 4, 'latin1');
      body.write(keyDigits(seed), keyAt, 'latin1');
      return body;
    },
  };
}

/**
 * The same for multipart: an `observation` JSON part `{idempotency_key, upload:{file_name,
 * media_type}}` then a `file` part with the raw PNG.
 */
export function multipartBodies(png, workers, tag) {
  const boundary = `observdbench${'7'.repeat(16)}`;
  const observation = JSON.stringify({
    idempotency_key: `${tag}-${'0'.repeat(DIGITS)}`,
    upload: { file_name: 'bench.png', media_type: 'image/png' },
  });
  const pre = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="observation"\r\nContent-Type: application/json\r\n\r\n${observation}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.png"\r\nContent-Type: image/png\r\n\r\n`,
  );
  const template = Buffer.concat([pre, png, Buffer.from(`\r\n--${boundary}--\r\n`)]);
  const keyAt = pre.indexOf(`"${tag}-`) + tag.length + 2;
  const fileAt = pre.length;
  const bodies = Array.from({ length: workers }, () => Buffer.from(template));
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    bytes: template.length,
    next(w, seed) {
      const body = bodies[w];
      patchSeed(body.subarray(fileAt), 0, seed);
      body.write(keyDigits(seed), keyAt, 'latin1');
      return body;
    },
  };
}
