import { createHash } from 'node:crypto';
import { stmt, type Db } from '../db/open.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { decodeCursor, encodeCursor } from '../pagination.js';
import { toObservationView, type ObservationRow } from '../observations/repo.js';
import { toMatchExpression } from './query.js';
import type { SearchFilter, SearchHit, SearchReader } from './schemas.js';

/** Sensitivities whose text only the admin token may search (the rule of asset content). */
export const SENSITIVE = ['sensitive', 'restricted'];

/** Marks around matched words in a snippet (plain text, not HTML: a client escapes it and styles the marks). */
export const MARK_OPEN = '«';
export const MARK_CLOSE = '»';
/** Words of context a snippet shows around the matches. */
const SNIPPET_TOKENS = 16;

/** One page of hits and the cursor after it (null at the end): the shape of the shared list mechanism. */
export interface SearchPage {
  items: SearchHit[];
  next_cursor: string | null;
}

/** A search whose pages a list renderer fetches: `fetchPage(cursor, limit)`, `count()`, `order`. */
export interface SearchListing {
  fetchPage(cursor: string | undefined, limit: number): SearchPage;
  count(): number;
  order: 'relevance';
}

/**
 * Full-text search over canonical text (SQLite FTS5 in the same database). No HTTP: the REST
 * route and the MCP tool call the same `search`.
 */
export class SearchService {
  constructor(private deps: Pick<Deps, 'db'>) {}

  /**
   * Hits for `filter.q`, best first (bm25; among equal scores the newest capture first), of active
   * observations the reader may read: the read-only token never sees a sensitive source's
   * observations (matching them would reveal their text). bad_request for a query with nothing
   * to match or too many terms, or a cursor from another search.
   */
  search(filter: SearchFilter, reader: SearchReader): SearchListing {
    const match = toMatchExpression(filter.q);
    const { where, args } = filterSql(filter, reader);
    const db = this.deps.db;
    const from = `FROM search_index JOIN search_documents d ON d.doc_id = search_index.rowid
      JOIN observations o ON o.observation_id = d.observation_id
      WHERE search_index MATCH ? AND o.retention_state = 'active'${where.map((w) => ` AND ${w}`).join('')}`;
    // A cursor is an offset into this exact search: relevance order has no stable key to resume
    // from (scores move as the corpus changes), so a walk during writes may repeat or skip a hit.
    const scope = `search:${createHash('sha256').update(JSON.stringify([match, where, args])).digest('base64url').slice(0, 16)}`;
    return {
      order: 'relevance',
      count: () => (stmt(db, `SELECT count(*) ${from}`).pluck().get(match, ...args) as number),
      fetchPage: (cursor, limit) => {
        const offset = cursor === undefined ? 0 : (decodeCursor(scope, cursor, ['number'])[0] as number);
        if (!Number.isSafeInteger(offset) || offset < 0) throw new AppError('bad_request', 'cursor is not valid');
        const rows = stmt(
          db,
          `SELECT o.*, d.doc_id AS search_doc_id, bm25(search_index) AS search_rank ${from}
           ORDER BY search_rank, o.captured_at_ms DESC, o.observation_id DESC LIMIT ? OFFSET ?`,
        ).all(match, ...args, limit + 1, offset) as Array<ObservationRow & { search_doc_id: number; search_rank: number }>;
        const more = rows.length > limit;
        const page = more ? rows.slice(0, limit) : rows;
        return {
          items: page.map((r) => ({ observation: toObservationView(r), score: round(-r.search_rank), snippet: snippetOf(db, match, r.search_doc_id) })),
          next_cursor: more ? encodeCursor(scope, [offset + limit]) : null,
        };
      },
    };
  }
}

/** The SQL conditions (on `o`, the observation) of a search's filters and the reader's rights. */
function filterSql(f: SearchFilter, reader: SearchReader): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (reader !== 'admin') where.push(`o.sensitivity NOT IN (${SENSITIVE.map((s) => `'${s}'`).join(', ')})`);
  if (f.source_id !== undefined) (where.push('o.source_id = ?'), args.push(f.source_id));
  if (f.stream_id !== undefined) (where.push('o.stream_id = ?'), args.push(f.stream_id));
  if (f.kind !== undefined) (where.push('o.kind = ?'), args.push(f.kind));
  if (f.after_ms !== undefined) (where.push('o.captured_at_ms >= ?'), args.push(f.after_ms));
  if (f.before_ms !== undefined) (where.push('o.captured_at_ms <= ?'), args.push(f.before_ms));
  for (const [key, value] of Object.entries(f.metadata ?? {})) {
    // A query string value matches a JSON string equal to it, a number equal to it, or true/false.
    const path = `$."${key}"`;
    const alternatives = [`json_extract(o.metadata, ?) = ?`];
    args.push(path, value);
    if (/^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.test(value) && Number.isFinite(Number(value))) {
      alternatives.push(`(json_type(o.metadata, ?) IN ('integer', 'real') AND json_extract(o.metadata, ?) = ?)`);
      args.push(path, path, Number(value));
    }
    if (value === 'true' || value === 'false') {
      alternatives.push(`json_type(o.metadata, ?) = ?`);
      args.push(path, value);
    }
    where.push(`(o.metadata IS NOT NULL AND (${alternatives.join(' OR ')}))`);
  }
  return { where, args };
}

/** The snippet of one hit, computed only for the hits of the page (not for every match). */
function snippetOf(db: Db, match: string, docId: number): string {
  const s = stmt(
    db,
    `SELECT snippet(search_index, 0, '${MARK_OPEN}', '${MARK_CLOSE}', '…', ${SNIPPET_TOKENS}) FROM search_index WHERE search_index MATCH ? AND rowid = ?`,
  )
    .pluck()
    .get(match, docId) as string | undefined;
  return s ?? '';
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;
