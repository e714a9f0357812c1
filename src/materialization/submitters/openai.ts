import OpenAI from 'openai';
import type { Deps } from '../../deps.js';
import type { Logger } from '../../logger.js';
import { openAiClient } from '../../openai-client.js';
import type { RunLifecycle, RunOutcome } from '../lifecycle.js';
import type { RunRow } from '../runs-repo.js';
import type { ComposedInput } from '../schemas.js';
import { BackgroundSubmitter } from './background.js';
import { buildChatMessages, generationParams } from './chat-messages.js';

type Env = Record<string, string | undefined>;

/**
 * Sends each run to an OpenAI-compatible chat completions API through the OpenAI SDK, in the
 * background: queued → running → completed (output text and token usage) | failed (the error).
 * The model is the request's `generation.model`, else `runs.openai.model`.
 */
export class OpenAISubmitter extends BackgroundSubmitter {
  private client?: OpenAI;
  private problem?: string;

  constructor(deps: Deps, runs: RunLifecycle, logger?: Pick<Logger, 'error' | 'info' | 'warn'>, env: Env = process.env) {
    super('openai', deps, runs, logger);
    const made = openAiClient(deps.config.runs.openai, 'runs.openai.api_key_env', env);
    if ('problem' in made) this.problem = made.problem;
    else this.client = made.client;
  }

  protected resumes(row: RunRow): boolean {
    // A call cut off by a shutdown has no answer to keep: ask again.
    if (row.status === 'running') this.runs.requeue(row.run_id);
    return true;
  }

  protected async process(runId: string): Promise<void> {
    const row = this.runs.start(runId);
    if (!row) return;
    const input = JSON.parse(row.input) as ComposedInput;
    const model = input.request.generation?.model ?? this.deps.config.runs.openai.model;
    let outcome: RunOutcome;
    try {
      if (!this.client) throw new NotConfigured(this.problem!);
      if (!model) throw new NotConfigured('no model for the run: set request.generation.model or runs.openai.model in the config');
      outcome = await this.complete(this.client, model, input);
    } catch (e) {
      // Cut off by close(): left running, asked again at the next start.
      if (this.closed) return;
      outcome = { error: describe(e) };
    }
    this.runs.finish(runId, outcome);
    if ('error' in outcome) this.logger?.info({ run_id: runId, error: outcome.error }, 'run failed');
  }

  private async complete(client: OpenAI, model: string, input: ComposedInput): Promise<RunOutcome> {
    const messages = await buildChatMessages(input, (sha) => this.deps.blobs.read(sha));
    const r = await client.chat.completions.create(
      { ...generationParams(input.request.generation ?? undefined), model, messages },
      { signal: this.abort.signal },
    );
    const choice = r.choices[0];
    if (!choice) throw new Error('the chat completions backend answered without a choice');
    const u = r.usage;
    return {
      output: choice.message.content ?? choice.message.refusal ?? '',
      usage: u ? { input_tokens: u.prompt_tokens, output_tokens: u.completion_tokens, total_tokens: u.total_tokens } : null,
    };
  }
}

/** A run that cannot be sent as configured; its message is the run's error as it stands. */
class NotConfigured extends Error {}

function describe(e: unknown): string {
  if (e instanceof NotConfigured) return e.message;
  if (e instanceof OpenAI.APIError && e.status !== undefined) return `chat completions backend answered ${e.status}: ${e.message}`;
  return `chat completions backend failed: ${e instanceof Error ? e.message : String(e)}`;
}
