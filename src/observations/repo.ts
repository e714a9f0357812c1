import { stmt, type Db } from '../db/open.js';
import { readOffLoop, type ReadJob } from '../db/read-pool.js';
import { decodeCursor, encodeCursor, toPage, type JsonPage, type Listing } from '../pagination.js';
import { sha256Hex } from './fingerprint.js';
import type { ObservationFilter, ObservationView } from './schemas.js';

/** An observation row as stored. */
export interface ObservationRow extends Omit<ObservationView, 'metadata'> {
  metadata: string | null;
  blobs_held: number;
}

/** Reads one observation; undefined if missing. */
export function getObservationRow(db: Db, id: string): ObservationRow | undefined {
  return stmt(db, `SELECT * FROM observations WHERE observation_id = ?`).get(id) as ObservationRow | undefined;
}

/** How an erased observation's idempotency key is kept: its hash, so a retried upload is still answered as a replay. */
export function erasedKey(key: string): string {
  return `erased:${sha256Hex(key)}`;
}

/**
 * Reads the observation stored under an idempotency key, also as an erased (purged and
 * scrubbed) row that keeps only the key's hash; undefined if none.
 */
export function findByIdempotencyKey(db: Db, sourceId: string, key: string): ObservationRow | undefined {
  return stmt(db, `SELECT * FROM observations WHERE source_id = ? AND idempotency_key IN (?, ?)`).get(sourceId, key, erasedKey(key)) as
    | ObservationRow
    | undefined;
}

/** The view's fields in the view's order: every stored column but `blobs_held`. */
const VIEW_COLUMNS = [
  'observation_id',
  'source_id',
  'kind',
  'sensitivity',
  'retention_state',
  'asset_id',
  'canonical_text_asset_id',
  'file_name',
  'media_type',
  'sha256',
  'byte_length',
  'captured_at_ms',
  'received_at_ms',
  'expires_at_ms',
  'purged_at_ms',
  'stream_id',
  'seq_no',
  'idempotency_key',
  'request_fingerprint',
  'metadata',
  'latitude',
  'longitude',
  'processing_status',
  'origin_url',
] as const;

const INSERT_COLUMNS = [...VIEW_COLUMNS, 'blobs_held'];

/** Inserts a new observation row inside the caller's transaction. */
export function insertObservation(db: Db, row: ObservationRow): void {
  stmt(db, `INSERT INTO observations (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map((c) => `@${c}`).join(', ')})`).run(row);
}

/** Converts a row to its wire view. */
export function toObservationView(r: ObservationRow): ObservationView {
  // Field by field: an object rest/spread over two dozen fields is ~10x slower, and a listing
  // page converts a hundred rows.
  return {
    observation_id: r.observation_id,
    source_id: r.source_id,
    kind: r.kind,
    sensitivity: r.sensitivity,
    retention_state: r.retention_state,
    asset_id: r.asset_id,
    canonical_text_asset_id: r.canonical_text_asset_id,
    file_name: r.file_name,
    media_type: r.media_type,
    sha256: r.sha256,
    byte_length: r.byte_length,
    captured_at_ms: r.captured_at_ms,
    received_at_ms: r.received_at_ms,
    expires_at_ms: r.expires_at_ms,
    purged_at_ms: r.purged_at_ms,
    stream_id: r.stream_id,
    seq_no: r.seq_no,
    idempotency_key: r.idempotency_key,
    request_fingerprint: r.request_fingerprint,
    metadata: r.metadata === null ? null : JSON.parse(r.metadata),
    latitude: r.latitude,
    longitude: r.longitude,
    processing_status: r.processing_status,
    origin_url: r.origin_url,
  };
}

/**
 * The view's JSON built by SQLite, one text per row instead of two dozen values (most of a page's
 * cost is making those values): the fields up to `request_fingerprint`, in the view's order.
 * The rest (`JSON_SPLICED`) is spliced on in JS (`viewJson`), because SQLite writes REALs
 * differently from JavaScript (`5.0`, 17 digits) and `metadata` is stored as the JSON text
 * JavaScript wrote (`processing_status` and `origin_url` follow it, in the view's order).
 */
const JSON_SPLICED = VIEW_COLUMNS.indexOf('metadata');
const VIEW_JSON_HEAD = `json_object(${VIEW_COLUMNS.slice(0, JSON_SPLICED)
  .map((c) => `'${c}', ${c}`)
  .join(', ')}) AS head, ${VIEW_COLUMNS.slice(JSON_SPLICED).join(', ')}, captured_at_ms, observation_id`;

interface ViewJsonRow {
  head: string;
  metadata: string | null;
  latitude: number | null;
  longitude: number | null;
  processing_status: string | null;
  origin_url: string | null;
  captured_at_ms: number;
  observation_id: string;
}

/** A row's view as JSON text, exactly what `JSON.stringify(toObservationView(row))` writes. */
function viewJson(r: ViewJsonRow): string {
  return (
    r.head.slice(0, -1) +
    `,"metadata":${r.metadata ?? 'null'},"latitude":${JSON.stringify(r.latitude)},"longitude":${JSON.stringify(r.longitude)},"processing_status":${JSON.stringify(r.processing_status)},"origin_url":${JSON.stringify(r.origin_url)}}`
  );
}

