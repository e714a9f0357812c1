import { createHash } from 'node:crypto';
import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { decodeCursor, encodeCursor, type Listing } from '../pagination.js';
import { getObservationRow, toObservationView } from '../observations/repo.js';
import { parseQuery, toMatchExpression } from './query.js';
import { makeSnippet } from './snippet.js';
import type { SearchFilter, SearchHit, SearchReader } from './schemas.js';

/** Sensitivities whose text only the admin token may search (the rule of asset content). */
export const SENSITIVE = ['sensitive'];

/** Marks around matched words in a snippet (plain text, not HTML: a client escapes it and styles the marks). */
export const MARK_OPEN = '«';
export const MARK_CLOSE = '»';
/** Words of context a snippet shows around the matches. */
const SNIPPET_TOKENS = 16;

/** A search as the shared list mechanism renders it: pages of hits, a count, order `relevance`. */
export type SearchListing = Listing<SearchHit> & { count(): number };

/**
 * Full-text search over canonical text (SQLite FTS5 in the same database). No HTTP: the REST
 * route and the MCP tool call the same `search`.
 */
export class SearchService {
  constructor(private deps: Pick<Deps, 'db' | 'config'>) {}

  /**
   * Hits for `filter.q` among the active observations the reader may read (the read-only token
   * never sees a sensitive source's: a match would reveal their text). Order: the newest
   * `search.rank_window` matches best first (bm25; equal scores, newest capture first), then
   * older matches newest first. Ranking costs a score per match and a word on every screen
   * matches most of a large store: the window bounds that cost, while a specific query (fewer
   * matches than the window) is ranked in full. bad_request for a query with nothing to match or
   * too many terms, or a cursor from another search.
   */
  search(filter: SearchFilter, reader: SearchReader): SearchListing {
    const match = toMatchExpression(filter.q);
    const terms = parseQuery(filter.q);
    const { where, args } = filterSql(filter, reader);
    const db = this.deps.db;
    const RANK_WINDOW = this.deps.config.search.rank_window;
    const from = `FROM search_index JOIN search_documents d ON d.doc_id = search_index.rowid
      JOIN observations o ON o.observation_id = d.observation_id
      WHERE search_index MATCH ? AND o.retention_state = 'active'${where.map((w) => ` AND ${w}`).join('')}`;
    // Narrow rows while ranking (the window may hold many); whole observations only for the page.
    const select = `SELECT d.doc_id AS search_doc_id, bm25(search_index) AS search_rank, o.captured_at_ms, o.observation_id ${from}`;
    // The newest RANK_WINDOW matches, best first (equal scores: newest capture first) ...
    const ranked = stmt(
      db,
      `SELECT * FROM (${select} ORDER BY search_index.rowid DESC LIMIT ${RANK_WINDOW})
       ORDER BY search_rank, captured_at_ms DESC, observation_id DESC LIMIT ? OFFSET ?`,
    );
    // ... then every older match, newest first.
    const older = stmt(db, `${select} ORDER BY search_index.rowid DESC LIMIT ? OFFSET ?`);
    /** Rows [offset, offset + count) of that order. */
    const rowsAt = (offset: number, count: number): SearchRow[] => {
      const rows = offset < RANK_WINDOW ? (ranked.all(match, ...args, count, offset) as SearchRow[]) : [];
      if (rows.length < count && (offset >= RANK_WINDOW || rows.length === RANK_WINDOW - offset)) {
        rows.push(...(older.all(match, ...args, count - rows.length, Math.max(RANK_WINDOW, offset)) as SearchRow[]));
      }
      return rows;
    };
    // A cursor is an offset into this exact search: relevance order has no stable key to resume
    // from (scores move as the corpus changes), so a walk during writes may repeat or skip a hit.
    const scope = `search:${createHash('sha256')
      .update(JSON.stringify([match, where, args]))
      .digest('base64url')
      .slice(0, 16)}`;
    return {
      order: 'relevance',
      count: () =>
        stmt(db, `SELECT count(*) ${from}`)
          .pluck()
          .get(match, ...args) as number,
      fetchPage: (cursor, limit) => {
        const offset = cursor === undefined ? 0 : (decodeCursor(scope, cursor, ['number'])[0] as number);
        if (!Number.isSafeInteger(offset) || offset < 0) throw new AppError('bad_request', 'cursor is not valid');
        const rows = rowsAt(offset, limit + 1);
        const more = rows.length > limit;
        const page = more ? rows.slice(0, limit) : rows;
        const body = stmt(db, `SELECT body FROM search_documents WHERE doc_id = ?`).pluck();
        return {
          items: page.map((r) => ({
            observation: toObservationView(getObservationRow(db, r.observation_id)!),
            score: round(-r.search_rank),
            snippet: makeSnippet((body.get(r.search_doc_id) as string | undefined) ?? '', terms, MARK_OPEN, MARK_CLOSE, SNIPPET_TOKENS),
          })),
          next_cursor: more ? encodeCursor(scope, [offset + limit]) : null,
        };
      },
    };
  }
}

type SearchRow = { search_doc_id: number; search_rank: number; captured_at_ms: number; observation_id: string };

/** The SQL conditions (on `o`, the observation) of a search's filters and the reader's rights. */
function filterSql(f: SearchFilter, reader: SearchReader): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (reader !== 'admin') where.push(`o.sensitivity NOT IN (${SENSITIVE.map((s) => `'${s}'`).join(', ')})`);
  if (f.source_id !== undefined) where.push('o.source_id = ?'), args.push(f.source_id);
  if (f.stream_id !== undefined) where.push('o.stream_id = ?'), args.push(f.stream_id);
  if (f.kind !== undefined) where.push('o.kind = ?'), args.push(f.kind);
  if (f.after_ms !== undefined) where.push('o.captured_at_ms >= ?'), args.push(f.after_ms);
  if (f.before_ms !== undefined) where.push('o.captured_at_ms <= ?'), args.push(f.before_ms);
  // Literal values, as in the observation listing (the schema admits only the four statuses).
  if (f.processing_status?.length) where.push(`o.processing_status IN (${f.processing_status.map((st) => `'${st}'`).join(', ')})`);
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

const round = (n: number) => Math.round(n * 1e6) / 1e6;
