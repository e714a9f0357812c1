import { z } from 'zod';
import { listParams } from '../pagination.js';
import { SOURCE_KINDS } from '../sources/schemas.js';
import { identifierProblem } from './identifiers.js';

export const OS_PROFILES = ['macos', 'linux', 'windows'] as const;
export type OsProfile = (typeof OS_PROFILES)[number];
export const AGENT_STATUSES = ['active', 'revoked'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];
export const HEARTBEAT_STATES = ['pending', 'healthy', 'missing', 'revoked'] as const;
export type HeartbeatState = (typeof HEARTBEAT_STATES)[number];

/** Most agents one provisioning batch may carry (Kheish's MAX_PROVISION_AGENTS). */
export const MAX_PROVISION_AGENTS = 1000;

/** A positive millisecond or count value, bounded so sums of them stay exact in a double. */
const positive = (max = 10 * 365 * 24 * 3600 * 1000) => z.number().int().gt(0, 'must be greater than zero').max(max);

/** A Kheish identifier (batch or machine id): ASCII letters, digits, `- _ .` and spaces; normalized later. */
const identifier = z
  .string()
  .max(96)
  .superRefine((s, ctx) => {
    const p = identifierProblem(s);
    if (p) ctx.addIssue({ code: 'custom', message: p });
  });

const optionalName = z.string().max(256).nullish();

const targetSchema = z.looseObject({
  machine_id: identifier,
  os_profile: z.enum(OS_PROFILES).nullish(),
  camera_unique_id: optionalName,
  camera_name: optionalName,
  microphone_name: optionalName,
});

const sourcesSchema = z
  .looseObject({
    screen: z.boolean().default(true),
    camera: z.boolean().default(false),
    system_audio: z.boolean().default(false),
    microphone: z.boolean().default(false),
  })
  .prefault({});

/** Body of `POST /v1/capture-agent-provisions` (Kheish's CaptureAgentProvisionRequest, same defaults). */
export const provisionRequestSchema = z.looseObject({
  batch_id: identifier,
  daemon_base_url: z
    .string()
    .max(2048)
    .refine((s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    }, 'daemon_base_url must be a valid http(s) URL with a host'),
  os_profile: z.enum(OS_PROFILES).default('macos'),
  agents: z
    .array(targetSchema)
    .min(1, 'agents must not be empty')
    .max(MAX_PROVISION_AGENTS, `agents cannot contain more than ${MAX_PROVISION_AGENTS} entries`),
  sources: sourcesSchema,
  interval_ms: positive().default(5000),
  max_runs: positive(Number.MAX_SAFE_INTEGER).nullish(),
  duration_ms: positive().nullish(),
  retention_seconds: positive(10 * 365 * 24 * 3600).default(604800),
  max_active_observations: positive(100_000_000).default(256),
  max_active_bytes: positive(Number.MAX_SAFE_INTEGER).default(134217728),
  token_ttl_ms: positive().default(604800000),
  heartbeat_interval_ms: positive().default(30000),
  heartbeat_grace_ms: positive().default(120000),
});
export type ProvisionRequest = z.output<typeof provisionRequestSchema>;
export type ProvisionRequestInput = z.input<typeof provisionRequestSchema>;

/** One source an agent owns, with its upload token: only in the provisioning answer. */
export const provisionedSourceSchema = z.object({
  source_id: z.string(),
  kind: z.enum(SOURCE_KINDS),
  lease_id: z.string(),
  expires_at_ms: z.number().int(),
  upload_token: z.string(),
});

/** One provisioned agent with its credentials (shown once). */
export const provisionedAgentSchema = z.object({
  machine_id: z.string(),
  os_profile: z.enum(OS_PROFILES),
  heartbeat_interval_ms: z.number().int(),
  heartbeat_grace_ms: z.number().int(),
  heartbeat_deadline_ms: z.number().int(),
  heartbeat_token: z.string(),
  token_expires_at_ms: z.number().int(),
  config_toml: z.string(),
  sources: z.array(provisionedSourceSchema),
});

export const provisionResponseSchema = z.object({ batch_id: z.string(), agents: z.array(provisionedAgentSchema) });
export type ProvisionResponse = z.output<typeof provisionResponseSchema>;

/** A lease as views show it: never its token. */
export const leaseViewSchema = z.object({
  lease_id: z.string(),
  source_id: z.string(),
  kind: z.enum(SOURCE_KINDS),
  upload_token_version: z.number().int(),
  issued_at_ms: z.number().int(),
  expires_at_ms: z.number().int(),
  revoked_at_ms: z.number().int().optional(),
  superseded_by: z.string().optional(),
});

/** Kheish's CaptureAgentView: optional fields are omitted when unset, empty lists omitted. */
export const agentViewSchema = z.object({
  machine_id: z.string(),
  batch_id: z.string(),
  provision_fingerprint_sha256: z.string().optional(),
  os_profile: z.enum(OS_PROFILES),
  status: z.enum(AGENT_STATUSES),
  source_ids: z.array(z.string()),
  leases: z.array(leaseViewSchema),
  created_at_ms: z.number().int(),
  updated_at_ms: z.number().int(),
  heartbeat_interval_ms: z.number().int(),
  heartbeat_grace_ms: z.number().int(),
  heartbeat_deadline_ms: z.number().int(),
  heartbeat_token_version: z.number().int(),
  heartbeat_state: z.enum(HEARTBEAT_STATES),
  last_heartbeat_at_ms: z.number().int().optional(),
  last_heartbeat_agent_version: z.string().optional(),
  last_heartbeat_observed_source_ids: z.array(z.string()).optional(),
  last_heartbeat_unobserved_source_ids: z.array(z.string()).optional(),
  heartbeat_missing_since_ms: z.number().int().optional(),
  token_expires_at_ms: z.number().int().optional(),
  revoked_at_ms: z.number().int().optional(),
  revoked_reason: z.string().optional(),
});
export type AgentView = z.output<typeof agentViewSchema>;

/** Body of a heartbeat; the Kheish CLI sends `{}`. */
export const heartbeatRequestSchema = z.looseObject({
  observed_source_ids: z.array(z.string().max(256)).max(64).nullish(),
  agent_version: z.string().max(4096).nullish(),
});
export type HeartbeatRequest = z.output<typeof heartbeatRequestSchema>;

export const heartbeatResponseSchema = z.object({
  machine_id: z.string(),
  status: z.enum(AGENT_STATUSES),
  heartbeat_state: z.enum(HEARTBEAT_STATES),
  last_heartbeat_at_ms: z.number().int(),
  heartbeat_deadline_ms: z.number().int(),
  agent_version: z.string().optional(),
  observed_source_ids: z.array(z.string()).optional(),
  unobserved_source_ids: z.array(z.string()).optional(),
});
export type HeartbeatResponse = z.output<typeof heartbeatResponseSchema>;

/** Body of a revoke; the Kheish CLI sends `{}` or `{"reason": "…"}`. */
export const revokeRequestSchema = z.looseObject({ reason: z.string().max(65536).nullish() });
export type RevokeRequest = z.output<typeof revokeRequestSchema>;

export const alertViewSchema = z.object({
  machine_id: z.string(),
  kind: z.string(),
  severity: z.string(),
  message: z.string(),
  detected_at_ms: z.number().int(),
  heartbeat_deadline_ms: z.number().int(),
});
export type AlertView = z.output<typeof alertViewSchema>;

/** Query of `GET /v1/capture-agents` and `/v1/capture-alerts`: the list convention only. */
export const captureListQuerySchema = z.object({ ...listParams });
