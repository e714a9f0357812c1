import type { SubmitterName } from '../schemas.js';

/** Hands runs to whatever executes them. Submitters never throw at callers: failures end the run. */
export interface RunSubmitter {
  readonly name: SubmitterName;
  /** Takes a run that was just queued (its creation has committed). */
  submit(runId: string): void;
  /** Starts work and resumes the runs a previous process left unfinished. */
  start(): void;
  /** Stops: work in progress is abandoned where it stands and resumed at the next start. */
  close(): Promise<void>;
}
