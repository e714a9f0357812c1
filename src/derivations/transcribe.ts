import OpenAI, { toFile } from 'openai';
import type { Config } from '../config/schema.js';
import { openAiClient } from '../openai-client.js';
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
    const { base_url, model } = settings;
    this.identity = base_url && model ? `${base_url.replace(/\/+$/, '')}|${model}` : 'unconfigured';
    this.backend = model ? { kind: 'openai_compatible', model } : null;
    if (!base_url || !model) {
      const missing = [!base_url && 'transcription.base_url', !model && 'transcription.model'].filter(Boolean).join(' and ');
      this.problem = `no transcription backend is configured: set ${missing} (and transcription.api_key_env if the API needs a key) in the config`;
      return;
    }
    const made = openAiClient(settings, 'transcription.api_key_env', env);
    if ('problem' in made) this.problem = made.problem;
    else this.client = made.client;
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
      if (e instanceof OpenAI.APIError && e.status !== undefined)
        throw new Error(`transcription backend answered ${e.status}: ${e.message}`);
      throw new Error(`transcription backend failed: ${(e as Error).message}`);
    }
  }
}
