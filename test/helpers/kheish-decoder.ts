import { expect } from 'vitest';

/**
 * A tiny decoder of the serde rules in shared/kheish-wire.md, written from the reference and not
 * from observd's schemas: what a Kheish client can decode, field by field.
 * - `req`: present and not null; `def`: may be absent, null is a decode error (except for `any`,
 *   a serde_json::Value, where null is a value); `opt`: absent or null both fine.
 * - `u64`/`u32`/`u16`: non-negative JSON integers; enums: snake_case strings from the set only;
 *   `vec`: a JSON array; tagged enums: `{type: "<variant>", …fields}`. Unknown keys are ignored.
 */
export type Type =
  | 'str'
  | 'u64'
  | 'u32'
  | 'u16'
  | 'bool'
  | 'any'
  | { enum: readonly string[] }
  | { vec: Type }
  | { struct: Struct }
  | { tagged: Record<string, Struct> };
export type Mark = 'req' | 'def' | 'opt';
export type Struct = Record<string, [Type, Mark]>;

function checkType(value: unknown, type: Type, path: string, errors: string[]): void {
  if (type === 'any') return;
  if (type === 'str') {
    if (typeof value !== 'string') errors.push(`${path}: expected a string, got ${JSON.stringify(value)}`);
    return;
  }
  if (type === 'bool') {
    if (typeof value !== 'boolean') errors.push(`${path}: expected a bool, got ${JSON.stringify(value)}`);
    return;
  }
  if (type === 'u64' || type === 'u32' || type === 'u16') {
    const max = type === 'u16' ? 65535 : type === 'u32' ? 2 ** 32 - 1 : Number.MAX_SAFE_INTEGER;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
      errors.push(`${path}: expected a ${type}, got ${JSON.stringify(value)}`);
    }
    return;
  }
  if ('enum' in type) {
    if (typeof value !== 'string' || !type.enum.includes(value))
      errors.push(`${path}: ${JSON.stringify(value)} is not one of ${type.enum.join('|')}`);
    return;
  }
  if ('vec' in type) {
    if (!Array.isArray(value)) {
      errors.push(`${path}: expected an array (Vec), got ${JSON.stringify(value)?.slice(0, 80)}`);
      return;
    }
    value.forEach((v, i) => checkType(v, type.vec, `${path}[${i}]`, errors));
    return;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    errors.push(`${path}: expected an object, got ${JSON.stringify(value)?.slice(0, 80)}`);
    return;
  }
  const obj = value as Record<string, unknown>;
  if ('struct' in type) {
    checkStruct(obj, type.struct, path, errors);
    return;
  }
  const variant = obj.type;
  if (typeof variant !== 'string' || !(variant in type.tagged)) {
    errors.push(`${path}.type: ${JSON.stringify(variant)} is not one of ${Object.keys(type.tagged).join('|')}`);
    return;
  }
  checkStruct(obj, type.tagged[variant], path, errors);
}

function checkStruct(obj: Record<string, unknown>, struct: Struct, path: string, errors: string[]): void {
  for (const [name, [type, mark]] of Object.entries(struct)) {
    const p = path ? `${path}.${name}` : name;
    const present = Object.hasOwn(obj, name);
    const v = obj[name];
    if (!present) {
      if (mark === 'req') errors.push(`${p}: required, absent`);
      continue;
    }
    if (v === null) {
      if (mark === 'req' || (mark === 'def' && type !== 'any')) errors.push(`${p}: null where Kheish's field is not optional`);
      continue;
    }
    checkType(v, type, p, errors);
  }
}

/** Decodes `value` as `type`; returns the decode errors (none: a Kheish client accepts it). */
export function decode(value: unknown, type: Type, path = ''): string[] {
  const errors: string[] = [];
  checkType(value, type, path || '$', errors);
  return errors;
}

