/**
 * Decodes a JSON answer the way Kheish's serde structs would (kheish-wire.md "Reading the
 * tables"): `req` present and not null, `def` absent or of its type (null fails), `opt` absent,
 * null or of its type; enums only from their set; `Vec<T>` a JSON array; u64 a non-negative integer.
 * Returns the problems found (empty: the Kheish CLI decodes it).
 */
export type FieldType = 'str' | 'u64' | 'bool' | 'any' | { enum: readonly string[] } | { array: FieldType } | { struct: Struct };
export type Mark = 'req' | 'def' | 'opt';
export type Struct = Record<string, [Mark, FieldType]>;

export function decodeProblems(value: unknown, type: FieldType, path = '$'): string[] {
  if (type === 'any') return [];
  if (type === 'str') return typeof value === 'string' ? [] : [`${path}: expected string, got ${JSON.stringify(value)}`];
  if (type === 'u64')
    return Number.isInteger(value) && (value as number) >= 0 ? [] : [`${path}: expected u64, got ${JSON.stringify(value)}`];
  if (type === 'bool') return typeof value === 'boolean' ? [] : [`${path}: expected bool`];
  if ('enum' in type)
    return type.enum.includes(value as string) ? [] : [`${path}: ${JSON.stringify(value)} is not one of ${type.enum.join('|')}`];
  if ('array' in type) {
    if (!Array.isArray(value)) return [`${path}: expected an array`];
    return value.flatMap((v, i) => decodeProblems(v, type.array, `${path}[${i}]`));
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [`${path}: expected an object`];
  const o = value as Record<string, unknown>;
  const out: string[] = [];
  for (const [k, [mark, t]] of Object.entries(type.struct)) {
    const p = `${path}.${k}`;
    if (!(k in o)) {
      if (mark === 'req') out.push(`${p}: missing`);
      continue;
    }
    if (o[k] === null) {
      if (mark !== 'opt') out.push(`${p}: null`);
      continue;
    }
    out.push(...decodeProblems(o[k], t, p));
  }
  return out;
}

const KINDS = { enum: ['screen_snapshot', 'webcam_snapshot', 'microphone_segment'] } as const;
const OS = { enum: ['macos', 'linux', 'windows'] } as const;
const STATUS = { enum: ['active', 'revoked'] } as const;
const STATE = { enum: ['pending', 'healthy', 'missing', 'revoked'] } as const;

export const CaptureProvisionedSource: FieldType = {
  struct: {
    source_id: ['req', 'str'],
    kind: ['req', KINDS],
    lease_id: ['req', 'str'],
    expires_at_ms: ['req', 'u64'],
    upload_token: ['req', 'str'],
  },
};
export const CaptureAgentProvisionResponse: FieldType = {
  struct: {
    batch_id: ['req', 'str'],
    agents: [
      'req',
      {
        array: {
          struct: {
            machine_id: ['req', 'str'],
            os_profile: ['req', OS],
            heartbeat_interval_ms: ['req', 'u64'],
            heartbeat_grace_ms: ['req', 'u64'],
            heartbeat_deadline_ms: ['req', 'u64'],
            heartbeat_token: ['req', 'str'],
            token_expires_at_ms: ['req', 'u64'],
            config_toml: ['req', 'str'],
            sources: ['req', { array: CaptureProvisionedSource }],
          },
        },
      },
    ],
  },
};
export const CaptureSourceLeaseView: FieldType = {
  struct: {
    lease_id: ['req', 'str'],
    source_id: ['req', 'str'],
    kind: ['req', KINDS],
    upload_token_version: ['req', 'u64'],
    issued_at_ms: ['req', 'u64'],
    expires_at_ms: ['req', 'u64'],
    revoked_at_ms: ['opt', 'u64'],
    superseded_by: ['opt', 'str'],
  },
};
export const CaptureAgentView: FieldType = {
  struct: {
    machine_id: ['req', 'str'],
    batch_id: ['req', 'str'],
    provision_fingerprint_sha256: ['opt', 'str'],
    os_profile: ['req', OS],
    status: ['req', STATUS],
    source_ids: ['req', { array: 'str' }],
    leases: ['req', { array: CaptureSourceLeaseView }],
    created_at_ms: ['req', 'u64'],
    updated_at_ms: ['req', 'u64'],
    heartbeat_interval_ms: ['req', 'u64'],
    heartbeat_grace_ms: ['req', 'u64'],
    heartbeat_deadline_ms: ['req', 'u64'],
    heartbeat_token_version: ['def', 'u64'],
    heartbeat_state: ['req', STATE],
    last_heartbeat_at_ms: ['opt', 'u64'],
    last_heartbeat_agent_version: ['opt', 'str'],
    last_heartbeat_observed_source_ids: ['def', { array: 'str' }],
    last_heartbeat_unobserved_source_ids: ['def', { array: 'str' }],
    heartbeat_missing_since_ms: ['opt', 'u64'],
    token_expires_at_ms: ['opt', 'u64'],
    revoked_at_ms: ['opt', 'u64'],
    revoked_reason: ['opt', 'str'],
  },
};
export const CaptureAgentHeartbeatResponse: FieldType = {
  struct: {
    machine_id: ['req', 'str'],
    status: ['req', STATUS],
    heartbeat_state: ['req', STATE],
    last_heartbeat_at_ms: ['req', 'u64'],
    heartbeat_deadline_ms: ['req', 'u64'],
    agent_version: ['opt', 'str'],
    observed_source_ids: ['def', { array: 'str' }],
    unobserved_source_ids: ['def', { array: 'str' }],
  },
};
export const CaptureAgentAlertView: FieldType = {
  struct: {
    machine_id: ['req', 'str'],
    kind: ['req', 'str'],
    severity: ['req', 'str'],
    message: ['req', 'str'],
    detected_at_ms: ['req', 'u64'],
    heartbeat_deadline_ms: ['req', 'u64'],
  },
};
export const ProblemDetails: FieldType = {
  struct: {
    type: ['req', 'str'],
    title: ['req', 'str'],
    status: ['req', 'u64'],
    detail: ['req', 'str'],
    code: ['req', 'str'],
    domain: ['opt', 'str'],
  },
};
