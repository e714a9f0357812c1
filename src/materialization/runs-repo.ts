import { stmt, type Db } from '../db/open.js';
import { keysetListing } from '../db/keyset.js';
import type { Listing } from '../pagination.js';
import type { Sensitivity } from '../sources/schemas.js';
import type { RawAssetPolicy, RunFilter, RunStatus, RunView, SubmitterName } from './schemas.js';

/** A run row as stored (JSON columns as text). */
export interface RunRow {
  run_id: string;
  kind: 'observation_materialization';
  status: RunStatus;
  submitter: SubmitterName;
  target_session_id: string;
  session_input_offset: number;
  observation_ids: string;
  asset_ids: string;
  source_ids: string;
  stream_ids: string;
  sensitivity: Sensitivity | null;
  output_delivery_allowed: number;
  raw_asset_policy: RawAssetPolicy;
  /** JSON array of the observation ids withheld from an external submitter. */
  external_processing_withheld: string;
  input: string;
  output: string | null;
  usage: string | null;
  error: string | null;
  attempts: number;
  created_at_ms: number;
  updated_at_ms: number;
  started_at_ms: number | null;
  submitted_at_ms: number | null;
  finished_at_ms: number | null;
  lease_expires_at_ms: number | null;
  /** Kheish's `request.actor_id` (null for runs recorded before it existed). */
  actor_id: string | null;
}

/** Reads one run; undefined if missing. */
export function getRunRow(db: Db, runId: string): RunRow | undefined {
  return stmt(db, `SELECT * FROM runs WHERE run_id = ?`).get(runId) as RunRow | undefined;
}

/** Inserts a new run and the raw assets it holds, inside the caller's transaction. */
export function insertRun(db: Db, row: RunRow, heldAssetIds: string[]): void {
  const cols = Object.keys(row);
  stmt(db, `INSERT INTO runs (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
  const hold = stmt(db, `INSERT OR IGNORE INTO run_assets (run_id, asset_id) VALUES (?, ?)`);
  for (const id of heldAssetIds) hold.run(row.run_id, id);
  // So erasing an observation finds the runs that involved it (src/retention/erase.ts).
  const involve = stmt(db, `INSERT OR IGNORE INTO run_observations (observation_id, run_id) VALUES (?, ?)`);
  for (const id of JSON.parse(row.observation_ids) as string[]) involve.run(id, row.run_id);
}

/**
 * Updates a run only while its status is one of `from`, inside the caller's transaction (the
 * compare-and-set of every state transition); false when the run is missing or in another state.
 */
export function transitionRun(db: Db, runId: string, from: RunStatus[], set: Partial<RunRow>): boolean {
  const cols = Object.keys(set);
  const sql = `UPDATE runs SET ${cols.map((c) => `${c} = @${c}`).join(', ')} WHERE run_id = @run_id AND status IN (${from.map((s) => `'${s}'`).join(', ')})`;
  // A handful of distinct statements (one per kind of transition): cached like the others.
  return stmt(db, sql).run({ ...set, run_id: runId }).changes > 0;
}

/** Drops a run's hold on its raw assets and returns their ids (to release), inside the caller's transaction. */
export function dropRunAssets(db: Db, runId: string): string[] {
  return stmt(db, `DELETE FROM run_assets WHERE run_id = ? RETURNING asset_id`).pluck().all(runId) as string[];
}

/** Ids of the runs a submitter still has to act on: queued, or running (maybe interrupted), oldest first. */
export function listUnfinishedRuns(db: Db, submitter: SubmitterName): RunRow[] {
  return stmt(db, `SELECT * FROM runs WHERE status IN ('queued', 'running') AND submitter = ? ORDER BY run_id`).all(submitter) as RunRow[];
}

/** Converts a row to its wire view; `withInput` adds the composed input. */
export function toRunView(r: RunRow, withInput: boolean): RunView {
  const observationIds = JSON.parse(r.observation_ids) as string[];
  const sourceIds = JSON.parse(r.source_ids) as string[];
  const view: RunView = {
    run_id: r.run_id,
    session_id: r.target_session_id,
    agent_id: `observd:${r.submitter}`,
    kind: r.kind,
    status: r.status,
    request: {
      source_plugin: 'daemon',
      source_kind: 'observation_materialization',
      actor_id: r.actor_id ?? observationIds[0] ?? sourceIds[0] ?? r.target_session_id,
    },
    submitter: r.submitter,
    target_session_id: r.target_session_id,
    session_input_offset: r.session_input_offset,
    observation_ids: observationIds,
    asset_ids: JSON.parse(r.asset_ids),
    source_ids: sourceIds,
    stream_ids: JSON.parse(r.stream_ids),
    sensitivity: r.sensitivity,
    output_delivery_allowed: r.output_delivery_allowed === 1,
    raw_asset_policy: r.raw_asset_policy,
    external_processing_withheld: JSON.parse(r.external_processing_withheld),
    output: r.output,
    usage: r.usage === null ? null : JSON.parse(r.usage),
    error: r.error,
    attempts: r.attempts,
    created_at_ms: r.created_at_ms,
    updated_at_ms: r.updated_at_ms,
    started_at_ms: r.started_at_ms,
    submitted_at_ms: r.created_at_ms,
    handed_off_at_ms: r.submitted_at_ms,
    finished_at_ms: r.finished_at_ms,
    lease_expires_at_ms: r.lease_expires_at_ms,
  };
  if (withInput) view.input = JSON.parse(r.input);
  return view;
}

/** Lists runs by id (creation order) as keyset pages; bad_request on a foreign cursor. */
export function listRuns(db: Db, q: RunFilter): Listing<RunView> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.status) where.push('status = ?'), args.push(q.status);
  if (q.target_session_id) where.push('target_session_id = ?'), args.push(q.target_session_id);
  // Never the input column: listings leave it out, and it can be large.
  const columns = `run_id, kind, status, submitter, target_session_id, session_input_offset, observation_ids, asset_ids, source_ids,
    stream_ids, sensitivity, output_delivery_allowed, raw_asset_policy, external_processing_withheld, '' AS input, output, usage, error, attempts,
    created_at_ms, updated_at_ms, started_at_ms, submitted_at_ms, finished_at_ms, lease_expires_at_ms, actor_id`;
  return keysetListing<RunRow, RunView>(db, {
    table: 'runs',
    key: 'run_id',
    scope: 'runs',
    order: 'asc',
    columns,
    where,
    args,
    view: (r) => toRunView(r, false),
  });
}