/**
 * Lists observations by capture time then id as keyset pages, so a walk sees each row once even
 * while uploads continue; bad_request on a cursor from another listing or order. JSON pages and
 * the count run on the connection's read pool when the daemon gave it one (`readOffLoop`).
 */
export function listObservations(db: Db, q: ObservationFilter): Listing<ObservationView> {
  const { where, order, scope } = observationFilterSql(q);
  // A source's active observations are counted by the source row's own counter, which every
  // upload, purge and delete moves in its transaction: one row, read here (cheaper than a trip
  // to a worker); counting rows is a read for the pool.
  const sourceCounter = q.source_id !== undefined && where.length === 2 && !q.include_purged;
  return {
    order,
    count: () =>
      sourceCounter
        ? ((stmt(db, `SELECT active_observation_count FROM sources WHERE source_id = ?`).pluck().get(q.source_id) as number | undefined) ??
          0)
        : readOffLoop(db, countJob, q),
    fetchPage(cursor, limit) {
      const { sql, args } = observationPageSql(q, cursor, limit);
      return toPage(stmt(db, sql).all(...args) as ObservationRow[], limit, toObservationView, (r) => cursorOf(scope, r));
    },
    fetchJsonPage: (cursor, limit) => readOffLoop(db, jsonPageJob, q, cursor, limit),
  };
}

const cursorOf = (scope: string, r: { captured_at_ms: number; observation_id: string }) =>
  encodeCursor(scope, [r.captured_at_ms, r.observation_id]);

/**
 * One page of `listObservations` with each row as its view's JSON text (exported for read-pool
 * workers, see `jsonPageJob`); bad_request on a foreign cursor.
 */
export function observationJsonPage(db: Db, q: ObservationFilter, cursor: string | undefined, limit: number): JsonPage {
  const { sql, args } = observationPageSql(q, cursor, limit, VIEW_JSON_HEAD);
  const { scope } = observationFilterSql(q);
  return toPage(stmt(db, sql).all(...args) as ViewJsonRow[], limit, viewJson, (r) => cursorOf(scope, r));
}

/** How many observations match `q`, row by row (ListPage `total_count`; exported for read-pool workers, see `countJob`). */
export function countObservations(db: Db, q: ObservationFilter): number {
  const { where, args } = observationFilterSql(q);
  return stmt(db, `SELECT COUNT(*) FROM observations ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`)
    .pluck()
    .get(...args) as number;
}

const jsonPageJob: ReadJob<[ObservationFilter, string | undefined, number], JsonPage> = {
  module: import.meta.url,
  name: 'observationJsonPage',
  run: observationJsonPage,
};
const countJob: ReadJob<[ObservationFilter], number> = { module: import.meta.url, name: 'countObservations', run: countObservations };

/**
 * The statement one page of `listObservations` runs, selecting `columns` (exported so a test
 * can check its plan); bad_request on a foreign cursor.
 */
export function observationPageSql(
  q: ObservationFilter,
  cursor: string | undefined,
  limit: number,
  columns = '*',
): { sql: string; args: unknown[] } {
  const { where, args, order, scope } = observationFilterSql(q);
  if (cursor) {
    const [at, id] = decodeCursor(scope, cursor, ['number', 'string']);
    // The range on the first key column lets SQLite walk the index; the OR settles ties.
    if (order === 'asc') where.push('captured_at_ms >= ? AND (captured_at_ms > ? OR observation_id > ?)');
    else where.push('captured_at_ms <= ? AND (captured_at_ms < ? OR observation_id < ?)');
    args.push(at, at, id);
  }
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  const sql = `SELECT ${columns} FROM observations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY captured_at_ms ${dir}, observation_id ${dir} LIMIT ?`;
  return { sql, args: [...args, limit + 1] };
}

/** A listing's WHERE terms (source_id first when set, retention_state last unless include_purged), order and cursor scope. */
function observationFilterSql(q: ObservationFilter) {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.source_id !== undefined) where.push('source_id = ?'), args.push(q.source_id);
  if (q.stream_id !== undefined) where.push('stream_id = ?'), args.push(q.stream_id);
  if (q.after_ms !== undefined) where.push('captured_at_ms >= ?'), args.push(q.after_ms);
  if (q.before_ms !== undefined) where.push('captured_at_ms <= ?'), args.push(q.before_ms);
  if (q.processing_status?.length) {
    // Literal values (the schema admits only the four statuses, in one order): SQLite can then
    // prove the partial status index applies, and there are at most 15 statement shapes.
    where.push(`processing_status IN (${q.processing_status.map((s) => `'${s}'`).join(', ')})`);
  }
  if (!q.include_purged) where.push(`retention_state = 'active'`);
  const order = q.order ?? 'asc';
  return { where, args, order, scope: `observations:${order}` };
}
