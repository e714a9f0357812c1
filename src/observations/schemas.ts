import { z } from 'zod';
import { sourceIdSchema, streamIdSchema, uploadIdSchema } from '../ids.js';
import { listParams } from '../pagination.js';
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

/** A URL observd may be asked to fetch (its scheme, credentials and address are checked when fetched). */
const fetchUrl = z.url({ error: 'must be an absolute URL' }).max(2048);

/**
 * `upload` of the JSON body: the seed's `{file_name, media_type, content_base64}`, `{upload_id}`
 * naming bytes already PUT to a signed upload URL, or `{url, file_name?, media_type?}` for observd
 * to fetch. One object with a refinement rather than a union, so a mistake is reported at its own
 * field path (`upload.file_name`).
 */
const jsonUploadRef = z
  .object({
    file_name: fileName.optional(),
    // Omitted (the Kheish CLI's default): inferred from the bytes, cross-checked with file_name.
    media_type: mediaType.optional(),
    content_base64: z.string().optional(),
    upload_id: uploadIdSchema.optional(),
    url: fetchUrl.optional(),
  })
  .superRefine((u, ctx) => {
    if (u.upload_id !== undefined && u.url !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'send one of content_base64, upload_id or url' });
      return;
    }
    if (u.upload_id !== undefined) {
      for (const k of ['file_name', 'media_type', 'content_base64'] as const) {
        if (u[k] != null)
          ctx.addIssue({ code: 'custom', path: [k], message: 'must be omitted with upload_id (the signed upload fixed it)' });
      }
      return;
    }
    if (u.url !== undefined) {
      if (u.content_base64 !== undefined)
        ctx.addIssue({ code: 'custom', path: ['content_base64'], message: 'must be omitted with url (observd fetches the content)' });
      return;
    }
    for (const k of ['file_name', 'content_base64'] as const) {
      if (u[k] === undefined)
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: 'Invalid input: expected string, received undefined (or send upload_id or url)',
        });
    }
  });

/** The seed's JSON upload body: media as base64 inside `upload` (or `upload.upload_id` of a signed upload). */
export const jsonUploadSchema = z.object({
  upload: jsonUploadRef,
  ...commonFields,
});
export type JsonUpload = z.output<typeof jsonUploadSchema>;

/** Most items a batch upload may carry. */
export const MAX_BATCH_ITEMS = 100;

/** The batch envelope as parsed: items are validated one at a time, so one bad item cannot sink the others. */
export const batchEnvelopeSchema = z.object({ items: z.array(z.unknown()).min(1).max(MAX_BATCH_ITEMS) });

/** The batch body as documented: up to 100 bodies of the single JSON upload. */
export const batchUploadSchema = z.object({ items: z.array(jsonUploadSchema).min(1).max(MAX_BATCH_ITEMS) });

/** `POST .../upload-urls`: what a signed upload will carry. */
export const uploadUrlRequestSchema = z.object({ media_type: mediaType, file_name: fileName });

/** The `observation` part of a multipart upload: the same fields, without the content. */
export const multipartObservationSchema = z.object({
  upload: z.object({ file_name: fileName, media_type: mediaType }).partial().optional(),
  ...commonFields,
});

/** Upload fields once the content is on disk, whatever shape they arrived in. */
export interface UploadFields {
  file_name: string;
  /** Omitted: inferred from the bytes, cross-checked with `file_name`. */
  media_type?: string;
  idempotency_key: string;
  captured_at_ms?: number | null;
  stream_id?: string | null;
  seq_no?: number | null;
  canonical_text?: string | null;
  metadata?: Record<string, unknown> | null;
  latitude?: number | null;
  longitude?: number | null;
  /** Where observd fetched the content from (`upload.url` without credentials, query or fragment). */
  origin_url?: string | null;
}

/** A time bound in a query string: plain decimal digits only (`z.coerce` would take "", "0x10", "1e3"). */
export const msQueryParam = z
  .string()
  .regex(/^-?\d{1,16}$/, 'must be an integer number of milliseconds')
  .transform(Number);

/** The processing states an auto_derive observation moves through. */
export const PROCESSING_STATUSES = ['pending', 'processing', 'completed', 'failed'] as const;
export type ProcessingStatus = (typeof PROCESSING_STATUSES)[number];

/**
 * `processing_status` as a query parameter: one status, a comma-separated list, or (given
 * `parseQuery`'s repeatable keys) several values; to the distinct statuses asked for. Shared by
 * every listing that filters on it.
 */
export const processingStatusFilterSchema = z.union([z.string(), z.array(z.string())]).transform((v, ctx) => {
  const parts = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim());
  const out = new Set<ProcessingStatus>();
  for (const p of parts) {
    if ((PROCESSING_STATUSES as readonly string[]).includes(p)) out.add(p as ProcessingStatus);
    else {
      ctx.addIssue({ code: 'custom', message: `must be ${PROCESSING_STATUSES.join(', ')} (comma-separated or repeated); got "${p}"` });
      return z.NEVER;
    }
  }
  return PROCESSING_STATUSES.filter((st) => out.has(st));
});

/** Query keys that may be repeated (`?processing_status=failed&processing_status=pending`). */
export const REPEATABLE_LIST_KEYS = ['processing_status'] as const;

export const observationListQuerySchema = z
  .object({
    processing_status: processingStatusFilterSchema.optional(),
    source_id: sourceIdSchema.optional(),
    stream_id: streamIdSchema.optional(),
    after_ms: msQueryParam.optional(),
    before_ms: msQueryParam.optional(),
    include_purged: z
      .enum(['true', 'false', '1', '0'])
      .transform((v) => v === 'true' || v === '1')
      .optional(),
    order: z.enum(['asc', 'desc']).default('asc'),
    ...listParams,
  })
  .refine((q) => q.stream_id === undefined || q.source_id !== undefined, {
    message: 'stream_id requires source_id',
    path: ['stream_id'],
  });
export type ObservationListQuery = z.output<typeof observationListQuerySchema>;

/** Which observations a listing returns (the filters of `GET /v1/observations`). */
export interface ObservationFilter {
  source_id?: string;
  stream_id?: string;
  after_ms?: number;
  before_ms?: number;
  include_purged?: boolean;
  /** Any of these statuses (none: every observation, with or without a status). */
  processing_status?: ProcessingStatus[];
  order?: 'asc' | 'desc';
}

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
  processing_status: z.enum(PROCESSING_STATUSES).nullable(),
  /** Where observd fetched the content from, for an observation created from `upload.url`. */
  origin_url: z.string().nullable(),
});
export type ObservationView = z.output<typeof observationViewSchema>;

/** The answer to a batch upload: per item, the status it alone would have had and its view or problem. */
export const batchResultSchema = z.object({
  results: z.array(
    z.object({
      index: z.number().int(),
      status: z.number().int(),
      observation: observationViewSchema.optional(),
      error: z
        .object({
          type: z.string(),
          title: z.string(),
          status: z.number().int(),
          detail: z.string(),
          code: z.string(),
          errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
        })
        .optional(),
    }),
  ),
});
