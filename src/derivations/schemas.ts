import { z } from 'zod';
import { listParams } from '../pagination.js';
import { DERIVATION_PROFILES } from '../sources/schemas.js';

export { DERIVATION_PROFILES };
export type DerivationProfile = (typeof DERIVATION_PROFILES)[number];

/**
 * The version of each profile's algorithm; part of the cache key, so bumping one makes every
 * earlier result of that profile a miss.
 */
export const PROFILE_VERSIONS: Record<DerivationProfile, number> = {
  canonical_text: 1,
  visual_preview: 1,
};

export const DERIVATION_STATUSES = ['pending', 'processing', 'completed', 'failed'] as const;
export type DerivationStatus = (typeof DERIVATION_STATUSES)[number];

/** What a derivation is computed from: an asset, an observation, or a position in a session's input journal. */
export const subjectSchema = z.discriminatedUnion('type', [
  // Any id form is accepted here: one observd never issued is unknown (404), never a 400.
  z.object({ type: z.literal('asset'), asset_id: z.string().min(1).max(256) }),
  z.object({ type: z.literal('observation'), observation_id: z.string().min(1).max(256) }),
  z.object({
    type: z.literal('session_input'),
    session_id: z.string().min(1).max(256),
    offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  }),
]);
export type Subject = z.output<typeof subjectSchema>;

/** Body of `POST /v1/derivations`. */
export const derivationRequestSchema = z.object({
  profile: z.enum(DERIVATION_PROFILES),
  subject: subjectSchema,
  /** Kheish's transcription overrides; accepted and ignored (observd's backend is configured, not per request). */
  transcription: z.unknown().optional(),
});
export type DerivationRequest = z.output<typeof derivationRequestSchema>;

const flag = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1'));

/** Query of `POST /v1/derivations`. */
export const derivationPostQuerySchema = z.object({ wait: flag, force_refresh: flag, retry_failed: flag });

export interface DerivationOptions {
  /** Wait (up to the configured timeout) for the result; default true. */
  wait?: boolean;
  /** Recompute even a completed record. */
  force_refresh?: boolean;
  /** Recompute a failed record. */
  retry_failed?: boolean;
}

/** Query of `GET /v1/derivations`. */
export const derivationListQuerySchema = z.object({
  query: z.string().max(200).optional(),
  profile: z.enum(DERIVATION_PROFILES).optional(),
  status: z.enum(DERIVATION_STATUSES).optional(),
  ...listParams,
});
export type DerivationListQuery = Pick<z.output<typeof derivationListQuerySchema>, 'query' | 'profile' | 'status'>;

/** A derivation on the wire: the reference's fields plus status, error, backend and cache status. */
export const derivationViewSchema = z.object({
  derivation_id: z.string(),
  profile: z.enum(DERIVATION_PROFILES),
  subject: subjectSchema,
  /** Kheish's fingerprint of the subject's content (SHA-256 of the bytes derived from). */
  source_fingerprint: z.string(),
  profile_version: z.number().int(),
  /** The result asset; "" while pending or when failed (Kheish's default, never null). */
  result_asset_id: z.string(),
  reused_subject_asset: z.boolean(),
  created_at_ms: z.number().int(),
  updated_at_ms: z.number().int(),
  status: z.enum(DERIVATION_STATUSES),
  error: z.string().nullable(),
  /** Kheish's DerivationBackendProvenance: who produced the result (only for external backends). */
  backend: z.object({ kind: z.string(), route_id: z.string(), provider: z.string(), model: z.string() }).nullable(),
  /**
   * Screen capture text only (else null): `full` when the frame was OCR'd whole; `reused` when it
   * looked the same as frame `observation_id` of its stream and took its text; `region` when only
   * the rectangles `regions` changed since that frame and were OCR'd and spliced into its text;
   * `coalesced` when a newer frame of its stream (`observation_id`) superseded it while OCR was
   * busy, and it shares that frame's text.
   */
  text_from: z
    .object({
      mode: z.enum(['full', 'reused', 'region', 'coalesced']),
      observation_id: z.string().nullable(),
      regions: z
        .array(z.object({ left: z.number().int(), top: z.number().int(), width: z.number().int(), height: z.number().int() }))
        .nullable(),
      /** With `region`: vertical shifts (pixels, up positive) of content that scrolled; its lines were moved, not OCR'd again. */
      scrolled: z.array(z.number().int()).optional(),
    })
    .nullable(),
  /** True when the subject's source does not allow external processing, so the backend (transcription) was never called. */
  external_processing_withheld: z.boolean(),
  /** On POST: `hit` when a settled record answered, `miss` when it is (being) computed. Null on reads. */
  cache_status: z.enum(['hit', 'miss']).nullable(),
});
export type DerivationView = z.output<typeof derivationViewSchema>;
/** The backend a derivation used, as stored. */
export interface DerivationBackend {
  kind: string;
  model: string | null;
}
