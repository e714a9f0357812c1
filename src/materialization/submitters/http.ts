import pRetry from 'p-retry';
import type { Deps } from '../../deps.js';
import type { Logger } from '../../logger.js';
import type { RunLifecycle } from '../lifecycle.js';
import { toRunView, type RunRow } from '../runs-repo.js';
import { webhookHeaders } from '../../events/signing.js';
import { BackgroundSubmitter } from './background.js';

/**
 * POSTs each run (its view with the composed input) to the configured agent-runtime URL, signed
 * like Standard Webhooks (`webhook-id` is the run id, stable across retries), retrying with
 * exponential backoff (p-retry). The run is `running` from the first attempt; a 2xx sets
 * `submitted_at_ms` and the runtime then reports the result with `POST /v1/runs/{id}/complete`.
 * When every attempt fails the run is failed with the last error.
 */
export class HttpSubmitter extends BackgroundSubmitter {
  constructor(deps: Deps, runs: RunLifecycle, logger?: Pick<Logger, 'error' | 'info' | 'warn'>) {
    super('http', deps, runs, logger);
  }

  protected resumes(row: RunRow): boolean {
    // Delivered runs are the runtime's now; the rest are (re)delivered.
    return row.status === 'queued' || row.submitted_at_ms === null;
  }

  protected async process(runId: string): Promise<void> {
    const current = this.runs.get(runId);
    if (!current) return;
    const row =
      current.status === 'queued'
        ? this.runs.start(runId)
        : current.status === 'running' && current.submitted_at_ms === null
          ? current
          : undefined;
    if (!row) return;
    const { url, secret, timeout_ms, max_attempts, backoff_ms } = this.deps.config.runs.http;
    const body = JSON.stringify(toRunView(row, true));
    try {
      await pRetry(
        async () => {
          let res: Response;
          try {
            res = await fetch(url!, {
              method: 'POST',
              headers: {
                'content-type': 'application/json',
                'user-agent': 'observd-run-submitter',
                ...webhookHeaders(secret!, runId, this.deps.now(), body),
              },
              body,
              signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(timeout_ms)]),
            });
          } catch (e) {
            // Rethrown as a plain Error: p-retry stops at once on a TypeError it does not take for a network error.
            throw new Error(e instanceof Error ? e.message : String(e));
          }
          await res.body?.cancel();
          if (!res.ok) throw new Error(`the agent runtime answered ${res.status}`);
          this.runs.markSubmitted(runId);
        },
        // backoff_ms before the second attempt, doubling, at most 5 minutes; closing the submitter ends the wait.
        { retries: max_attempts - 1, minTimeout: backoff_ms, factor: 2, maxTimeout: 5 * 60_000, signal: this.abort.signal },
      );
    } catch (e) {
      if (this.closed) return;
      const error = (e as Error).message;
      this.runs.finish(runId, { error: `delivery to the agent runtime failed after ${max_attempts} attempts: ${error}` });
      this.logger?.info({ run_id: runId, error }, 'run delivery failed');
    }
  }
}
