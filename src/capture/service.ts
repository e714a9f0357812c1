import { recordAudit } from '../audit/repo.js';
import { keysetListing } from '../db/keyset.js';
import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import type { Listing } from '../pagination.js';
import { getSourceRow, saveSourceRow } from '../sources/repo.js';
import type { SourceService } from '../sources/service.js';
import { hashToken, tokenMatches } from '../sources/tokens.js';
import { checkHeartbeats } from './heartbeats.js';
import { normalizeIdentifier, sanitizeText } from './identifiers.js';
import { planProvision, provisionFingerprint, provisionProblems } from './provision.js';
import { provisionAnswer, provisionedAgentRow } from './provision-rows.js';
import { getAgentRow, insertLease, leasesOf, revokeLease, saveAgentRow, toAgentView, toAlertView, type AgentRow } from './repo.js';
import type { AgentView, AlertView, HeartbeatRequest, HeartbeatResponse, ProvisionRequest, ProvisionResponse } from './schemas.js';

/** The one answer to every failed heartbeat authentication (unknown agent included). */
const HEARTBEAT_UNAUTHORIZED = 'missing or invalid capture agent bearer token';

/**
 * Capture agents: provisioning in batches, reads (which first raise due alerts), revocation and
 * heartbeats. No HTTP here: the routes, the CLI and tests call it.
 */
export class CaptureAgentService {
  constructor(
    private deps: Deps,
    private sources: SourceService,
  ) {}

  /**
   * Provisions a batch: validation_failed on a bad request, conflict when the batch id was
   * already applied (same or different request) or a planned source id exists with another
   * kind. Each agent's credentials are in the answer and nowhere else.
   */
  provision(req: ProvisionRequest): ProvisionResponse {
    const problems = provisionProblems(req);
    if (problems.length) throw new AppError('validation_failed', problems.map((p) => p.message).join('; '), { errors: problems });
    const { db, now, newId } = this.deps;
    const fingerprint = provisionFingerprint(req);
    const batchKey = normalizeIdentifier(req.batch_id);
    return db.transaction(() => {
      const t = now();
      const applied = stmt(db, `SELECT fingerprint_sha256 FROM capture_provision_batches WHERE batch_id = ?`).pluck().get(batchKey) as
        | string
        | undefined;
      if (applied === fingerprint) {
        throw new AppError(
          'conflict',
          `capture provisioning batch_id ${batchKey} was already applied; raw upload tokens are not replayable`,
        );
      }
      if (applied !== undefined) {
        throw new AppError('conflict', `capture provisioning batch_id ${batchKey} was already applied with a different request`);
      }
      stmt(db, `INSERT INTO capture_provision_batches (batch_id, fingerprint_sha256, applied_at_ms) VALUES (?, ?, ?)`).run(
        batchKey,
        fingerprint,
        t,
      );
      const plans = planProvision(req, t);
      for (const plan of plans) {
        const existing = getAgentRow(db, plan.machine_id);
        const newLeaseBySource = new Map(plan.sources.map((s) => [s.source_id, s.lease_id]));
        // Re-provisioning rotates: every live lease is revoked, superseded by the new lease of its source.
        if (existing) {
          for (const l of leasesOf(db, plan.machine_id)) {
            if (l.revoked_at_ms === null) revokeLease(db, l.lease_id, t, newLeaseBySource.get(l.source_id) ?? null);
          }
        }
        saveAgentRow(db, provisionedAgentRow(req, plan, existing, fingerprint, t));
        for (const s of plan.sources) {
          const { source } = this.sources.upsert(
            {
              source_id: s.source_id,
              kind: s.kind,
              display_name: s.display_name,
              upload_token: s.upload_token,
              sensitivity: 'sensitive',
              retention_seconds: req.retention_seconds,
              max_active_observations: req.max_active_observations,
              max_active_bytes: req.max_active_bytes,
              ingest_rate_limit: { burst: 120, window_ms: 60000 },
              allow_materialization: true,
              allow_output_delivery: false,
              status: 'active',
            },
            { auditEvent: 'source_batch_upserted', captureProvisioning: true },
          );
          insertLease(db, {
            lease_id: s.lease_id,
            machine_id: plan.machine_id,
            source_id: s.source_id,
            kind: s.kind,
            token_hash: hashToken(s.upload_token),
            upload_token_version: source.upload_token_version,
            issued_at_ms: t,
            expires_at_ms: plan.token_expires_at_ms,
            revoked_at_ms: null,
            superseded_by: null,
          });
        }
        recordAudit(db, newId, t, 'capture_agent_provisioned', {
          source_id: plan.machine_id,
          detail: {
            batch_id: req.batch_id,
            provision_fingerprint_sha256: fingerprint,
            source_ids: plan.sources.map((s) => s.source_id),
            reprovisioned: !!existing,
          },
        });
      }
      return provisionAnswer(req, plans);
    })();
  }

