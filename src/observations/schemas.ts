import { z } from 'zod';
import { sourceIdSchema, streamIdSchema } from '../ids.js';
import { limitSchema } from '../pagination.js';
import { SENSITIVITIES, SOURCE_KINDS } from '../sources/schemas.js';

const fileName = z
  .string()
  .min(1)
  .max(255)
  .refine((s) => !/[\u0000-\u001f]/.test(s), 'must not contain control characters');
const mediaType = z.string().min(3).max(127);

const metadataSchema = z
  .record(z.string(), z.unknown())
  .refine((v) => v !== null && typeof v === 'object' && !Array.isArray(v), 'must be a JSON object');

/** The upload fields shared by the JSON, multipart, batch and signed-upload shapes. */
const commonFields = {
  idempotency_key: z.string().min(1).max(256),
  captured_at_ms: z.number().int().min(0).max(8_640_000_000_000_000).nullish(),
  stream_id: streamIdSchema.nullish(),
  seq_no: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  canonical_text: z.string().nullish(),
  metadata: metadataSchema.nullish(),
  latitude: z.number().min(-90).max(90).nullish(),
  longitude: z.number().min(-180).max(180).nullish(),
};

/** The seed's JSON upload body: media as base64 inside `upload`. */
export const jsonUploadSchema = z
  .object({
    upload: z.object({ file_name: fileName, media_type: mediaType, content_base64: z.string() }).strict(),
    ...commonFields,
  })
  .strict();

/** The `observation` part of a multipart upload: the same fields, without the content. */
export const multipartObservationSchema = z
  .object({
    upload: z.object({ file_name: fileName, media_type: mediaType }).partial().strict().optional(),
    ...commonFields,
  })
  .strict();

/** Upload fields once the content is on disk, whatever shape they arrived in. */
export interface UploadFields {
  file_name: string;
  media_type: string;
  idempotency_key: string;
  captured_at_ms?: number | null;
  stream_id?: string | null;
  seq_no?: number | null;
  canonical_text?: string | null;
  metadata?: Record<string, unknown> | null;
  latitude?: number | null;
  longitude?: number | null;
}

export const observationListQuerySchema = z
  .object({
    source_id: sourceIdSchema.optional(),
    stream_id: streamIdSchema.optional(),
    after_ms: z.coerce.number().int().optional(),
    before_ms: z.coerce.number().int().optional(),
    include_purged: z.enum(['true', 'false', '1', '0']).optional(),
    limit: limitSchema,
    cursor: z.string().max(1024).optional(),
    order: z.enum(['asc', 'desc']).default('asc'),
  })
  .strict()
  .refine((q) => q.stream_id === undefined || q.source_id !== undefined, {
    message: 'stream_id requires source_id',
    path: ['stream_id'],
  });
export type ObservationListQuery = z.output<typeof observationListQuerySchema>;

/** An observation on the wire: every field of the reference plus coordinates and processing status. */
export const observationViewSchema = z.object({
  observation_id: z.string(),
  source_id: z.string(),
  kind: z.enum(SOURCE_KINDS),
  sensitivity: z.enum(SENSITIVITIES),
  retention_state: z.enum(['active', 'purged']),
  asset_id: z.string(),
  canonical_text_asset_id: z.string().nullable(),
  file_name: z.string(),
  media_type: z.string(),
  sha256: z.string(),
  byte_length: z.number().int(),
  captured_at_ms: z.number().int(),
  received_at_ms: z.number().int(),
  expires_at_ms: z.number().int(),
  purged_at_ms: z.number().int().nullable(),
  stream_id: z.string().nullable(),
  seq_no: z.number().int().nullable(),
  idempotency_key: z.string(),
  request_fingerprint: z.string(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  latitude: z.number().nullable(),
  longitude: z.number().nullable(),
  processing_status: z.enum(['pending', 'processing', 'completed', 'failed']).nullable(),
});
export type ObservationView = z.output<typeof observationViewSchema>;