/** A success the Kheish CLI decodes as `type`: any 2xx, then the body by serde's rules; fails the test otherwise. */
export function expectKheishOk<T = Record<string, unknown>>(answer: { status: number; json: unknown }, type: Type): T {
  const shown = JSON.stringify(answer.json)?.slice(0, 300);
  expect(answer.status, shown).toBeGreaterThanOrEqual(200);
  expect(answer.status, shown).toBeLessThan(300);
  expect(decode(answer.json, type)).toEqual([]);
  return answer.json as T;
}

// ---- The types of shared/kheish-wire.md ----

const u64 = 'u64' as const;
const str = 'str' as const;

export const SourceKind = { enum: ['screen_snapshot', 'webcam_snapshot', 'microphone_segment'] } as const;
export const SourceStatus = { enum: ['active', 'paused', 'disabled'] } as const;
export const Sensitivity = { enum: ['standard', 'sensitive'] } as const;
export const RetentionState = { enum: ['active', 'purged'] } as const;
export const RunKind = {
  enum: [
    'input',
    'goal_continuation',
    'scheduled_input',
    'observation_materialization',
    'scheduled_observation_materialization',
    'mailbox_delivery',
    'channel_delivery',
    'parent_clarification',
    'approval_resume',
    'user_question_resume',
  ],
} as const;
export const RunStatus = {
  enum: ['queued', 'running', 'waiting_for_approval', 'waiting_for_user_question', 'completed', 'failed', 'interrupted', 'cancelled'],
} as const;
export const TERMINAL_RUN_STATUSES = ['completed', 'failed', 'interrupted', 'cancelled'];

export const ObservationSourceView: Type = {
  struct: {
    source_id: [str, 'req'],
    display_name: [str, 'req'],
    kind: [SourceKind, 'req'],
    status: [SourceStatus, 'req'],
    sensitivity: [Sensitivity, 'req'],
    retention_seconds: [u64, 'req'],
    max_active_observations: [u64, 'req'],
    max_active_bytes: [u64, 'req'],
    allow_materialization: ['bool', 'req'],
    allow_output_delivery: ['bool', 'req'],
    created_at_ms: [u64, 'req'],
    updated_at_ms: [u64, 'req'],
    ingest_rate_limit_window_ms: [u64, 'def'],
    ingest_rate_limit_burst: [u64, 'def'],
    purge_raw_on_retention: ['bool', 'def'],
    upload_token_version: [u64, 'def'],
    active_observation_count: [u64, 'def'],
    active_byte_length: [u64, 'def'],
    last_authenticated_at_ms: [u64, 'opt'],
    last_token_rotated_at_ms: [u64, 'opt'],
    upload_token_revoked_at_ms: [u64, 'opt'],
    last_observed_at_ms: [u64, 'opt'],
  },
};

export const ObservationView: Type = {
  struct: {
    observation_id: [str, 'req'],
    source_id: [str, 'req'],
    asset_id: [str, 'req'],
    media_type: [str, 'req'],
    sha256: [str, 'req'],
    idempotency_key: [str, 'req'],
    request_fingerprint: [str, 'req'],
    kind: [SourceKind, 'req'],
    sensitivity: [Sensitivity, 'req'],
    retention_state: [RetentionState, 'req'],
    byte_length: [u64, 'req'],
    captured_at_ms: [u64, 'req'],
    received_at_ms: [u64, 'req'],
    canonical_text_asset_id: [str, 'opt'],
    stream_id: [str, 'opt'],
    seq_no: [u64, 'opt'],
    metadata: ['any', 'def'],
  },
};

export const ObservationAuditRecord: Type = {
  struct: {
    recorded_at_ms: [u64, 'req'],
    event: [str, 'req'],
    source_id: [str, 'req'],
    observation_id: [str, 'opt'],
    reason: [str, 'opt'],
    upload_token_version: [u64, 'opt'],
    idempotency_key_sha256: [str, 'opt'],
    request_fingerprint: [str, 'opt'],
    media_type: [str, 'opt'],
    byte_length: [u64, 'opt'],
    retry_after_ms: [u64, 'opt'],
    purged_asset_ids: [{ vec: str }, 'def'],
  },
};

export const DerivationSubject: Type = {
  tagged: {
    asset: { asset_id: [str, 'req'] },
    observation: { observation_id: [str, 'req'] },
    session_input: { session_id: [str, 'req'], offset: [u64, 'req'] },
  },
};

