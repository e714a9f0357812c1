import { z } from 'zod';
import { sourceIdSchema, streamIdSchema } from '../ids.js';
import { listParams } from '../pagination.js';
import { SENSITIVITIES, SOURCE_KINDS } from '../sources/schemas.js';

/** Most observations one materialization may select. */
export const MAX_SELECTED = 100;

const maxObservations = z.number().int().gt(0, 'must be greater than zero').max(MAX_SELECTED).default(3);
const lookbackSeconds = z
  .number()
  .int()
  .gt(0, 'must be greater than zero')
  .max(10 * 365 * 24 * 3600)
  .nullish();

/** Which observations a materialization takes: explicit ids, or the newest of a source, a stream or a capture group. */
export const selectionSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('observation_ids'),
    observation_ids: z.array(z.string().min(1).max(128)).min(1, 'must contain at least one identifier').max(MAX_SELECTED),
  }),
  z.object({
    type: z.literal('latest_from_source'),
    source_id: sourceIdSchema,
    max_observations: maxObservations,
    lookback_seconds: lookbackSeconds,
  }),
  z
    .object({
      type: z.literal('latest_from_stream'),
      // Optional here only so a missing one gets the message below instead of a type error.
      source_id: sourceIdSchema.optional(),
      stream_id: streamIdSchema,
      max_observations: maxObservations,
      lookback_seconds: lookbackSeconds,
    })
    .superRefine((v, ctx) => {
      if (v.source_id === undefined) ctx.addIssue({ code: 'custom', path: ['source_id'], message: 'stream_id requires source_id' });
    }),
  z.object({
    type: z.literal('observation_group'),
    // The newest observations whose `metadata.capture_group_id` is exactly this string, across sources.
    capture_group_id: z
      .string()
      .max(256)
      .refine((s) => s.trim() !== '', 'capture_group_id is required'),
    max_observations: maxObservations,
    lookback_seconds: lookbackSeconds,
  }),
]);
export type Selection = z.output<typeof selectionSchema>;

/**
 * The caller's request (the reference's SubmitInputRequest): passed on unchanged after the
 * observations. Only the fields observd reads are checked; anything else is kept as sent.
 */
export const submitInputRequestSchema = z.looseObject({
  // Kheish defaults `content` to "" and its CLI writes `null` for the fields it does not set.
  content: z.string().max(1_000_000).default(''),
  input_items: z.array(z.record(z.string(), z.unknown())).max(1000).nullish(),
  generation: z.looseObject({ model: z.string().min(1).max(200).nullish() }).nullish(),
});
export type SubmitInputRequest = z.output<typeof submitInputRequestSchema>;

export const RAW_ASSET_POLICIES = ['auto', 'never', 'always'] as const;
export type RawAssetPolicy = (typeof RAW_ASSET_POLICIES)[number];

/** Body of `POST /v1/observation-materializations`. */
export const materializationRequestSchema = z.object({
  target_session_id: z.string().min(1).max(256),
  selection: selectionSchema,
  request: submitInputRequestSchema,
  include_raw_assets: z.boolean().default(true),
  raw_asset_policy: z.enum(RAW_ASSET_POLICIES).nullish(),
  fail_when_empty: z.boolean().default(true),
});
export type MaterializationRequest = z.output<typeof materializationRequestSchema>;

export const RUN_STATUSES = ['queued', 'running', 'completed', 'failed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const SUBMITTERS = ['queue', 'openai', 'http'] as const;
export type SubmitterName = (typeof SUBMITTERS)[number];

/** Token counts of a finished run. */
export const usageSchema = z
  .object({
    input_tokens: z.number().int().min(0).nullable(),
    output_tokens: z.number().int().min(0).nullable(),
    total_tokens: z.number().int().min(0).nullable(),
  })
  .strict();
export type Usage = z.output<typeof usageSchema>;

/** Body of `POST /v1/runs/{id}/complete`: the output (and optional usage), or an error. */
export const completeRunSchema = z
  .object({
    output: z.string().optional(),
    usage: usageSchema.partial().optional(),
    error: z.string().min(1).max(10_000).optional(),
  })
  .superRefine((v, ctx) => {
    if ((v.output === undefined) === (v.error === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'exactly one of output or error is required' });
    }
    if (v.error !== undefined && v.usage !== undefined)
      ctx.addIssue({ code: 'custom', path: ['usage'], message: 'usage goes with output' });
  });
export type CompleteRun = z.output<typeof completeRunSchema>;

