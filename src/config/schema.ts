import { z } from 'zod';

const MiB = 1024 * 1024;

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
        max_raw_bytes: z.number().int().positive().default(20 * MiB),
        max_metadata_bytes: z.number().int().positive().default(16 * 1024),
        max_canonical_text_bytes: z.number().int().positive().default(1 * MiB),
        max_admin_body_bytes: z.number().int().positive().default(256 * 1024),
      })
      .strict()
      .default({} as never),
    server: z
      .object({
        headers_timeout_ms: z.number().int().positive().default(10_000),
        request_timeout_ms: z.number().int().positive().default(120_000),
        shutdown_grace_ms: z.number().int().positive().default(10_000),
      })
      .strict()
      .default({} as never),
    retention: z
      .object({
        sweep_interval_ms: z.number().int().positive().default(5_000),
        sweep_batch_size: z.number().int().positive().default(500),
        min_free_bytes: z.number().int().nonnegative().default(1024 * MiB),
      })
      .strict()
      .default({} as never),
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
