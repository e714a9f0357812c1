import { z } from 'zod';
import { stmt, type Db } from '../db/open.js';
import type { NewId } from '../ids.js';
import { keysetListing } from '../db/keyset.js';
import { listParams, type Listing } from '../pagination.js';

import { AUDIT_EVENTS, type AuditEvent } from './events.js';

export { AUDIT_EVENTS, type AuditEvent };

/** Fields of a record that Kheish's `ObservationAuditRecord` carries at the top level. */
const KHEISH_FIELDS = [
  'reason',
  'upload_token_version',
  'idempotency_key_sha256',
  'request_fingerprint',
  'media_type',
  'byte_length',
  'retry_after_ms',
  'purged_asset_ids',
] as const;

export interface AuditEntry {
  source_id?: string | null;
  observation_id?: string | null;
  /** Kheish's fields (`reason`, `upload_token_version`, …) and anything else worth keeping. */
  detail?: Record<string, unknown>;
}

/** Appends one audit record inside the caller's transaction. Callers pass hashes, never tokens or raw keys. */
export function recordAudit(db: Db, newId: NewId, atMs: number, event: AuditEvent, entry: AuditEntry = {}): void {
  stmt(db, `INSERT INTO audit_events (audit_id, at_ms, event, source_id, observation_id, detail) VALUES (?, ?, ?, ?, ?, ?)`).run(
    newId('aud'),
    atMs,
    event,
    entry.source_id ?? null,
    entry.observation_id ?? null,
    JSON.stringify(entry.detail ?? {}),
  );
}

/** Query of `GET /v1/observation-audit`: `event` is a free string, as in Kheish (an unknown name matches nothing). */
export const auditQuerySchema = z.object({
  source_id: z.string().max(128).optional(),
  event: z.string().max(64).optional(),
  ...listParams,
});

interface AuditRow {
  audit_id: string;
  at_ms: number;
  event: string;
  source_id: string | null;
  observation_id: string | null;
  detail: string;
}

/** An audit record on the wire: Kheish's `ObservationAuditRecord`, plus `audit_id` and the remaining `detail`. */
export interface AuditRecordView {
  recorded_at_ms: number;
  event: string;
  source_id: string;
  observation_id?: string;
  audit_id: string;
  detail: Record<string, unknown>;
  [kheish: string]: unknown;
}

function toAuditView(r: AuditRow): AuditRecordView {
  const detail = JSON.parse(r.detail) as Record<string, unknown>;
  const view: AuditRecordView = { recorded_at_ms: r.at_ms, event: r.event, source_id: r.source_id ?? '', audit_id: r.audit_id, detail };
  if (r.observation_id !== null) view.observation_id = r.observation_id;
  for (const k of KHEISH_FIELDS) {
    const v = detail[k];
    if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) continue;
    view[k] = v;
    delete detail[k];
  }
  return view;
}

/** Lists audit records, newest first, as keyset pages; bad_request on a foreign cursor. */
export function listAudit(db: Db, q: { source_id?: string; event?: string }): Listing<AuditRecordView> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.source_id) where.push('source_id = ?'), args.push(q.source_id);
  if (q.event) where.push('event = ?'), args.push(q.event);
  return keysetListing<AuditRow, AuditRecordView>(db, {
    table: 'audit_events',
    key: 'audit_id',
    scope: 'audit',
    order: 'desc',
    where,
    args,
    view: toAuditView,
  });
}
