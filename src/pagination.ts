import { z } from 'zod';
import { AppError } from './errors.js';

/** Page size of a paged (`page=true` / `cursor`) list when no `limit` is given. */
export const DEFAULT_PAGE_LIMIT = 100;
/** Largest page or truncation a caller may ask for; larger values are clamped, as Kheish clamps. */
export const MAX_LIMIT = 1000;

const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

/**
 * The list convention's query parameters, spread into every list route's query schema:
 * `limit` (1..1000, clamped) truncates; `page=true` or a `cursor` asks for the ListPage envelope.
 */
export const listParams = {
  limit: z
    .string()
    .regex(/^-?\d{1,16}$/, 'must be an integer')
    .transform((v) => Math.min(MAX_LIMIT, Math.max(1, Number(v))))
    .optional(),
  page: flag,
  cursor: z.string().min(1).max(1024).optional(),
};

/** What a list route parsed of the list convention. */
export interface ListParams {
  limit?: number;
  page?: boolean;
  cursor?: string;
}

/** One keyset page of a listing: its rows, and the cursor after the last one (null at the end). */
export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** A keyset page whose rows are already JSON object texts (see `Listing.fetchJsonPage`). */
export interface JsonPage {
  items: string[];
  next_cursor: string | null;
}

/**
 * A listing a route can render in any of the list convention's shapes: the domain provides
 * keyset pages (`fetchPage(cursor, limit)`), the HTTP layer (src/http/list.ts) decides whether
 * they become a bare array, a streamed array or a ListPage envelope.
 */
export interface Listing<T> {
  /** Up to `limit` rows after `cursor` (from the start when undefined); bad_request on a foreign cursor. */
  fetchPage(cursor: string | undefined, limit: number): Page<T>;
  /**
   * The same page as `fetchPage`, each row already serialized as the JSON text of its view
   * (byte for byte what `JSON.stringify` would write), when the listing can build it cheaper
   * than a view object per row; the HTTP renderer prefers it. Asynchronous, so a listing can
   * read it off the event loop (a read pool worker, see `src/db/read-pool.ts`); rejects with
   * the errors `fetchPage` throws.
   */
  fetchJsonPage?(cursor: string | undefined, limit: number): Promise<JsonPage>;
  /** How many rows match in all (ListPage `total_count`), now or as a Promise; omitted means "not counted" (0). */
  count?(): number | Promise<number>;
  /** The order of the listing, as ListPage `order` reports it (e.g. `asc`, `desc`). */
  order: string;
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
  return { items: slice.map(view), next_cursor: more ? key(slice[slice.length - 1]) : null };
}

/** Every row of a listing, read a page at a time (the CLI prints them as they come). */
export function* allRows<T>(listing: Listing<T>, pageSize = 500): Generator<T> {
  let cursor: string | undefined;
  for (;;) {
    const page = listing.fetchPage(cursor, pageSize);
    yield* page.items;
    if (page.next_cursor === null) return;
    cursor = page.next_cursor;
  }
}
