import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/** The keys observd derives from the master key of an encrypted store; each has one use. */
export interface StoreKeys {
  /** Raw SQLCipher key of the database (hex, 64 chars). */
  dbHex: string;
  /** AES-256-GCM key of blob contents. */
  blob: Buffer;
  /** HMAC key that turns a content hash into a blob file name. */
  names: Buffer;
  /** A value that identifies the master key without revealing it (stored in the store's marker). */
  check: string;
}

const KEY_BYTES = 32;

function derive(master: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `observd ${info} v1`, KEY_BYTES));
}

/** Derives every key of a store from its 32-byte master key. */
export function deriveKeys(master: Buffer): StoreKeys {
  if (master.length !== KEY_BYTES) throw new Error(`an encryption key is ${KEY_BYTES} bytes, got ${master.length}`);
  return {
    dbHex: derive(master, 'database').toString('hex'),
    blob: derive(master, 'blob content'),
    names: derive(master, 'blob names'),
    check: createHash('sha256').update(derive(master, 'key check')).digest('hex'),
  };
}

/**
 * Reads a master key file: 32 raw bytes, or the same as 64 hex digits or base64 (surrounding
 * whitespace ignored). The error names the file, never its content.
 */
export function readKeyFile(path: string): Buffer {
  if (!existsSync(path)) throw new Error(`encryption key file ${path} does not exist`);
  const raw = readFileSync(path);
  if (raw.length === KEY_BYTES) return raw;
  const text = raw.toString('latin1').trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const b = Buffer.from(text, 'base64');
    if (b.length === KEY_BYTES) return b;
  }
  throw new Error(
    `encryption key file ${path} must hold exactly ${KEY_BYTES} random bytes (raw, 64 hex digits or base64); create one with: head -c 32 /dev/urandom > ${path}`,
  );
}

/** True when `keys` is the key whose check value a store recorded. */
export function keyMatches(keys: StoreKeys, check: string): boolean {
  const a = Buffer.from(keys.check, 'hex');
  const b = Buffer.from(check, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The file name of a blob in an encrypted store: an HMAC of its content hash, so names reveal no hashes. */
export function blobNameOf(keys: StoreKeys, sha256: string): string {
  return createHmac('sha256', keys.names).update(sha256).digest('hex');
}
