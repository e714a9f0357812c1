import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the generated signing key lives in the data directory. */
export const SIGNING_KEY_FILE = 'upload-signing.key';

/** What an upload URL's signature covers. */
export interface SignedUploadClaims {
  upload_id: string;
  source_id: string;
  media_type: string;
  expires_at_ms: number;
}

/**
 * The HMAC key for upload URLs: the configured one, else the key kept in
 * `<dataDir>/upload-signing.key`, generated (32 random bytes, mode 0600) on first start.
 * Throws when the file exists but holds no usable key.
 */
export function loadSigningKey(dataDir: string, configured?: string): Buffer {
  if (configured) return Buffer.from(configured, 'utf8');
  const path = join(dataDir, SIGNING_KEY_FILE);
  try {
    writeFileSync(path, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  chmodSync(path, 0o600);
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64url');
  if (key.length < 32) throw new Error(`${path} does not hold a signing key of at least 32 bytes; delete it to generate a new one`);
  return key;
}

function mac(key: Buffer, c: SignedUploadClaims): Buffer {
  return createHmac('sha256', key)
    .update(['observd-upload-v1', c.upload_id, c.source_id, c.media_type, String(c.expires_at_ms)].join('\n'))
    .digest();
}

/** The signature of an upload URL (base64url HMAC-SHA256 over every claim). */
export function signUpload(key: Buffer, claims: SignedUploadClaims): string {
  return mac(key, claims).toString('base64url');
}

/** True when `signature` was made with `key` over exactly these claims (constant-time compare). */
export function verifyUpload(key: Buffer, claims: SignedUploadClaims, signature: string): boolean {
  const expected = mac(key, claims);
  const given = Buffer.from(signature, 'base64url');
  // Node's decoder skips stray characters and unused trailing bits; only the canonical form counts.
  if (given.toString('base64url') !== signature) return false;
  return given.length === expected.length && timingSafeEqual(given, expected);
}
