import type { RunSubmitter } from './types.js';

/**
 * The default submitter: runs stay queued, with their composed input, for an agent runtime to
 * read (`GET /v1/runs?status=queued`), claim and complete over the API.
 */
export class QueueSubmitter implements RunSubmitter {
  readonly name = 'queue' as const;
  submit(): void {}
  start(): void {}
  async close(): Promise<void> {}
}
