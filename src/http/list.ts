import type { Context } from 'hono';
import { DEFAULT_PAGE_LIMIT, type JsonPage, type ListParams, type Listing } from '../pagination.js';

/** Rows fetched per internal page while streaming an unlimited list. */
export const STREAM_PAGE_ROWS = 500;

/**
 * The one list mechanism of every list route (Kheish's `list_or_page`):
 * - `page=true` or a `cursor`: the ListPage envelope
 *   `{items, pagination: {limit, total_count, has_more, next_cursor, order}}` (`limit` default 100);
 * - `limit` alone: a bare JSON array of at most `limit` rows;
 * - neither: a bare JSON array of every matching row, streamed page by page over the keyset
 *   cursor, so no listing is ever held whole in memory.
 * The route parses its filters and `listParams`, builds the domain's `Listing`, and returns this.
 */
export async function renderList<T>(c: Context, params: ListParams, listing: Listing<T>): Promise<Response> {
  if (params.page || params.cursor !== undefined) {
    const limit = params.limit ?? DEFAULT_PAGE_LIMIT;
    const page = await jsonPage(listing, params.cursor, limit);
    const pagination = {
      limit,
      total_count: (await listing.count?.()) ?? 0,
      has_more: page.next_cursor !== null,
      ...(page.next_cursor !== null ? { next_cursor: page.next_cursor } : {}),
      order: listing.order,
    };
    return jsonText(c, `{"items":[${page.items.join(',')}],"pagination":${JSON.stringify(pagination)}}`);
  }
  if (params.limit !== undefined) return jsonText(c, `[${(await jsonPage(listing, undefined, params.limit)).items.join(',')}]`);
  return streamAll(listing);
}

/** A page with each row as JSON text: the listing's own serialization when it has one, else `JSON.stringify` of each view. */
async function jsonPage<T>(listing: Listing<T>, cursor: string | undefined, limit: number): Promise<JsonPage> {
  if (listing.fetchJsonPage) return listing.fetchJsonPage(cursor, limit);
  const page = listing.fetchPage(cursor, limit);
  return { items: page.items.map((item) => JSON.stringify(item)), next_cursor: page.next_cursor };
}

/** A JSON answer already serialized (what `c.json` sends, without serializing again). */
function jsonText(c: Context, text: string): Response {
  return c.body(text, 200, { 'content-type': 'application/json' });
}

/**
 * Streams every row as one JSON array, one page read ahead of what was sent; the first page is
 * read before answering, so its errors are problems.
 */
async function streamAll<T>(listing: Listing<T>): Promise<Response> {
  let page = await jsonPage(listing, undefined, STREAM_PAGE_ROWS);
  let first = true;
  let done = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (done) return;
      const last = page.next_cursor === null;
      controller.enqueue(encodeRows(page.items, first, last));
      first = false;
      if (last) {
        done = true;
        controller.close();
        return;
      }
      page = await jsonPage(listing, page.next_cursor!, STREAM_PAGE_ROWS);
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
}

/**
 * One streamed chunk: the rows' JSON texts comma-separated, opening the array on the first chunk
 * and closing it on the last, written straight into one buffer (no joined string of the whole
 * page, which would be a large heap object per chunk).
 */
function encodeRows(items: string[], first: boolean, last: boolean): Uint8Array {
  let size = (first ? 1 : 0) + (last ? 1 : 0);
  for (let i = 0; i < items.length; i++) size += Buffer.byteLength(items[i]) + (i > 0 || !first ? 1 : 0);
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  if (first) at += out.write('[', at, 'latin1');
  for (let i = 0; i < items.length; i++) {
    if (i > 0 || !first) at += out.write(',', at, 'latin1');
    at += out.write(items[i], at);
  }
  if (last) at += out.write(']', at, 'latin1');
  return out;
}
