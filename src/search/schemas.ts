import { z } from 'zod';
import { sourceIdSchema, streamIdSchema } from '../ids.js';
import { msQueryParam, observationViewSchema, processingStatusFilterSchema } from '../observations/schemas.js';
import { SOURCE_KINDS } from '../sources/schemas.js';

/** Top-level metadata keys a `metadata.<key>=value` filter may name. */
export const METADATA_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;
/** Most `metadata.<key>` filters one search may have. */
export const MAX_METADATA_FILTERS = 8;

/** What to search for and where: the query, then the same filters as the observation listing plus kind and metadata. */
export const searchFilterSchema = z
  .object({
    q: z.string().trim().min(1, 'must not be empty').max(1000),
    source_id: sourceIdSchema.optional(),
    stream_id: streamIdSchema.optional(),
    kind: z.enum(SOURCE_KINDS).optional(),
    after_ms: msQueryParam.optional(),
    before_ms: msQueryParam.optional(),
    /** Any of these processing statuses (comma-separated or repeated), as on the observation listing. */
    processing_status: processingStatusFilterSchema.optional(),
    /** Equality on top-level metadata keys: `{window: "editor"}` from `metadata.window=editor`. */
    metadata: z
      .record(z.string().regex(METADATA_KEY, 'metadata keys are 1-64 characters of [A-Za-z0-9_.:-]'), z.string().max(1000))
      .refine((m) => Object.keys(m).length <= MAX_METADATA_FILTERS, `at most ${MAX_METADATA_FILTERS} metadata filters`)
      .optional(),
  })
  .refine((q) => q.stream_id === undefined || q.source_id !== undefined, { message: 'stream_id requires source_id', path: ['stream_id'] });
export type SearchFilter = z.output<typeof searchFilterSchema>;

/** One search hit: the observation, its relevance (higher is better) and a snippet with matches between « and ». */
export const searchHitSchema = z.object({
  observation: observationViewSchema,
  score: z.number(),
  snippet: z.string(),
});
export type SearchHit = z.output<typeof searchHitSchema>;

/** Who is searching: the admin token (or a loopback daemon without one) sees every source; the read-only token no sensitive one. */
export type { Reader as SearchReader } from '../access.js';
