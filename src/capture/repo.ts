import { timingSafeEqual } from 'node:crypto';
import { stmt, type Db } from '../db/open.js';
import { hashToken } from '../sources/tokens.js';
import type { SourceKind } from '../sources/schemas.js';
import type { AgentStatus, AgentView, AlertView, HeartbeatState, OsProfile } from './schemas.js';

/** A capture agent as stored (the heartbeat token only as its SHA-256). */
export interface AgentRow {
  machine_id: string;
  batch_id: string;
  provision_fingerprint_sha256: string | null;
  os_profile: OsProfile;
  status: AgentStatus;
  source_ids: string;
  heartbeat_token_hash: Buffer;
  heartbeat_token_version: number;
  heartbeat_interval_ms: number;
  heartbeat_grace_ms: number;
  heartbeat_deadline_ms: number;
  heartbeat_state: HeartbeatState;
  last_heartbeat_at_ms: number | null;
  last_heartbeat_agent_version: string | null;
  last_heartbeat_observed_source_ids: string;
  last_heartbeat_unobserved_source_ids: string;
  heartbeat_missing_since_ms: number | null;
  token_expires_at_ms: number | null;
  revoked_at_ms: number | null;
  revoked_reason: string | null;
  created_at_ms: number;
  updated_at_ms: number;
}

/** An upload-token lease an agent holds on one of its sources (the token only as its SHA-256). */
export interface LeaseRow {
  lease_id: string;
  machine_id: string;
  source_id: string;
  kind: SourceKind;
  token_hash: Buffer;
  upload_token_version: number;
  issued_at_ms: number;
  expires_at_ms: number;
  revoked_at_ms: number | null;
  superseded_by: string | null;
  seq: number;
}

/** Reads an agent; undefined if missing. */
export function getAgentRow(db: Db, machineId: string): AgentRow | undefined {
  return stmt(db, `SELECT * FROM capture_agents WHERE machine_id = ?`).get(machineId) as AgentRow | undefined;
}

const AGENT_COLUMNS = [
  'machine_id',
  'batch_id',
  'provision_fingerprint_sha256',
  'os_profile',
  'status',
  'source_ids',
  'heartbeat_token_hash',
  'heartbeat_token_version',
  'heartbeat_interval_ms',
  'heartbeat_grace_ms',
  'heartbeat_deadline_ms',
  'heartbeat_state',
  'last_heartbeat_at_ms',
  'last_heartbeat_agent_version',
  'last_heartbeat_observed_source_ids',
  'last_heartbeat_unobserved_source_ids',
  'heartbeat_missing_since_ms',
  'token_expires_at_ms',
  'revoked_at_ms',
  'revoked_reason',
  'created_at_ms',
  'updated_at_ms',
] as const;

/** Inserts or rewrites an agent row inside the caller's transaction. */
export function saveAgentRow(db: Db, row: AgentRow): void {
  const updates = AGENT_COLUMNS.filter((c) => c !== 'machine_id')
    .map((c) => `${c} = excluded.${c}`)
    .join(', ');
  stmt(
    db,
    `INSERT INTO capture_agents (${AGENT_COLUMNS.join(', ')}) VALUES (${AGENT_COLUMNS.map((c) => `@${c}`).join(', ')})
     ON CONFLICT(machine_id) DO UPDATE SET ${updates}`,
  ).run(row);
}

/** An agent's leases, oldest first. */
export function leasesOf(db: Db, machineId: string): LeaseRow[] {
  return stmt(db, `SELECT * FROM capture_leases WHERE machine_id = ? ORDER BY seq`).all(machineId) as LeaseRow[];
}

/** Appends a lease inside the caller's transaction. */
export function insertLease(db: Db, lease: Omit<LeaseRow, 'seq'>): void {
  stmt(
    db,
    `INSERT INTO capture_leases (lease_id, machine_id, source_id, kind, token_hash, upload_token_version, issued_at_ms, expires_at_ms, revoked_at_ms, superseded_by)
     VALUES (@lease_id, @machine_id, @source_id, @kind, @token_hash, @upload_token_version, @issued_at_ms, @expires_at_ms, @revoked_at_ms, @superseded_by)`,
  ).run(lease);
}

/** Marks a lease revoked (and by what it was superseded), keeping an earlier revocation time. */
export function revokeLease(db: Db, leaseId: string, at: number, supersededBy: string | null): void {
  stmt(
    db,
    `UPDATE capture_leases SET revoked_at_ms = COALESCE(revoked_at_ms, ?), superseded_by = COALESCE(superseded_by, ?) WHERE lease_id = ?`,
  ).run(at, supersededBy, leaseId);
}

