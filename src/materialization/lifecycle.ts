import { releaseWithDerivations } from '../assets/repo.js';
import { stmt } from '../db/open.js';
import { commitThenErase, type Deps } from '../deps.js';
import type { EventType } from '../events/types.js';
import { dropRunAssets, getRunRow, toRunView, transitionRun, type RunRow } from './runs-repo.js';
import type { RunStatus, RunView, Usage } from './schemas.js';

/** How a run ended. */
export type RunOutcome = { output: string; usage?: Partial<Usage> | null } | { error: string };

const MAX_ERROR_CHARS = 4000;

/**
 * The data of a run event: ids and states, never the input. The output is included only when
 * every involved source allows output delivery (webhook deliverers drop it otherwise too).
 */
export function runEventData(row: RunRow): Record<string, unknown> {
  const allowed = row.output_delivery_allowed === 1;
  return {
    run_id: row.run_id,
    kind: row.kind,
    status: row.status,
    submitter: row.submitter,
    target_session_id: row.target_session_id,
    session_input_offset: row.session_input_offset,
    observation_ids: JSON.parse(row.observation_ids),
    source_ids: JSON.parse(row.source_ids),
    sensitivity: row.sensitivity,
    output_delivery_allowed: allowed,
    ...(row.usage !== null ? { usage: JSON.parse(row.usage) } : {}),
    ...(row.error !== null ? { error: row.error } : {}),
    ...(allowed && row.output !== null ? { output: row.output } : {}),
  };
}

/** Appends a run event inside the caller's transaction; tagged with the source when exactly one is involved. */
export function appendRunEvent(deps: Pick<Deps, 'events'>, type: Extract<EventType, `run.${string}`>, row: RunRow): void {
  const sources = JSON.parse(row.source_ids) as string[];
  deps.events.append(type, sources.length === 1 ? sources[0] : null, runEventData(row));
}

/** The state machine of runs (queued → running → completed | failed), shared by the service and the submitters. */
export class RunLifecycle {
  constructor(private deps: Deps) {}

  /** Reads one run; undefined if missing. */
  get(runId: string): RunRow | undefined {
    return getRunRow(this.deps.db, runId);
  }

  /**
   * queued → running (one more attempt), leased for `leaseMs` when given (an agent runtime's
   * claim); the updated row, or undefined when the run was not queued.
   */
  start(runId: string, leaseMs?: number): RunRow | undefined {
    const { db, now } = this.deps;
    return db.transaction(() => {
      const t = now();
      const row = getRunRow(db, runId);
      const set = { status: 'running' as const, started_at_ms: t, updated_at_ms: t, attempts: row ? row.attempts + 1 : 0 };
      if (!row || !transitionRun(db, runId, ['queued'], { ...set, lease_expires_at_ms: leaseMs ? t + leaseMs : null })) {
        return undefined;
      }
      return getRunRow(db, runId);
    })();
  }

  /** Extends the lease of a claimed, running run by `leaseMs` from now; the updated row, or undefined when it is not. */
  extendLease(runId: string, leaseMs: number): RunRow | undefined {
    const { db, now } = this.deps;
    const row = getRunRow(db, runId);
    if (row?.status !== 'running' || row.lease_expires_at_ms === null) return undefined;
    const t = now();
    return transitionRun(db, runId, ['running'], { lease_expires_at_ms: t + leaseMs, updated_at_ms: t }) ? getRunRow(db, runId) : undefined;
  }

  /**
   * Puts claimed runs whose lease ran out back in the queue (emitting run.queued again), so a
   * runtime that died with a claim does not strand its run; returns their ids.
   */
  requeueExpiredClaims(now = this.deps.now()): string[] {
    const { db } = this.deps;
    return db.transaction(() => {
      const ids = stmt(
        db,
        `SELECT run_id FROM runs WHERE status = 'running' AND lease_expires_at_ms IS NOT NULL AND lease_expires_at_ms <= ? ORDER BY lease_expires_at_ms LIMIT 1000`,
      )
        .pluck()
        .all(now) as string[];
      for (const id of ids) {
        if (transitionRun(db, id, ['running'], { status: 'queued', lease_expires_at_ms: null, updated_at_ms: now })) {
          appendRunEvent(this.deps, 'run.queued', getRunRow(db, id)!);
        }
      }
      return ids;
    })();
  }

