import { AppError } from '../errors.js';
import { MEDIA_BY_KIND, type SourceKind } from '../sources/schemas.js';

const ALIASES: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'audio/x-wav': 'audio/wav',
  'audio/wave': 'audio/wav',
  'audio/vnd.wave': 'audio/wav',
};

/** Lower-cases a media type, drops parameters and maps common aliases (`image/jpg` → `image/jpeg`). */
export function normalizeMediaType(mediaType: string): string {
  const base = mediaType.split(';')[0].trim().toLowerCase();
  return ALIASES[base] ?? base;
}

const MAGIC: Record<string, (head: Buffer) => boolean> = {
  'image/png': (h) => h.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  'image/jpeg': (h) => h.length >= 3 && h[0] === 0xff && h[1] === 0xd8 && h[2] === 0xff,
  'audio/wav': (h) => h.subarray(0, 4).toString('latin1') === 'RIFF' && h.subarray(8, 12).toString('latin1') === 'WAVE',
  'audio/webm': (h) => h.subarray(0, 4).equals(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])),
};

/** The media type the leading bytes show, if they are one observd knows. */
export function sniffMediaType(head: Buffer): string | undefined {
  return Object.keys(MAGIC).find((t) => MAGIC[t](head));
}

/** The extensions `observd upload` and the capture agent send, with their media types. */
const SENT_EXTENSIONS: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  wav: 'audio/wav',
  webm: 'audio/webm',
};

/** Every extension a file name may cross-check its bytes with. */
const BY_EXTENSION: Record<string, string> = { ...SENT_EXTENSIONS, jpe: 'image/jpeg', wave: 'audio/wav', weba: 'audio/webm' };

/**
 * The media type `observd upload` and the capture agent send a file as, by the text after its
 * last dot (png, jpg, jpeg, wav, webm, any case); undefined for any other file.
 */
export function sentMediaTypeOf(fileName: string): string | undefined {
  const ext = fileName.slice(fileName.lastIndexOf('.') + 1).toLowerCase();
  return Object.hasOwn(SENT_EXTENSIONS, ext) ? SENT_EXTENSIONS[ext] : undefined;
}

/**
 * The media type of an upload that declared none (the Kheish CLI's default): what the bytes are,
 * cross-checked with the file name's extension when it names a known type. media_mismatch when
 * the two disagree; unsupported_media_type when the bytes are no type observd accepts.
 */
export function inferMediaType(fileName: string, head: Buffer): string {
  const sniffed = sniffMediaType(head);
  const ext = /\.([A-Za-z0-9]+)$/.exec(fileName)?.[1]?.toLowerCase();
  const named = ext ? BY_EXTENSION[ext] : undefined;
  if (!sniffed) {
    throw new AppError(
      'unsupported_media_type',
      `no media_type was given and the bytes of "${fileName}" are not an accepted media type (png, jpeg, wav, webm)`,
    );
  }
  if (named && named !== sniffed) {
    throw new AppError('media_mismatch', `the file name "${fileName}" says ${named} but the bytes are ${sniffed}`);
  }
  return sniffed;
}

/** Refuses a media type the source kind may not upload; unsupported_media_type. */
export function assertAllowedForKind(kind: SourceKind, mediaType: string): void {
  const allowed = MEDIA_BY_KIND[kind];
  if (!allowed.includes(mediaType)) {
    throw new AppError('unsupported_media_type', `${kind} sources accept ${allowed.join(', ')}; got ${mediaType}`);
  }
}

/** Refuses bytes whose magic number is not the declared type's; media_mismatch. */
export function assertBytesMatch(mediaType: string, head: Buffer): void {
  const check = MAGIC[mediaType];
  if (!check?.(head)) {
    const seen = sniffMediaType(head);
    throw new AppError('media_mismatch', `declared ${mediaType} but the bytes are ${seen ? `${seen}` : 'not a recognised media type'}`);
  }
}

/** Strict base64 (standard alphabet, padded, no whitespace) to bytes; bad_request otherwise. */
export function decodeBase64Strict(s: string, field: string): Buffer {
  const bytes = Buffer.from(s, 'base64');
  if (!isStrictBase64Of(s, bytes)) {
    throw new AppError('bad_request', `${field} is not valid base64 (standard alphabet, padded, no whitespace)`, {
      reason: 'invalid_base64',
    });
  }
  return bytes;
}

const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * True when `bytes` (Node's decoding of `s`) came from strict, canonical base64: the standard
 * alphabet, padded, nothing else, zero trailing bits. Node's decoder skips characters outside
 * its alphabet and stops at a misplaced `=`, either of which makes the result shorter than `s`
 * promises; it also takes the URL alphabet (`-`, `_`) and ignores trailing bits, checked here.
 * The same answer as re-encoding and comparing (a property test checks it), without building a
 * second copy of a large string.
 */
export function isStrictBase64Of(s: string, bytes: Buffer): boolean {
  const n = s.length;
  if (n % 4 !== 0) return false;
  if (n === 0) return bytes.length === 0;
  const pads = s.charCodeAt(n - 1) === 61 ? (s.charCodeAt(n - 2) === 61 ? 2 : 1) : 0;
  if (bytes.length !== (n / 4) * 3 - pads) return false;
  if (s.includes('-') || s.includes('_')) return false;
  if (pads === 0) return true;
  // The last character before the padding carries bits that must be zero (2 of them, or 4).
  const last = BASE64_ALPHABET.indexOf(s[n - 1 - pads]);
  return last >= 0 && (last & (pads === 1 ? 0b11 : 0b1111)) === 0;
}
