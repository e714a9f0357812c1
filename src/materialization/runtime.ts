import { z } from 'zod';
import type { Config } from '../config/schema.js';

/**
 * Kheish's `RuntimeSettingsView` (kheish-daemon api/types.rs), as far as a client requires it:
 * `permission_mode` (kheish_runtime PermissionMode: default | acceptEdits | bypassPermissions |
 * plan | dontAsk), `system_prompt` (SystemPromptSettings, every field optional) and `debug_level`
 * (DebugCaptureLevel: off | on | redacted | full); `provider`, `model`, `route_id` optional;
 * `route_diagnostics` a list. Plus observd's own `submitter`, which says what really carries runs.
 */
export const runtimeSettingsViewSchema = z.object({
  provider: z.string().nullable(),
  model: z.string().nullable(),
  route_id: z.string().optional(),
  routes: z.array(z.unknown()),
  route_diagnostics: z.array(z.unknown()),
  permission_mode: z.enum(['default', 'acceptEdits', 'bypassPermissions', 'plan', 'dontAsk']),
  system_prompt: z.object({}),
  debug_level: z.enum(['off', 'on', 'redacted', 'full']),
  submitter: z.object({
    name: z.enum(['queue', 'openai', 'http']),
    description: z.string(),
    url: z.string().nullable(),
  }),
});
export type RuntimeSettingsView = z.output<typeof runtimeSettingsViewSchema>;

/**
 * What carries observd's runs, told truthfully in Kheish's shape: observd itself runs no tools
 * and keeps no system prompt or debug capture. With `openai` a chat completion is made without
 * tools (`plan`: nothing executes); with `queue` or `http` the runtime that takes the run applies
 * its own rules (`default`).
 */
export function runtimeSettings(config: Config): RuntimeSettingsView {
  const { submitter, openai, http } = config.runs;
  const base = { routes: [], route_diagnostics: [], system_prompt: {}, debug_level: 'off' as const };
  // Runs handed to an agent runtime: its provider, model and rules are its own.
  const handedOn = { ...base, provider: null, model: null, permission_mode: 'default' as const };
  switch (submitter) {
    case 'openai':
      return {
        ...base,
        provider: 'openai',
        model: openai.model ?? null,
        route_id: 'openai',
        permission_mode: 'plan',
        submitter: {
          name: 'openai',
          description: 'runs are sent as chat completions (no tools) to an OpenAI-compatible API; output and usage are stored on the run',
          url: openai.base_url ?? null,
        },
      };
    case 'http':
      return {
        ...handedOn,
        submitter: {
          name: 'http',
          description: 'runs are POSTed, signed like Standard Webhooks, to a configured agent runtime, which completes them',
          url: http.url ?? null,
        },
      };
    default:
      return {
        ...handedOn,
        submitter: {
          name: 'queue',
          description:
            'runs are queued for an agent runtime to claim (POST /v1/runs/{id}/claim) and complete; observd executes nothing itself',
          url: null,
        },
      };
  }
}
