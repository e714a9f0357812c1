import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseJsonUpload } from '../src/http/routes/uploads.js';
import { parseJson, parseWith } from '../src/http/validate.js';
import { decodeBase64Strict, isStrictBase64Of } from '../src/observations/media.js';
import { jsonUploadSchema } from '../src/observations/schemas.js';

/** The reference definition of strict base64: re-encoding gives back exactly the input. */
const referenceStrict = (s: string) => s.length % 4 === 0 && Buffer.from(s, 'base64').toString('base64') === s;

/** Strings near base64: mostly alphabet characters, with padding, URL characters, whitespace and junk mixed in. */
const nearBase64 = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
  fc
    .tuple(
      fc.uint8Array({ minLength: 1, maxLength: 40 }),
      fc.nat(),
      fc.constantFrom('=', '-', '_', ' ', '\n', '!', 'é', '==', 'A', '\u0000'),
    )
    .map(([b, at, junk]) => {
      const s = Buffer.from(b).toString('base64');
      const i = at % (s.length + 1);
      return s.slice(0, i) + junk + s.slice(i);
    }),
  fc.stringMatching(/^[A-Za-z0-9+/=_-]{0,16}$/),
);

describe('strict base64', () => {
  it('accepts exactly what re-encodes to itself, for any string near base64', () => {
    fc.assert(
      fc.property(nearBase64, (s) => {
        expect(isStrictBase64Of(s, Buffer.from(s, 'base64'))).toBe(referenceStrict(s));
      }),
      { numRuns: 5000 },
    );
  });

  it('refuses non-canonical trailing bits and the URL alphabet', () => {
    expect(() => decodeBase64Strict('QR==', 'f')).toThrow(/not valid base64/); // 'R' has low bits set
    expect(() => decodeBase64Strict('QUI-', 'f')).toThrow(/not valid base64/);
    expect(decodeBase64Strict('QQ==', 'f')).toEqual(Buffer.from('A'));
  });
});

/** What the whole-body path answers: the parsed body and decoded content, or the error's code and message. */
function slowPath(bytes: Buffer) {
  try {
    const body = parseWith(jsonUploadSchema, parseJson(bytes));
    const content =
      body.upload.content_base64 !== undefined ? decodeBase64Strict(body.upload.content_base64, 'upload.content_base64') : undefined;
    return { body, content };
  } catch (e) {
    return { error: `${(e as { code?: string }).code}: ${(e as Error).message}` };
  }
}

function fastPath(bytes: Buffer) {
  try {
    const { body, content } = parseJsonUpload(bytes);
    const decoded =
      content ??
      (body.upload.content_base64 !== undefined ? decodeBase64Strict(body.upload.content_base64, 'upload.content_base64') : undefined);
    return { body, content: decoded };
  } catch (e) {
    return { error: `${(e as { code?: string }).code}: ${(e as Error).message}` };
  }
}

const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

/** Upload bodies written the usual way and in odd ones: spaces, escapes, duplicated keys, keys in the wrong place, bad base64. */
const uploadBody = fc
  .record({
    content: fc.oneof(fc.constant(png.toString('base64')), nearBase64),
    spaced: fc.boolean(),
    escapedSlash: fc.boolean(),
    keyElsewhere: fc.constantFrom('none', 'metadata', 'metadata-first', 'escaped-key', 'twice', 'fake-escaped-quote'),
    fileName: fc.constantFrom('a.png', 'a\\u0041.png', 'a\u0001.png', ''),
    extra: fc.constantFrom('', ',"canonical_text":"line\\nbreak"', ',"seq_no":-1', ',"metadata":[1]'),
    truncate: fc.boolean(),
  })
  .map((o) => {
    let content = o.content;
    if (o.escapedSlash) content = content.replace('/', '\\/');
    const key = o.spaced ? '"content_base64" : ' : '"content_base64":';
    let upload = `{"file_name":"${o.fileName}","media_type":"image/png",${key}"${content}"`;
    if (o.keyElsewhere === 'escaped-key') upload += `,"content\\u005fbase64":""`;
    if (o.keyElsewhere === 'twice') upload += `,"content_base64":"${content}"`;
    upload += '}';
    let body = `{"upload":${upload},"idempotency_key":"k1"${o.extra}`;
    if (o.keyElsewhere === 'metadata') body += `,"metadata":{"content_base64":"QQ=="}`;
    if (o.keyElsewhere === 'fake-escaped-quote') body += `,"metadata":{"x\\"content_base64":"QQ=="}`;
    body += '}';
    if (o.keyElsewhere === 'metadata-first') body = `{"metadata":{"content_base64":"QQ=="},${body.slice(1)}`;
    return Buffer.from(o.truncate ? body.slice(0, body.length - 2) : body);
  });

describe('parsing a JSON upload without its base64', () => {
  it('decodes the content of the usual compact body itself, once', () => {
    const body = Buffer.from(
      JSON.stringify({ upload: { file_name: 'a.png', content_base64: png.toString('base64') }, idempotency_key: 'k' }),
    );
    const { body: parsed, content } = parseJsonUpload(body);
    expect(content).toEqual(png);
    expect(parsed.upload.content_base64).toBe(png.toString('base64'));
    // With an escape anywhere it leaves the decoding to the caller (the whole-body path).
    const escaped = Buffer.from('{"upload":{"file_name":"a\\u0041.png","content_base64":"QQ=="},"idempotency_key":"k"}');
    expect(parseJsonUpload(escaped).content).toBeUndefined();
  });

  it('answers exactly what parsing the whole body answers, for usual and odd bodies', () => {
    fc.assert(
      fc.property(uploadBody, (bytes) => {
        expect(fastPath(bytes)).toEqual(slowPath(bytes));
      }),
      { numRuns: 3000 },
    );
  });
});
