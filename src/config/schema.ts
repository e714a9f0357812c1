import { z } from 'zod';
import { EVENT_TYPES } from '../events/types.js';
import { REDACTION_TYPES } from '../privacy/types.js';
import { isAllowEntry } from '../uploads/allow-entry.js';

const MiB = 1024 * 1024;

/** One `[[webhooks]]` entry: where to POST events, the Standard Webhooks secret, which types (empty = all). */
const webhookSchema = z
  .object({
    url: z.url({ protocol: /^https?$/ }),
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be "whsec_" followed by base64')
      .refine((s) => Buffer.from(s.slice(6), 'base64').length >= 16, 'must encode at least 16 bytes'),
    event_types: z.array(z.enum(EVENT_TYPES)).default(() => []),
  })
  .strict();

/** An OpenAI-compatible API: where, which model, and the env var holding its key (never the key). */
export const openAiBackendSchema = z
  .object({
    /** Root of an OpenAI-compatible API, e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1. */
    base_url: z.url({ protocol: /^https?$/ }).optional(),
    model: z.string().min(1).max(200).optional(),
    /** Name of the environment variable holding the API key (never the key itself). */
    api_key_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    timeout_ms: z.number().int().positive().default(120_000),
    max_retries: z.number().int().min(0).max(10).default(2),
  })
  .strict()
  .prefault({});