export const DerivationView: Type = {
  struct: {
    derivation_id: [str, 'req'],
    profile: [{ enum: ['canonical_text', 'visual_preview'] }, 'req'],
    subject: [DerivationSubject, 'req'],
    source_fingerprint: [str, 'req'],
    created_at_ms: [u64, 'req'],
    profile_version: ['u32', 'def'],
    status: [{ enum: ['completed', 'failed'] }, 'def'],
    result_asset_id: [str, 'def'],
    reused_subject_asset: ['bool', 'def'],
    error: [str, 'opt'],
    backend: [
      {
        struct: {
          kind: [str, 'req'],
          route_id: [str, 'req'],
          provider: [str, 'req'],
          model: [str, 'req'],
          timestamp_asset_id: [str, 'opt'],
        },
      },
      'opt',
    ],
    cache_status: [{ enum: ['hit', 'miss'] }, 'opt'],
  },
};

export const RunView: Type = {
  struct: {
    run_id: [str, 'req'],
    session_id: [str, 'req'],
    agent_id: [str, 'req'],
    kind: [RunKind, 'req'],
    status: [RunStatus, 'req'],
    submitted_at_ms: [u64, 'req'],
    updated_at_ms: [u64, 'req'],
    request: [
      {
        struct: {
          source_plugin: [str, 'req'],
          source_kind: [str, 'req'],
          actor_id: [str, 'req'],
          text_preview: [str, 'opt'],
          provider: [str, 'opt'],
          model: [str, 'opt'],
          approval_count: [u64, 'opt'],
          question_count: [u64, 'opt'],
        },
      },
      'req',
    ],
    started_at_ms: [u64, 'opt'],
    finished_at_ms: [u64, 'opt'],
    queued_position: [u64, 'opt'],
    input_metadata: ['any', 'opt'],
    error: [str, 'opt'],
    input_attachments: [{ vec: 'any' }, 'def'],
    pending_approval_ids: [{ vec: 'any' }, 'def'],
    pending_approvals: [{ vec: 'any' }, 'def'],
    pending_question_ids: [{ vec: 'any' }, 'def'],
    pending_questions: [{ vec: 'any' }, 'def'],
    outputs: [{ vec: 'any' }, 'def'],
    deliveries: [{ vec: 'any' }, 'def'],
  },
};

/** kheish_runtime's PermissionMode (serde renames), SystemPromptSettings and DebugCaptureLevel. */
export const RuntimeSettingsView: Type = {
  struct: {
    provider: [str, 'opt'],
    model: [str, 'opt'],
    route_id: [str, 'opt'],
    workspace_root: [str, 'opt'],
    state_root: [str, 'opt'],
    routes: [{ vec: 'any' }, 'def'],
    route_diagnostics: [{ vec: 'any' }, 'def'],
    permission_mode: [{ enum: ['default', 'acceptEdits', 'bypassPermissions', 'plan', 'dontAsk'] }, 'req'],
    system_prompt: [
      {
        struct: {
          override_prompt: [str, 'opt'],
          custom_prompt: [str, 'opt'],
          append_prompt: [str, 'opt'],
          language: [str, 'opt'],
          output_style: [str, 'opt'],
        },
      },
      'req',
    ],
    debug_level: [{ enum: ['off', 'on', 'redacted', 'full'] }, 'req'],
  },
};

export const ProblemDetails: Type = {
  struct: {
    type: [str, 'req'],
    title: [str, 'req'],
    status: ['u16', 'req'],
    detail: [str, 'req'],
    code: [str, 'req'],
    domain: [str, 'opt'],
  },
};

/** Kheish's `ListPage<T>` (opt-in paging envelope). */
export const ListPage = (item: Type): Type => ({
  struct: {
    items: [{ vec: item }, 'req'],
    pagination: [
      {
        struct: {
          limit: [u64, 'req'],
          total_count: [u64, 'def'],
          has_more: ['bool', 'req'],
          next_cursor: [str, 'opt'],
          order: [str, 'req'],
        },
      },
      'req',
    ],
  },
});

