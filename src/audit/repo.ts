import { z } from 'zod';
import { stmt, type Db } from '../db/open.js';
import type { NewId } from '../ids.js';
import { decodeCursor, encodeCursor, limitSchema, toPage, type Page } from '../pagination.js';

/** Every audit event name observd records. */
export const AUDIT_EVENTS = [
  'source_created',
  'source_updated',
  'source_deleted',
  'token_rotated',
  'token_revoked',
  'observation_created',
  'observation_replayed',
  'upload_rejected',
  'rate_limited',
  'observation_deleted',
  'retention_purged',
  'quota_evicted',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];

export interface AuditEntry {
  source_id?: string | null;
  observation_id?: string | null;
  detail?: Record<string, unknown>;
}

/** Appends one audit record inside the caller's transaction. Callers pass hashes, never tokens or raw keys. */
export function recordAudit(db: Db, newId: NewId, atMs: number, event: AuditEvent, entry: AuditEntry = {}): void {
  stmt(db, 
    `INSERT INTO audit_events (audit_id, at_ms, event, source_id, observation_id, detail) VALUES (?, ?, ?, ?, ?, ?)`,
  ).run(newId('aud'), atMs, event, entry.source_id ?? null, entry.observation_id ?? null, JSON.stringify(entry.detail ?? {}));
}

export const auditQuerySchema = z
  .object({
    source_id: z.string().max(128).optional(),
    event: z.enum(AUDIT_EVENTS).optional(),
    limit: limitSchema,
    cursor: z.string().max(512).optional(),
  })
  .strict();

interface AuditRow {
  audit_id: string;
  at_ms: number;
  event: string;
  source_id: string | null;
  observation_id: string | null;
  detail: string;
}

/** Lists audit records, newest first, with cursor pagination; bad_request on a foreign cursor. */
export function listAudit(db: Db, q: z.output<typeof auditQuerySchema>): Page<Record<string, unknown>> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.source_id) (where.push('source_id = ?'), args.push(q.source_id));
  if (q.event) (where.push('event = ?'), args.push(q.event));
  if (q.cursor) {
    const [id] = decodeCursor('audit', q.cursor, ['string']);
    where.push('audit_id < ?');
    args.push(id);
  }
  const sql = `SELECT * FROM audit_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY audit_id DESC LIMIT ?`;
  const rows = stmt(db, sql).all(...args, q.limit + 1) as AuditRow[];
  return toPage(
    rows,
    q.limit,
    (r) => ({ ...r, detail: JSON.parse(r.detail) }),
    (r) => encodeCursor('audit', [r.audit_id]),
  );
}
