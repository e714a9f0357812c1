import OpenAI from 'openai';
import type { z } from 'zod';
import type { openAiBackendSchema } from './config/schema.js';

export type OpenAiBackend = z.output<typeof openAiBackendSchema>;
type Env = Record<string, string | undefined>;

/**
 * The OpenAI SDK client for a configured OpenAI-compatible backend (transcription, the `openai`
 * run submitter), or why there is none: its key's environment variable (named by `setting`, e.g.
 * `runs.openai.api_key_env`) is not set.
 */
export function openAiClient(backend: OpenAiBackend, setting: string, env: Env): { client: OpenAI } | { problem: string } {
  const { base_url, api_key_env, timeout_ms, max_retries } = backend;
  const apiKey = api_key_env ? env[api_key_env] : undefined;
  if (api_key_env && !apiKey) return { problem: `the environment variable ${api_key_env} named by ${setting} is not set` };
  const client = new OpenAI({
    baseURL: base_url,
    // Local servers need no key, but the SDK insists on one.
    apiKey: apiKey ?? 'no-key',
    timeout: timeout_ms,
    maxRetries: max_retries,
    // Explicitly none: OPENAI_ORG_ID / OPENAI_PROJECT_ID in the daemon's environment must not reach other backends.
    organization: null,
    project: null,
  });
  return { client };
}
