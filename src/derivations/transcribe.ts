import OpenAI, { toFile } from 'openai';
import type { Config } from '../config/schema.js';
import type { DerivationBackend } from './schemas.js';

type Env = Record<string, string | undefined>;

const EXTENSIONS: Record<string, string> = {
  'audio/wav': 'wav',
  'audio/webm': 'webm',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'mp4',
  'audio/m4a': 'm4a',
  'audio/ogg': 'ogg',
};

/**
 * The configured speech-to-text backend: an OpenAI-compatible `/audio/transcriptions` API
 * (OpenAI, OpenRouter, or a local server) called through the OpenAI SDK.
 */
export class Transcriber {
  /** Part of the cache key: results of another endpoint or model are other results. */
  readonly identity: string;
  readonly backend: DerivationBackend | null;
  private client?: OpenAI;
  private problem?: string;

  constructor(
    private settings: Config['transcription'],
    env: Env = process.env,
  ) {
    const { base_url, model, api_key_env } = settings;
    this.identity = base_url && model ? `${base_url.replace(/\/+$/, '')}|${model}` : 'unconfigured';
    this.backend = model ? { kind: 'openai_compatible', model } : null;
    if (!base_url || !model) {
      const missing = [!base_url && 'transcription.base_url', !model && 'transcription.model'].filter(Boolean).join(' and ');
      this.problem = `no transcription backend is configured: set ${missing} (and transcription.api_key_env if the API needs a key) in the config`;
      return;
    }
    const apiKey = api_key_env ? env[api_key_env] : undefined;
    if (api_key_env && !apiKey) {
      this.problem = `the environment variable ${api_key_env} named by transcription.api_key_env is not set`;
      return;
    }
    // Local servers need no key, but the SDK insists on one.
    this.client = new OpenAI({
      baseURL: base_url,
      apiKey: apiKey ?? 'no-key',
      timeout: settings.timeout_ms,
      maxRetries: settings.max_retries,
      // Explicitly none: OPENAI_ORG_ID / OPENAI_PROJECT_ID in the daemon's environment must not reach other backends.
      organization: null,
      project: null,
    });
  }

  /** Why transcription cannot run, or undefined when it can. */
  get unavailableReason(): string | undefined {
    return this.problem;
  }

  /** Sends the audio to the backend and returns its text; throws with the backend's error otherwise. */
  async transcribe(audio: Buffer, mediaType: string, signal?: AbortSignal): Promise<string> {
    if (!this.client) throw new Error(this.problem);
    const file = await toFile(audio, `audio.${EXTENSIONS[mediaType] ?? 'bin'}`, { type: mediaType });
    try {
      const r = await this.client.audio.transcriptions.create({ file, model: this.settings.model! }, { signal });
      return typeof r === 'string' ? r : r.text;
    } catch (e) {
      if (e instanceof OpenAI.APIError && e.status !== undefined) throw new Error(`transcription backend answered ${e.status}: ${e.message}`);
      throw new Error(`transcription backend failed: ${(e as Error).message}`);
    }
  }
}