/** Query of `GET /v1/runs`. */
export const runListQuerySchema = z.object({
  status: z.enum(RUN_STATUSES).optional(),
  target_session_id: z.string().min(1).max(256).optional(),
  /** Kheish's name for `target_session_id`. */
  session_id: z.string().min(1).max(256).optional(),
  ...listParams,
});
export interface RunFilter {
  status?: RunStatus;
  target_session_id?: string;
}

/** One raw asset handed to the agent with the input. */
export const attachmentSchema = z.object({
  observation_id: z.string(),
  asset_id: z.string(),
  media_type: z.string(),
  byte_length: z.number().int(),
  sha256: z.string(),
});
export type Attachment = z.output<typeof attachmentSchema>;

/** Where an observation's text in the composed input came from. */
export const TEXT_ORIGINS = ['uploader', 'derived', 'unavailable', 'withheld'] as const;

/** One observation as it appears in the composed input. */
export const composedObservationSchema = z.object({
  observation_id: z.string(),
  source_id: z.string(),
  stream_id: z.string().nullable(),
  seq_no: z.number().int().nullable(),
  captured_at_ms: z.number().int(),
  kind: z.enum(SOURCE_KINDS),
  media_type: z.string(),
  /** The context line, as written into `evidence_text`. */
  context: z.string(),
  canonical_text: z.string().nullable(),
  canonical_text_asset_id: z.string().nullable(),
  text_origin: z.enum(TEXT_ORIGINS),
  /** Why there is no text (text_origin `unavailable`, or `withheld`: its source does not allow external processing). */
  text_note: z.string().nullable(),
  attachment_asset_id: z.string().nullable(),
});
export type ComposedObservation = z.output<typeof composedObservationSchema>;

/** What a run hands to an agent: untrusted evidence first, then the caller's request unchanged. */
export const composedInputSchema = z.object({
  format: z.literal('observd.materialization.v1'),
  /** Marks everything after it, up to the request, as untrusted evidence. */
  header: z.string(),
  observations: z.array(composedObservationSchema),
  attachments: z.array(attachmentSchema),
  /** The header and every observation's context line and delimited text, ready to send as one text part. */
  evidence_text: z.string(),
  /** Closes the evidence (after the raw assets, when they are sent as parts of their own). */
  footer: z.string(),
  request: submitInputRequestSchema,
});
export type ComposedInput = z.output<typeof composedInputSchema>;

/** Kheish's `RunRequestSummary` of a materialization. */
export const runRequestSummarySchema = z.object({
  source_plugin: z.literal('daemon'),
  source_kind: z.literal('observation_materialization'),
  actor_id: z.string(),
});

/**
 * A run on the wire: Kheish's RunView fields (`session_id`, `agent_id`, `request`, `submitted_at_ms`
 * = when the run was recorded) plus ours. `input` is on single reads, creation and claims;
 * listings leave it out.
 */
export const runViewSchema = z.object({
  run_id: z.string(),
  session_id: z.string(),
  /** Who carries the run: `observd:<submitter>`. */
  agent_id: z.string(),
  kind: z.literal('observation_materialization'),
  status: z.enum(RUN_STATUSES),
  request: runRequestSummarySchema,
  submitter: z.enum(SUBMITTERS),
  target_session_id: z.string(),
  session_input_offset: z.number().int(),
  observation_ids: z.array(z.string()),
  asset_ids: z.array(z.string()),
  source_ids: z.array(z.string()),
  stream_ids: z.array(z.string()),
  sensitivity: z.enum(SENSITIVITIES).nullable(),
  output_delivery_allowed: z.boolean(),
  raw_asset_policy: z.enum(RAW_ASSET_POLICIES),
  /**
   * Observations whose raw media and canonical text were kept out of the run because it goes to an
   * external submitter (openai, http) and their source does not allow external processing.
   */
  external_processing_withheld: z.array(z.string()),
  input: composedInputSchema.nullable().optional(),
  output: z.string().nullable(),
  usage: usageSchema.nullable(),
  error: z.string().nullable(),
  attempts: z.number().int(),
  created_at_ms: z.number().int(),
  updated_at_ms: z.number().int(),
  started_at_ms: z.number().int().nullable(),
  /** Kheish's: when the run was submitted to the daemon (its creation). */
  submitted_at_ms: z.number().int(),
  /** When observd handed the run to its submitter (null until then). */
  handed_off_at_ms: z.number().int().nullable(),
  finished_at_ms: z.number().int().nullable(),
  /** While an agent runtime holds a claimed run: when it goes back to the queue unless completed or heartbeated. */
  lease_expires_at_ms: z.number().int().nullable(),
});
export type RunView = z.output<typeof runViewSchema>;