/** The machine id of the agent owning a source (the one holding its newest lease); undefined if none does. */
export function ownerOfSource(db: Db, sourceId: string): string | undefined {
  return stmt(db, `SELECT machine_id FROM capture_leases WHERE source_id = ? ORDER BY seq DESC LIMIT 1`).pluck().get(sourceId) as
    | string
    | undefined;
}

/** Why a lease token was refused (the audit reason), or undefined when it is valid. */
export type LeaseRefusal = 'invalid_token' | 'revoked_token' | 'expired_token';

/**
 * Checks an upload token against every lease on a capture-owned source, in constant time per
 * lease (no early exit on a match). undefined when the source has no lease (it is not
 * capture-owned); otherwise the refusal, or null when a live lease of an active agent matches.
 */
export function checkLeaseToken(db: Db, sourceId: string, token: string, now: number): LeaseRefusal | null | undefined {
  const leases = stmt(
    db,
    `SELECT l.token_hash, l.expires_at_ms, l.revoked_at_ms, a.status FROM capture_leases l JOIN capture_agents a ON a.machine_id = l.machine_id
     WHERE l.source_id = ?`,
  ).all(sourceId) as Array<{ token_hash: Buffer; expires_at_ms: number; revoked_at_ms: number | null; status: AgentStatus }>;
  if (!leases.length) return undefined;
  const presented = hashToken(token);
  let match: (typeof leases)[number] | undefined;
  for (const l of leases) if (timingSafeEqual(presented, l.token_hash) && token) match = l;
  if (!match) return 'invalid_token';
  if (match.status !== 'active' || match.revoked_at_ms !== null) return 'revoked_token';
  if (now >= match.expires_at_ms) return 'expired_token';
  return null;
}

/** Converts an agent row and its leases to Kheish's CaptureAgentView. */
export function toAgentView(r: AgentRow, leases: LeaseRow[]): AgentView {
  const observed = JSON.parse(r.last_heartbeat_observed_source_ids) as string[];
  const unobserved = JSON.parse(r.last_heartbeat_unobserved_source_ids) as string[];
  const v: AgentView = {
    machine_id: r.machine_id,
    batch_id: r.batch_id,
    os_profile: r.os_profile,
    status: r.status,
    source_ids: JSON.parse(r.source_ids),
    leases: leases.map((l) => ({
      lease_id: l.lease_id,
      source_id: l.source_id,
      kind: l.kind,
      upload_token_version: l.upload_token_version,
      issued_at_ms: l.issued_at_ms,
      expires_at_ms: l.expires_at_ms,
      ...(l.revoked_at_ms !== null ? { revoked_at_ms: l.revoked_at_ms } : {}),
      ...(l.superseded_by !== null ? { superseded_by: l.superseded_by } : {}),
    })),
    created_at_ms: r.created_at_ms,
    updated_at_ms: r.updated_at_ms,
    heartbeat_interval_ms: r.heartbeat_interval_ms,
    heartbeat_grace_ms: r.heartbeat_grace_ms,
    heartbeat_deadline_ms: r.heartbeat_deadline_ms,
    heartbeat_token_version: r.heartbeat_token_version,
    heartbeat_state: r.heartbeat_state,
  };
  if (r.provision_fingerprint_sha256 !== null) v.provision_fingerprint_sha256 = r.provision_fingerprint_sha256;
  if (r.last_heartbeat_at_ms !== null) v.last_heartbeat_at_ms = r.last_heartbeat_at_ms;
  if (r.last_heartbeat_agent_version !== null) v.last_heartbeat_agent_version = r.last_heartbeat_agent_version;
  if (observed.length) v.last_heartbeat_observed_source_ids = observed;
  if (unobserved.length) v.last_heartbeat_unobserved_source_ids = unobserved;
  if (r.heartbeat_missing_since_ms !== null) v.heartbeat_missing_since_ms = r.heartbeat_missing_since_ms;
  if (r.token_expires_at_ms !== null) v.token_expires_at_ms = r.token_expires_at_ms;
  if (r.revoked_at_ms !== null) v.revoked_at_ms = r.revoked_at_ms;
  if (r.revoked_reason !== null) v.revoked_reason = r.revoked_reason;
  return v;
}

/** The missing-heartbeat alert of an agent in state `missing`. */
export function toAlertView(r: AgentRow): AlertView {
  return {
    machine_id: r.machine_id,
    kind: 'missing_heartbeat',
    severity: 'warning',
    message: `capture agent ${r.machine_id} missed heartbeat deadline ${r.heartbeat_deadline_ms}`,
    detected_at_ms: r.heartbeat_missing_since_ms ?? r.heartbeat_deadline_ms,
    heartbeat_deadline_ms: r.heartbeat_deadline_ms,
  };
}
