import { decodeCursor, encodeCursor, type Listing, toPage } from '../pagination.js';
import { type Db, stmt } from './open.js';

export interface KeysetQuery<R, T> {
  table: string;
  /** The unique text column the pages are ordered and resumed by (a ULID-like id). */
  key: keyof R & string;
  /** Ties a cursor to this listing: another listing's cursor is bad_request. */
  scope: string;
  order: 'asc' | 'desc';
  /** The selected columns (default `*`). */
  columns?: string;
  /** Filter conditions (ANDed) and their arguments, in order. */
  where: string[];
  args: unknown[];
  view: (row: R) => T;
}

/**
 * A listing of one table in keyset pages over a unique text key, with a filter and a count: the
 * shared shape of the audit, run and derivation listings. bad_request on a foreign cursor.
 */
export function keysetListing<R extends object, T>(db: Db, q: KeysetQuery<R, T>): Listing<T> {
  const whereOf = (extra: string[]) => {
    const all = [...q.where, ...extra];
    return all.length ? `WHERE ${all.join(' AND ')}` : '';
  };
  const after = q.order === 'asc' ? '>' : '<';
  return {
    order: q.order,
    count: () =>
      stmt(db, `SELECT COUNT(*) FROM ${q.table} ${whereOf([])}`)
        .pluck()
        .get(...q.args) as number,
    fetchPage(cursor, limit) {
      const [from] = cursor ? decodeCursor(q.scope, cursor, ['string']) : [];
      const sql = `SELECT ${q.columns ?? '*'} FROM ${q.table} ${whereOf(cursor ? [`${q.key} ${after} ?`] : [])}
        ORDER BY ${q.key} ${q.order.toUpperCase()} LIMIT ?`;
      const rows = stmt(db, sql).all(...q.args, ...(cursor ? [from] : []), limit + 1) as R[];
      return toPage(rows, limit, q.view, (r) => encodeCursor(q.scope, [String(r[q.key])]));
    },
  };
}
