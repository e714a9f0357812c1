import { hashToken } from '../sources/tokens.js';
import type { PlannedAgent } from './provision.js';
import type { AgentRow } from './repo.js';
import type { ProvisionRequest, ProvisionResponse } from './schemas.js';

/** The agent row a provisioning plan writes: a re-provisioned agent that was heard from keeps its heartbeat state. */
export function provisionedAgentRow(
  req: ProvisionRequest,
  plan: PlannedAgent,
  existing: AgentRow | undefined,
  fingerprint: string,
  t: number,
): AgentRow {
  const keep = existing?.status === 'active' && (existing.heartbeat_state === 'healthy' || existing.heartbeat_state === 'missing');
  return {
    machine_id: plan.machine_id,
    batch_id: req.batch_id,
    provision_fingerprint_sha256: fingerprint,
    os_profile: plan.os_profile,
    status: 'active',
    source_ids: JSON.stringify(plan.sources.map((s) => s.source_id)),
    heartbeat_token_hash: hashToken(plan.heartbeat_token),
    heartbeat_token_version: (existing?.heartbeat_token_version ?? 0) + 1,
    heartbeat_interval_ms: req.heartbeat_interval_ms,
    heartbeat_grace_ms: req.heartbeat_grace_ms,
    heartbeat_deadline_ms: plan.heartbeat_deadline_ms,
    heartbeat_state: keep ? existing.heartbeat_state : 'pending',
    last_heartbeat_at_ms: keep ? existing.last_heartbeat_at_ms : null,
    last_heartbeat_agent_version: keep ? existing.last_heartbeat_agent_version : null,
    last_heartbeat_observed_source_ids: keep ? existing.last_heartbeat_observed_source_ids : '[]',
    last_heartbeat_unobserved_source_ids: keep ? existing.last_heartbeat_unobserved_source_ids : '[]',
    heartbeat_missing_since_ms: keep ? existing.heartbeat_missing_since_ms : null,
    token_expires_at_ms: plan.token_expires_at_ms,
    revoked_at_ms: null,
    revoked_reason: null,
    created_at_ms: existing?.created_at_ms ?? t,
    updated_at_ms: t,
  };
}

/** The answer to a provisioning batch: each agent's credentials, here and nowhere else. */
export function provisionAnswer(req: ProvisionRequest, plans: PlannedAgent[]): ProvisionResponse {
  return {
    batch_id: req.batch_id,
    agents: plans.map((p) => ({
      machine_id: p.machine_id,
      os_profile: p.os_profile,
      heartbeat_interval_ms: req.heartbeat_interval_ms,
      heartbeat_grace_ms: req.heartbeat_grace_ms,
      heartbeat_deadline_ms: p.heartbeat_deadline_ms,
      heartbeat_token: p.heartbeat_token,
      token_expires_at_ms: p.token_expires_at_ms,
      config_toml: p.config_toml,
      sources: p.sources.map((s) => ({
        source_id: s.source_id,
        kind: s.kind,
        lease_id: s.lease_id,
        expires_at_ms: p.token_expires_at_ms,
        upload_token: s.upload_token,
      })),
    })),
  };
}