export const Vec = (item: Type): Type => ({ vec: item });

// ---- Capture agents (kheish-wire.md, capture provisioning and heartbeats) ----

const OsProfile = { enum: ['macos', 'linux', 'windows'] } as const;
const CaptureAgentStatus = { enum: ['active', 'revoked'] } as const;
const HeartbeatState = { enum: ['pending', 'healthy', 'missing', 'revoked'] } as const;

export const CaptureProvisionedSource: Type = {
  struct: {
    source_id: [str, 'req'],
    kind: [SourceKind, 'req'],
    lease_id: [str, 'req'],
    expires_at_ms: [u64, 'req'],
    upload_token: [str, 'req'],
  },
};

export const CaptureAgentProvisionResponse: Type = {
  struct: {
    batch_id: [str, 'req'],
    agents: [
      {
        vec: {
          struct: {
            machine_id: [str, 'req'],
            os_profile: [OsProfile, 'req'],
            heartbeat_interval_ms: [u64, 'req'],
            heartbeat_grace_ms: [u64, 'req'],
            heartbeat_deadline_ms: [u64, 'req'],
            heartbeat_token: [str, 'req'],
            token_expires_at_ms: [u64, 'req'],
            config_toml: [str, 'req'],
            sources: [{ vec: CaptureProvisionedSource }, 'req'],
          },
        },
      },
      'req',
    ],
  },
};

export const CaptureSourceLeaseView: Type = {
  struct: {
    lease_id: [str, 'req'],
    source_id: [str, 'req'],
    kind: [SourceKind, 'req'],
    upload_token_version: [u64, 'req'],
    issued_at_ms: [u64, 'req'],
    expires_at_ms: [u64, 'req'],
    revoked_at_ms: [u64, 'opt'],
    superseded_by: [str, 'opt'],
  },
};

export const CaptureAgentView: Type = {
  struct: {
    machine_id: [str, 'req'],
    batch_id: [str, 'req'],
    provision_fingerprint_sha256: [str, 'opt'],
    os_profile: [OsProfile, 'req'],
    status: [CaptureAgentStatus, 'req'],
    source_ids: [{ vec: str }, 'req'],
    leases: [{ vec: CaptureSourceLeaseView }, 'req'],
    created_at_ms: [u64, 'req'],
    updated_at_ms: [u64, 'req'],
    heartbeat_interval_ms: [u64, 'req'],
    heartbeat_grace_ms: [u64, 'req'],
    heartbeat_deadline_ms: [u64, 'req'],
    heartbeat_token_version: [u64, 'def'],
    heartbeat_state: [HeartbeatState, 'req'],
    last_heartbeat_at_ms: [u64, 'opt'],
    last_heartbeat_agent_version: [str, 'opt'],
    last_heartbeat_observed_source_ids: [{ vec: str }, 'def'],
    last_heartbeat_unobserved_source_ids: [{ vec: str }, 'def'],
    heartbeat_missing_since_ms: [u64, 'opt'],
    token_expires_at_ms: [u64, 'opt'],
    revoked_at_ms: [u64, 'opt'],
    revoked_reason: [str, 'opt'],
  },
};

export const CaptureAgentHeartbeatResponse: Type = {
  struct: {
    machine_id: [str, 'req'],
    status: [CaptureAgentStatus, 'req'],
    heartbeat_state: [HeartbeatState, 'req'],
    last_heartbeat_at_ms: [u64, 'req'],
    heartbeat_deadline_ms: [u64, 'req'],
    agent_version: [str, 'opt'],
    observed_source_ids: [{ vec: str }, 'def'],
    unobserved_source_ids: [{ vec: str }, 'def'],
  },
};

export const CaptureAgentAlertView: Type = {
  struct: {
    machine_id: [str, 'req'],
    kind: [str, 'req'],
    severity: [str, 'req'],
    message: [str, 'req'],
    detected_at_ms: [u64, 'req'],
    heartbeat_deadline_ms: [u64, 'req'],
  },
};
