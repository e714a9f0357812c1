import type { Deps } from '../../deps.js';
import type { Logger } from '../../logger.js';
import type { RunLifecycle } from '../lifecycle.js';
import { HttpSubmitter } from './http.js';
import { OpenAISubmitter } from './openai.js';
import { QueueSubmitter } from './queue.js';
import type { RunSubmitter } from './types.js';

export type { RunSubmitter };

/** The submitter `runs.submitter` names. */
export function createSubmitter(deps: Deps, runs: RunLifecycle, logger?: Pick<Logger, 'error' | 'info' | 'warn'>): RunSubmitter {
  switch (deps.config.runs.submitter) {
    case 'queue':
      return new QueueSubmitter();
    case 'openai':
      return new OpenAISubmitter(deps, runs, logger);
    case 'http':
      return new HttpSubmitter(deps, runs, logger);
  }
}
