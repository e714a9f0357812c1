import { z } from 'zod';
import { sourceIdSchema } from '../ids.js';
import { listParams } from '../pagination.js';
import { REDACTION_TYPES } from '../privacy/types.js';

import { SOURCE_KINDS, type SourceKind } from './kinds.js';

export { SOURCE_KINDS, type SourceKind };

/** Media types each source kind may upload. */
export const MEDIA_BY_KIND: Record<SourceKind, readonly string[]> = {
  screen_snapshot: ['image/png', 'image/jpeg'],
  webcam_snapshot: ['image/png', 'image/jpeg'],
  microphone_segment: ['audio/wav', 'audio/webm'],
};

/** Kheish's sensitivities, from least to most restrictive: no other value ever appears in a view. */
export const SENSITIVITIES = ['standard', 'sensitive'] as const;
export type Sensitivity = (typeof SENSITIVITIES)[number];

/** observd's former four levels, still accepted on input and mapped onto Kheish's two. */
const SENSITIVITY_ALIASES: Record<string, Sensitivity> = { public: 'standard', internal: 'standard', restricted: 'sensitive' };
const sensitivityInput = z.preprocess(
  (v) => (typeof v === 'string' && v in SENSITIVITY_ALIASES ? SENSITIVITY_ALIASES[v] : v),
  z.enum(SENSITIVITIES),
);

export const DERIVATION_PROFILES = ['canonical_text', 'visual_preview'] as const;

const MAX_RETENTION_SECONDS = 10 * 365 * 24 * 3600;

/** Fields an admin may set on a source after creation (PATCH and upsert). */
const mutableFields = {
  display_name: z.string().trim().min(1).max(200),
  sensitivity: sensitivityInput,
  retention_seconds: z.number().int().min(1).max(MAX_RETENTION_SECONDS),
  max_active_observations: z.number().int().min(1).max(100_000_000),
  max_active_bytes: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  allow_materialization: z.boolean(),
  allow_output_delivery: z.boolean(),
  status: z.enum(['active', 'paused', 'disabled']),
  quota_policy: z.enum(['evict_oldest', 'reject']),
  purge_raw_on_retention: z.boolean(),
  auto_derive: z.array(z.enum(DERIVATION_PROFILES)).max(DERIVATION_PROFILES.length),
  ingest_rate_limit: z
    .object({ burst: z.number().int().min(1).max(1_000_000), window_ms: z.number().int().min(1).max(86_400_000) })
    .nullable(),
  /** Kheish's flat form of `ingest_rate_limit` (the object wins when both are sent). */
  ingest_rate_limit_window_ms: z.number().int().min(1).max(86_400_000),
  ingest_rate_limit_burst: z.number().int().min(1).max(1_000_000),
  /** PII detectors applied to this source's canonical text; null: the config's `privacy.redact`. */
  redact: z
    .array(z.enum(REDACTION_TYPES))
    .max(REDACTION_TYPES.length)
    .transform((a) => [...new Set(a)])
    .nullable(),
  /**
   * May raw media and canonical text leave the machine (openai/http run submitters, the
   * transcription backend)? null (the default) follows the sensitivity: yes for standard
   * sources, no for sensitive ones.
   */
  allow_external_processing: z.boolean().nullable(),
};

/** Kheish's defaults for a flat rate-limit field sent alone. */
export const KHEISH_RATE_LIMIT = { window_ms: 60_000, burst: 120 };

/** An upload token chosen by a client. */
export const uploadTokenSchema = z.string().min(16, 'must be at least 16 characters').max(512);

/** Body of `POST /v1/observation-sources` (create, or update when `source_id` exists). */
export const sourceUpsertSchema = z
  .object({
    source_id: sourceIdSchema.optional(),
    kind: z.enum(SOURCE_KINDS),
    upload_token: uploadTokenSchema.optional(),
    ...mutableFields,
  })
  .partial({
    sensitivity: true,
    retention_seconds: true,
    max_active_observations: true,
    max_active_bytes: true,
    allow_materialization: true,
    allow_output_delivery: true,
    status: true,
    quota_policy: true,
    purge_raw_on_retention: true,
    auto_derive: true,
    ingest_rate_limit: true,
    ingest_rate_limit_window_ms: true,
    ingest_rate_limit_burst: true,
    redact: true,
    allow_external_processing: true,
  });
