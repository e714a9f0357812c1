// A leaf module (no imports): the console bundles it for its event picker.

/** Every audit event name observd records: Kheish's names, plus deletions and quota evictions of its own. */
export const AUDIT_EVENTS = [
  'source_created',
  'source_updated',
  'source_rotated',
  'source_deleted',
  'source_token_rotated',
  'source_token_revoked',
  'upload_succeeded',
  'upload_replayed',
  'upload_rejected',
  'upload_rate_limited',
  'observation_deleted',
  'retention_purged_assets',
  'quota_evicted',
  'source_batch_upserted',
  'capture_agent_provisioned',
  'capture_agent_heartbeat',
  'capture_agent_heartbeat_recovered',
  'capture_agent_heartbeat_missing',
  'capture_agent_revoked',
  'capture_agent_revoke_repaired',
] as const;
export type AuditEvent = (typeof AUDIT_EVENTS)[number];