  /** running → queued: an attempt interrupted by a shutdown goes back to the queue; false otherwise. */
  requeue(runId: string): boolean {
    return transitionRun(this.deps.db, runId, ['running'], { status: 'queued', updated_at_ms: this.deps.now() });
  }

  /** Records that the agent runtime accepted a running run (http submitter); false if it is no longer running. */
  markSubmitted(runId: string): boolean {
    const t = this.deps.now();
    return transitionRun(this.deps.db, runId, ['running'], { submitted_at_ms: t, updated_at_ms: t });
  }

  /**
   * Ends a run that is in one of `from` (running by default) with its output or error, releases
   * the raw assets it held and erases the blobs nothing else holds, after commit; emits
   * run.completed or run.failed. The finished view, or undefined when the run was not in `from`.
   */
  finish(runId: string, outcome: RunOutcome, from: RunStatus[] = ['running']): RunView | undefined {
    const { db, now } = this.deps;
    return commitThenErase(this.deps, () => {
      const t = now();
      const failed = 'error' in outcome;
      const set: Partial<RunRow> = failed
        ? { status: 'failed', error: outcome.error.slice(0, MAX_ERROR_CHARS), output: null, usage: null }
        : { status: 'completed', error: null, output: outcome.output, usage: normalizeUsage(outcome.usage) };
      if (!transitionRun(db, runId, from, { ...set, updated_at_ms: t, finished_at_ms: t, lease_expires_at_ms: null })) {
        return { result: undefined, freed: [] };
      }
      const freed = releaseWithDerivations(db, [], dropRunAssets(db, runId));
      const row = getRunRow(db, runId)!;
      appendRunEvent(this.deps, failed ? 'run.failed' : 'run.completed', row);
      return { result: toRunView(row, true), freed };
    });
  }
}

/** Usage as stored: every count present (null when unknown), or SQL null when none was reported. */
function normalizeUsage(u: Partial<Usage> | null | undefined): string | null {
  if (!u) return null;
  const full: Usage = {
    input_tokens: u.input_tokens ?? null,
    output_tokens: u.output_tokens ?? null,
    total_tokens: u.total_tokens ?? null,
  };
  return JSON.stringify(full);
}

/** The error a run cancelled by an erasure ends with. */
export const ERASED_RUN_ERROR = 'cancelled: an observation it involved was erased';

/**
 * Erases what a run keeps of the observations it involved, inside the caller's transaction
 * (an observation of it is being deleted, purged or evicted): a queued or running run is
 * cancelled (failed with ERASED_RUN_ERROR, run.failed emitted), and any run loses its composed
 * input, its output, its stream ids and its session journal text. Returns the asset ids it held
 * (raw assets, journal text) for the caller to release.
 */
export function eraseRun(deps: Pick<Deps, 'db' | 'now' | 'events'>, runId: string): string[] {
  const { db, now } = deps;
  const row = getRunRow(db, runId);
  if (!row) return [];
  const t = now();
  if (row.status === 'queued' || row.status === 'running') {
    transitionRun(db, runId, ['queued', 'running'], {
      status: 'failed',
      error: ERASED_RUN_ERROR,
      output: null,
      usage: null,
      updated_at_ms: t,
      finished_at_ms: t,
      lease_expires_at_ms: null,
    });
  }
  stmt(db, `UPDATE runs SET input = 'null', output = NULL, stream_ids = '[]' WHERE run_id = ?`).run(runId);
  if (row.status === 'queued' || row.status === 'running') appendRunEvent(deps, 'run.failed', getRunRow(db, runId)!);
  const held = dropRunAssets(db, runId);
  // RETURNING would give the new (null) value: read the text assets first.
  const texts = stmt(db, `SELECT text_asset_id FROM session_inputs WHERE run_id = ?`).pluck().all(runId) as Array<string | null>;
  stmt(db, `UPDATE session_inputs SET content = 'null', text_asset_id = NULL WHERE run_id = ?`).run(runId);
  const dropSessionDerivations = stmt(
    db,
    `DELETE FROM derivations WHERE subject_type = 'session_input' AND subject_asset_id = ? RETURNING result_asset_id`,
  ).pluck();
  const released = [...held];
  for (const text of texts) {
    if (!text) continue;
    released.push(text);
    for (const r of dropSessionDerivations.all(text) as Array<string | null>) if (r) released.push(r);
  }
  return released;
}