  /** Every agent by machine id, as a listing (keyset pages); due alerts are raised first. */
  list(): Listing<AgentView> {
    checkHeartbeats(this.deps, this.deps.now());
    const db = this.deps.db;
    return keysetListing<AgentRow, AgentView>(db, {
      table: 'capture_agents',
      key: 'machine_id',
      scope: 'capture-agents',
      order: 'asc',
      where: [],
      args: [],
      view: (r) => toAgentView(r, leasesOf(db, r.machine_id)),
    });
  }

  /** One agent, after raising due alerts; not_found "unknown capture agent". */
  get(machineId: string): AgentView {
    checkHeartbeats(this.deps, this.deps.now());
    return this.view(this.require(machineId));
  }

  /** Agents in state `missing` by machine id, as a listing; due alerts are raised first. */
  alerts(): Listing<AlertView> {
    checkHeartbeats(this.deps, this.deps.now());
    return keysetListing<AgentRow, AlertView>(this.deps.db, {
      table: 'capture_agents',
      key: 'machine_id',
      scope: 'capture-alerts',
      order: 'asc',
      where: [`heartbeat_state = 'missing'`, `status = 'active'`],
      args: [],
      view: toAlertView,
    });
  }

  /**
   * Revokes an agent: status and state `revoked`, every lease revoked, every owned source
   * disabled (what it uploaded is kept). A repeated revoke answers the same view. not_found if unknown.
   */
  revoke(machineId: string, rawReason?: string | null): AgentView {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const a = this.require(machineId);
      const t = now();
      const reason = rawReason ? sanitizeText(rawReason, { max: 120, redacted: 'operator_reason_redacted', redactLong: true }) : undefined;
      let changed = a.status !== 'revoked' || a.heartbeat_state !== 'revoked';
      for (const l of leasesOf(db, machineId)) {
        if (l.revoked_at_ms === null) {
          revokeLease(db, l.lease_id, t, null);
          changed = true;
        }
      }
      const disabled: string[] = [];
      for (const id of JSON.parse(a.source_ids) as string[]) {
        const s = getSourceRow(db, id);
        if (!s || s.status === 'disabled') continue;
        saveSourceRow(db, { ...s, status: 'disabled', updated_at_ms: t });
        this.deps.events.append('source.updated', id, { source_id: id, change: 'updated', status: 'disabled' });
        disabled.push(id);
      }
      if (disabled.length) changed = true;
      const first = a.status !== 'revoked';
      if (changed || (reason !== undefined && reason !== a.revoked_reason)) {
        saveAgentRow(db, {
          ...a,
          status: 'revoked',
          heartbeat_state: 'revoked',
          revoked_at_ms: a.revoked_at_ms ?? t,
          revoked_reason: reason ?? a.revoked_reason,
          updated_at_ms: t,
        });
      }
      if (changed) {
        recordAudit(db, newId, t, first ? 'capture_agent_revoked' : 'capture_agent_revoke_repaired', {
          source_id: machineId,
          detail: { reason: reason ?? null, purged_asset_ids: disabled },
        });
      }
      return this.view(this.require(machineId));
    })();
  }

  /**
   * Authenticates a heartbeat bearer in constant time against the stored hash: an unknown
   * agent, no or a wrong token, a revoked agent or an expired credential are the same
   * unauthorized. Returns the agent's machine id.
   */
  authenticateHeartbeat(machineId: string, token: string | undefined): string {
    const a = getAgentRow(this.deps.db, machineId);
    const ok = tokenMatches(token ?? '', a?.heartbeat_token_hash);
    if (!a || !token || !ok || a.status !== 'active' || (a.token_expires_at_ms !== null && this.deps.now() >= a.token_expires_at_ms)) {
      throw new AppError('unauthorized', HEARTBEAT_UNAUTHORIZED);
    }
    return a.machine_id;
  }

  /**
   * Records an accepted heartbeat (after `authenticateHeartbeat`): state `healthy`, a new
   * deadline, the alert cleared (audited and sent as `capture_agent.recovered` when it was
   * missing). validation_failed when an observed source id is blank, repeated or not the agent's.
   */
  heartbeat(machineId: string, body: HeartbeatRequest): HeartbeatResponse {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const a = getAgentRow(db, machineId);
      if (a?.status !== 'active') throw new AppError('unauthorized', HEARTBEAT_UNAUTHORIZED);
      const owned = JSON.parse(a.source_ids) as string[];
      const observed = (body.observed_source_ids ?? []).map((s) => s.trim());
      const problems: Array<{ path: string; message: string }> = [];
      observed.forEach((id, i) => {
        if (!id) problems.push({ path: `observed_source_ids.${i}`, message: 'must not be blank' });
        else if (observed.indexOf(id) !== i) problems.push({ path: `observed_source_ids.${i}`, message: `duplicate source id ${id}` });
        else if (!owned.includes(id))
          problems.push({ path: `observed_source_ids.${i}`, message: `source ${id} is not owned by capture agent ${machineId}` });
      });
      if (problems.length) throw new AppError('validation_failed', problems.map((p) => p.message).join('; '), { errors: problems });
      const unobserved = observed.length ? owned.filter((id) => !observed.includes(id)) : [];
      const version = body.agent_version
        ? sanitizeText(body.agent_version, { max: 128, redacted: 'agent_version_redacted', redactLong: false })
        : undefined;
      const t = now();
      const recovered = a.heartbeat_state === 'missing';
      const deadline = t + a.heartbeat_interval_ms + a.heartbeat_grace_ms;
      saveAgentRow(db, {
        ...a,
        heartbeat_state: 'healthy',
        heartbeat_deadline_ms: deadline,
        heartbeat_missing_since_ms: null,
        last_heartbeat_at_ms: t,
        last_heartbeat_agent_version: version ?? a.last_heartbeat_agent_version,
        last_heartbeat_observed_source_ids: JSON.stringify(observed),
        last_heartbeat_unobserved_source_ids: JSON.stringify(unobserved),
        updated_at_ms: t,
      });
      recordAudit(db, newId, t, recovered ? 'capture_agent_heartbeat_recovered' : 'capture_agent_heartbeat', {
        source_id: machineId,
        detail: { heartbeat_deadline_ms: deadline, ...(recovered ? { missing_since_ms: a.heartbeat_missing_since_ms } : {}) },
      });
      if (recovered) {
        this.deps.events.append('capture_agent.recovered', null, {
          machine_id: machineId,
          missing_since_ms: a.heartbeat_missing_since_ms,
          recovered_at_ms: t,
          heartbeat_deadline_ms: deadline,
          source_ids: owned,
        });
      }
      const res: HeartbeatResponse = {
        machine_id: machineId,
        status: 'active',
        heartbeat_state: 'healthy',
        last_heartbeat_at_ms: t,
        heartbeat_deadline_ms: deadline,
      };
      if (version) res.agent_version = version;
      if (observed.length) res.observed_source_ids = observed;
      if (unobserved.length) res.unobserved_source_ids = unobserved;
      return res;
    })();
  }

  private require(machineId: string): AgentRow {
    const a = getAgentRow(this.deps.db, machineId);
    if (!a) throw new AppError('not_found', 'unknown capture agent');
    return a;
  }

  private view(a: AgentRow): AgentView {
    return toAgentView(a, leasesOf(this.deps.db, a.machine_id));
  }
}
