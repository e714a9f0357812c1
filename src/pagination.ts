import { z } from 'zod';
import { AppError } from './errors.js';

/** `limit` query parameter: default 100, 1..1000. */
export const limitSchema = z.coerce.number().int().min(1).max(1000).default(100);

export interface Page<T> {
  data: T[];
  cursor: { next: string | null };
}

/** Encodes a keyset position as an opaque cursor; `scope` ties it to the listing that made it. */
export function encodeCursor(scope: string, key: Array<string | number>): string {
  return Buffer.from(JSON.stringify([scope, ...key])).toString('base64url');
}

/** Decodes a cursor made by `encodeCursor` for the same scope; bad_request if it is not one. */
export function decodeCursor(scope: string, cursor: string, shape: Array<'string' | 'number'>): Array<string | number> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new AppError('bad_request', 'cursor is not valid');
  }
  if (!Array.isArray(parsed) || parsed[0] !== scope || parsed.length !== shape.length + 1) {
    throw new AppError('bad_request', 'cursor is not valid for this listing');
  }
  const key = parsed.slice(1);
  key.forEach((v, i) => {
    if (typeof v !== shape[i]) throw new AppError('bad_request', 'cursor is not valid');
  });
  return key;
}

/** Builds a page from `limit + 1` fetched rows: the extra row only signals that more exist. */
export function toPage<R, T>(rows: R[], limit: number, view: (r: R) => T, key: (r: R) => string): Page<T> {
  const more = rows.length > limit;
  const slice = more ? rows.slice(0, limit) : rows;
  return { data: slice.map(view), cursor: { next: more ? key(slice[slice.length - 1]) : null } };
}
