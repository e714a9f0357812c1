import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** The stored form of a token: its SHA-256 digest (tokens are never stored or logged). */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A fresh upload token: 32 random bytes, base64url, with a recognisable prefix. */
export function generateToken(): string {
  return `obt_${randomBytes(32).toString('base64url')}`;
}

const DUMMY = hashToken('observd-dummy-token-for-constant-time');

/**
 * Compares a presented token with a stored hash in constant time; the digest comparison has a
 * fixed length, so neither the token's length nor a missing hash changes the work done.
 */
export function tokenMatches(presented: string, stored: Buffer | null | undefined): boolean {
  const h = hashToken(presented);
  const ok = timingSafeEqual(h, stored && stored.length === 32 ? stored : DUMMY);
  return ok && !!stored;
}

/** A short non-reversible tag of a secret for audit and logs. */
export function fingerprintOf(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex').slice(0, 16);
}
