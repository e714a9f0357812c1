import type { Context } from 'hono';
import { DEFAULT_PAGE_LIMIT, type ListParams, type Listing } from '../pagination.js';

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
export function renderList<T>(c: Context, params: ListParams, listing: Listing<T>): Response {
  if (params.page || params.cursor !== undefined) {
    const limit = params.limit ?? DEFAULT_PAGE_LIMIT;
    const page = listing.fetchPage(params.cursor, limit);
    return c.json({
      items: page.items,
      pagination: {
        limit,
        total_count: listing.count?.() ?? 0,
        has_more: page.next_cursor !== null,
        ...(page.next_cursor !== null ? { next_cursor: page.next_cursor } : {}),
        order: listing.order,
      },
    });
  }
  if (params.limit !== undefined) return c.json(listing.fetchPage(undefined, params.limit).items);
  return streamAll(listing);
}

/** Streams every row as one JSON array; the first page is read before answering, so its errors are problems. */
function streamAll<T>(listing: Listing<T>): Response {
  const encoder = new TextEncoder();
  let page = listing.fetchPage(undefined, STREAM_PAGE_ROWS);
  let first = true;
  let done = false;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (done) return;
      let chunk = first ? '[' : '';
      for (const item of page.items) {
        chunk += (first ? '' : ',') + JSON.stringify(item);
        first = false;
      }
      if (page.next_cursor === null) {
        chunk += ']';
        done = true;
        controller.enqueue(encoder.encode(chunk));
        controller.close();
        return;
      }
      controller.enqueue(encoder.encode(chunk));
      page = listing.fetchPage(page.next_cursor, STREAM_PAGE_ROWS);
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'application/json' } });
}