export type SourceUpsert = z.output<typeof sourceUpsertSchema>;

/** Body of `PATCH /v1/observation-sources/{id}`; `kind` is accepted only to refuse a change of it. */
export const sourcePatchSchema = z
  .object({
    kind: z.enum(SOURCE_KINDS),
    ...mutableFields,
    // Refused rather than ignored: a caller sending it means to change the token.
    upload_token: z.undefined({ error: 'tokens are changed with rotate-token, not PATCH' }),
  })
  .partial();
export type SourcePatch = z.output<typeof sourcePatchSchema>;

/** Defaults of a new source, as the reference API documents them plus the extensions. */
export const SOURCE_DEFAULTS: Omit<SourceSettings, 'display_name'> = {
  sensitivity: 'sensitive',
  retention_seconds: 604800,
  max_active_observations: 512,
  max_active_bytes: 536870912,
  allow_materialization: true,
  allow_output_delivery: false,
  status: 'active',
  quota_policy: 'evict_oldest',
  purge_raw_on_retention: true,
  auto_derive: [],
  ingest_rate_limit: null,
  redact: null,
  allow_external_processing: null,
};

export const rotateTokenSchema = z.object({
  upload_token: uploadTokenSchema.optional(),
  grace_period_ms: z
    .number()
    .int()
    .min(0)
    .max(30 * 24 * 3600 * 1000)
    .default(0),
});

/** Body of `POST …/revoke-token`: `{}` or `{reason}` (as the Kheish CLI sends it); the reason goes to the audit trail. */
export const revokeTokenSchema = z.object({ reason: z.string().max(512).nullish() });

export const sourceListQuerySchema = z.object({
  query: z.string().max(200).optional(),
  ...listParams,
});

/** What a source looks like on the wire: never a token, only its version. */
export const sourceViewSchema = z.object({
  source_id: z.string(),
  display_name: z.string(),
  kind: z.enum(SOURCE_KINDS),
  sensitivity: z.enum(SENSITIVITIES),
  retention_seconds: z.number().int(),
  max_active_observations: z.number().int(),
  max_active_bytes: z.number().int(),
  allow_materialization: z.boolean(),
  allow_output_delivery: z.boolean(),
  status: z.enum(['active', 'paused', 'disabled']),
  quota_policy: z.enum(['evict_oldest', 'reject']),
  purge_raw_on_retention: z.boolean(),
  auto_derive: z.array(z.enum(DERIVATION_PROFILES)),
  ingest_rate_limit: z.object({ burst: z.number().int(), window_ms: z.number().int() }).nullable(),
  /** Kheish's flat rate-limit fields; without a limit the burst is 2^53-1 (never reached). */
  ingest_rate_limit_window_ms: z.number().int(),
  ingest_rate_limit_burst: z.number().int(),
  redact: z.array(z.enum(REDACTION_TYPES)).nullable(),
  /** Whether raw media and canonical text may go to external processors, as in force (the default resolved). */
  allow_external_processing: z.boolean(),
  upload_token_version: z.number().int(),
  upload_token_active: z.boolean(),
  active_observation_count: z.number().int(),
  active_byte_length: z.number().int(),
  created_at_ms: z.number().int(),
  updated_at_ms: z.number().int(),
  last_authenticated_at_ms: z.number().int().optional(),
  last_token_rotated_at_ms: z.number().int().optional(),
  upload_token_revoked_at_ms: z.number().int().optional(),
  last_observed_at_ms: z.number().int().optional(),
});
export type SourceView = z.output<typeof sourceViewSchema>;

/**
 * True for the sensitivity whose data stays on the machine unless the source allows otherwise.
 * ('restricted' is only an input alias: migration 008 rewrote every stored one to 'sensitive'.)
 */
export function isSensitive(s: string): boolean {
  return s === 'sensitive';
}

/** The admin-settable part of a source (`allow_external_processing` as set: null follows the sensitivity). */
export type SourceSettings = Pick<
  SourceView,
  | 'display_name'
  | 'sensitivity'
  | 'retention_seconds'
  | 'max_active_observations'
  | 'max_active_bytes'
  | 'allow_materialization'
  | 'allow_output_delivery'
  | 'status'
  | 'quota_policy'
  | 'purge_raw_on_retention'
  | 'auto_derive'
  | 'ingest_rate_limit'
  | 'redact'
> & { allow_external_processing: boolean | null };