/** The whole configuration; every default lives here and nowhere else. */
export const configSchema = z
  .object({
    bind: z.string().default('127.0.0.1:4000'),
    data_dir: z.string().default('./data'),
    admin_token: z.string().min(16).optional(),
    admin_token_file: z.string().optional(),
    readonly_token: z.string().min(16).optional(),
    readonly_token_file: z.string().optional(),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    limits: z
      .object({
        max_raw_bytes: z
          .number()
          .int()
          .positive()
          .default(20 * MiB),
        max_metadata_bytes: z
          .number()
          .int()
          .positive()
          .default(16 * 1024),
        max_canonical_text_bytes: z
          .number()
          .int()
          .positive()
          .default(1 * MiB),
        max_admin_body_bytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1024),
        /** Largest body of a batch upload (`POST .../observations/batch`). */
        max_batch_bytes: z
          .number()
          .int()
          .positive()
          .default(64 * MiB),
        json_body_memory_bytes: z
          .number()
          .int()
          .positive()
          .default(256 * MiB),
        /** A JSON upload body holding the memory budget must average at least this rate once the grace has passed (else 408). */
        json_body_min_bytes_per_s: z
          .number()
          .int()
          .positive()
          .default(64 * 1024),
        json_body_rate_grace_ms: z.number().int().positive().default(5_000),
        /** Largest original image the MCP `get_observation` tool returns inline (else the preview). */
        mcp_max_image_bytes: z
          .number()
          .int()
          .positive()
          .default(5 * MiB),
      })
      .strict()
      .prefault({}),
    server: z
      .object({
        headers_timeout_ms: z.number().int().positive().default(10_000),
        request_timeout_ms: z.number().int().positive().default(120_000),
        shutdown_grace_ms: z.number().int().positive().default(10_000),
        /** Worker threads serving observation listing pages on read-only connections (created on first use); 0: on the event loop; `auto`: one per core but one, 1 to 4. */
        read_workers: z.union([z.literal('auto'), z.number().int().min(0).max(16)]).default('auto'),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        /**
         * Host names (`name` or `name:port`) this daemon answers besides loopback names on its own
         * port, e.g. the name a reverse proxy forwards; any other `Host` gets 421.
         */
        allowed_hosts: z
          .array(z.string().regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/, 'must be a host name, optionally with :port'))
          .default(() => []),
        /** Web origins (`scheme://host[:port]`) allowed to change state and sent CORS headers; never `*`. */
        allowed_origins: z
          .array(
            z.string().regex(/^https?:\/\/(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::\d{1,5})?$/, 'must be an origin: scheme://host[:port]'),
          )
          .default(() => []),
      })
      .strict()
      .prefault({}),
    retention: z
      .object({
        sweep_interval_ms: z.number().int().positive().default(5_000),
        sweep_batch_size: z.number().int().positive().default(100),
        min_free_bytes: z
          .number()
          .int()
          .nonnegative()
          .default(1024 * MiB),
        /** Purged observation rows and audit records are forgotten this long after the fact (30 days). */
        history_ms: z
          .number()
          .int()
          .positive()
          .default(30 * 24 * 3600 * 1000),
      })
      .strict()
      .prefault({}),
    derivations: z
      .object({
        /** Derivation jobs the background queue runs at once. */
        queue_concurrency: z.number().int().min(1).max(64).default(2),
        /** Tesseract workers in the warm OCR pool (created on first use, ended on close); `auto`: one per core but one, 1 to 8. */
        ocr_workers: z.union([z.literal('auto'), z.number().int().min(1).max(16)]).default('auto'),
        /** Canonical text of screen capture streams (`screen_snapshot` sources), frame after frame. */
        screen_ocr: z
          .object({
            /** Reuse the previous text of a frame that looks the same, OCR only the rows that changed, coalesce frames that arrive faster than OCR. Off: every frame is OCR'd whole. */
            incremental: z.boolean().default(true),
            /** Recent OCR'd frames kept per stream as bases (switching back to a window finds its text). */
            history: z.number().int().min(1).max(16).default(4),
            /** A change taller than this fraction of the frame is OCR'd whole. */
            max_region_fraction: z.number().min(0).max(1).default(0.6),
          })
          .strict()
          .prefault({}),
        /** How long `POST /v1/derivations` waits for the result before answering 202 with the pending record. */
        wait_timeout_ms: z.number().int().min(0).max(600_000).default(30_000),
        /** Images with more pixels than this are not decoded: OCR and previews of them fail. */
        max_image_pixels: z.number().int().positive().default(50_000_000),
        /** Record derivation requests but run none until the daemon starts without it. */
        paused: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    /** The transcription backend: an OpenAI-compatible API; both `base_url` and `model` are needed to use it. */
    transcription: openAiBackendSchema,
    runs: z
      .object({
        /** Who carries a run: `queue` keeps it for an agent runtime (claim/complete), `openai` sends it to a chat API, `http` POSTs it to a runtime. */
        submitter: z.enum(['queue', 'openai', 'http']).default('queue'),
        /** Runs the openai and http submitters carry at once. */
        concurrency: z.number().int().min(1).max(64).default(2),
        /** A run claimed by an agent runtime goes back to the queue unless completed or heartbeated within this time. */
        claim_lease_ms: z
          .number()
          .int()
          .min(1000)
          .max(7 * 24 * 3600 * 1000)
          .default(600_000),
        /** The chat API of the `openai` submitter; the SDK's default (api.openai.com) when `base_url` is unset, `model` when the request has none. */
        openai: openAiBackendSchema,
        http: z
          .object({
            /** The agent runtime's URL; each run is POSTed there, signed like Standard Webhooks. */
            url: z.url({ protocol: /^https?$/ }).optional(),
            /** Signing secret: `whsec_` + base64. */
            secret: z
              .string()
              .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must be whsec_ followed by base64')
              .optional(),
            timeout_ms: z.number().int().positive().default(10_000),
            max_attempts: z.number().int().min(1).max(100).default(5),
            /** First retry delay; doubles per attempt. */
            backoff_ms: z.number().int().min(0).default(1_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .superRefine((r, ctx) => {
        if (r.submitter !== 'http') return;
        if (!r.http.url) ctx.addIssue({ code: 'custom', path: ['http', 'url'], message: 'required when runs.submitter is "http"' });
        if (!r.http.secret) ctx.addIssue({ code: 'custom', path: ['http', 'secret'], message: 'required when runs.submitter is "http"' });
      })
      .prefault({}),
    uploads: z
      .object({
        /** Signed upload URLs (and bytes PUT to them but not yet used) expire this long after minting. */
        url_ttl_ms: z
          .number()
          .int()
          .min(1_000)
          .max(7 * 24 * 3_600_000)
          .default(15 * 60_000),
        /** How often expired signed uploads and their bytes are removed (also done at start). */
        cleanup_interval_ms: z.number().int().positive().default(60_000),
        /** HMAC key for upload URLs; default: a random key kept in <data_dir>/upload-signing.key (mode 0600). */
        signing_key: z.string().min(32).optional(),
        /** Origin put in `upload_url` when clients reach observd through a proxy; default: the request's origin. */
        public_base_url: z.url({ protocol: /^https?$/ }).optional(),
        /** Creating an observation from a URL observd fetches itself (`upload: {url}`); off by default, as it lets clients make the daemon fetch. */
        url_fetch: z
          .object({
            enabled: z.boolean().default(false),
            /** Also fetch plain http URLs (https only otherwise). */
            allow_http: z.boolean().default(false),
            /** Host names, addresses and CIDR ranges fetched even though loopback, private, link-local or reserved. */
            allow_hosts: z
              .array(z.string().refine(isAllowEntry, 'must be a host name, an IP address or a CIDR range'))
              .max(1000)
              .default(() => []),
            max_redirects: z.number().int().min(0).max(10).default(3),
            connect_timeout_ms: z.number().int().positive().default(5_000),
            /** The whole fetch (redirects and body included). */
            total_timeout_ms: z.number().int().positive().default(60_000),
            /** The body must average at least this rate once the grace has passed (else fetch_failed). */
            min_bytes_per_s: z
              .number()
              .int()
              .positive()
              .default(16 * 1024),
            rate_grace_ms: z.number().int().positive().default(5_000),
            /** URL fetches in progress at once, daemon-wide (more wait their turn). */
            max_concurrent: z.number().int().min(1).max(256).default(8),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    events: z
      .object({
        /** SSE comment lines sent on an idle `GET /v1/events` stream, so proxies keep it open. */
        heartbeat_ms: z.number().int().min(100).default(15_000),
        /** Outbox events older than this are deleted (SSE resumption and webhooks work within it). */
        retention_ms: z
          .number()
          .int()
          .positive()
          .default(7 * 24 * 3_600_000),
        /** How often old outbox events and finished webhook deliveries are deleted. */
        prune_interval_ms: z.number().int().positive().default(60_000),
        /** One webhook delivery attempt may take this long. */
        webhook_timeout_ms: z.number().int().positive().default(10_000),
        /** Waits between webhook attempts; after the last one fails the delivery is marked failed. */
        webhook_retry_schedule_ms: z
          .array(z.number().int().positive())
          .max(50)
          .default(() => [5_000, 30_000, 120_000, 600_000, 3_600_000, 14_400_000, 28_800_000, 36_000_000]),
        /** Each wait is randomised by up to ± this fraction, so failed receivers are not hit in lockstep. */
        webhook_retry_jitter: z.number().min(0).max(1).default(0.2),
      })
      .strict()
      .prefault({}),
    search: z
      .object({
        /** The most recently indexed matches ranked by relevance (older ones follow, newest first); bounds the cost of a word found everywhere. */
        rank_window: z.number().int().min(1).max(1_000_000).default(1000),
      })
      .strict()
      .prefault({}),
    privacy: z
      .object({
        /** PII detectors applied to canonical text of sources whose own `redact` is unset (null): email, phone, card, iban, secret, ip. */
        redact: z.array(z.enum(REDACTION_TYPES)).default(() => []),
      })
      .strict()
      .prefault({}),
    /** Encryption at rest (off unless a key is given). */
    encryption: z
      .object({
        /** File holding the 32-byte master key (raw, hex or base64); the database and every blob are then encrypted. Never logged. */
        key_file: z.string().min(1).optional(),
      })
      .strict()
      .prefault({}),
    capture: z
      .object({
        /** How often the daemon looks for capture agents past their heartbeat deadline (reads also check). */
        heartbeat_check_interval_ms: z.number().int().min(10).max(3_600_000).default(1_000),
      })
      .strict()
      .prefault({}),
    webhooks: z
      .array(webhookSchema)
      .default(() => [])
      .refine((hooks) => new Set(hooks.map((h) => h.url)).size === hooks.length, 'each webhook url may appear only once'),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Parses a partial config, filling every default; throws a readable Error on a bad value. */
export function parseConfig(input: unknown): Config {
  const r = configSchema.safeParse(input);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}
