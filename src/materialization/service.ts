import type { StagedBlob } from '../assets/blob-store.js';
import { assetIdOf, ensureAsset, getAsset, releaseAssets } from '../assets/repo.js';
import type { DerivationService } from '../derivations/service.js';
import { commitThenErase, type Deps } from '../deps.js';
import { AppError, notFound } from '../errors.js';
import type { Logger } from '../logger.js';
import { allowsExternalProcessing } from '../sources/repo.js';
import { SENSITIVITIES, type Sensitivity } from '../sources/schemas.js';
import { composeInput, effectivePolicy, renderInputText } from './compose.js';
import { observationText, withheldText } from './texts.js';
import { appendSessionInput, listSessionInputsWithoutText, setSessionInputText } from '../sessions/journal.js';
import { appendRunEvent, RunLifecycle } from './lifecycle.js';
import { getRunRow, insertRun, listRuns, toRunView, type RunRow } from './runs-repo.js';
import type { CompleteRun, ComposedInput, MaterializationRequest, RunFilter, RunView } from './schemas.js';
import type { Reader } from '../access.js';
import { runtimeSettings, type RuntimeSettingsView } from './runtime.js';
import type { Listing } from '../pagination.js';
import { requireActive, requireMaterializable, resolveSelection, type Selected } from './selection.js';
import { createSubmitter, type RunSubmitter } from './submitters/index.js';

const TEXT_MEDIA_TYPE = 'text/plain; charset=utf-8';

/**
 * Materialization: resolves a selection of observations, composes the run's input (untrusted
 * evidence, then the caller's request), records the run and its session journal entry in one
 * transaction, and hands the run to the configured submitter. Also the runs API's state
 * machine for agent runtimes (claim, complete). No HTTP.
 */
export class MaterializationService {
  /** Journal texts being written after their run committed. */
  private writing = new Set<Promise<void>>();
  /** Puts runs whose claim lease ran out back in the queue. */

  constructor(
    private deps: Deps,
    private derivations: DerivationService,
    private submitter: RunSubmitter,
    readonly lifecycle: RunLifecycle,
    private logger?: Pick<Logger, 'error' | 'info' | 'warn'>,
  ) {}

  /**
   * Materializes a selection into a new queued run and submits it; returns the run with its
   * composed input. not_found / gone / forbidden from the selection; empty_selection when nothing
   * matched and `fail_when_empty` is set (otherwise the run is empty).
   */
  async materialize(req: MaterializationRequest): Promise<RunView> {
    const { selected, input } = await this.prepare(req);
    const row = this.record(req, selected, input);
    this.submitter.submit(row.run_id);
    this.writeJournalText(row.target_session_id, row.session_input_offset, input);
    return toRunView(row, true);
  }

  /**
   * Resolves the selection and composes the input, recording nothing: the first half of
   * `materialize`, with the same errors.
   */
  async prepare(req: MaterializationRequest): Promise<{ selected: Selected; input: ComposedInput }> {
    const { db, now } = this.deps;
    const selected = db.transaction(() => resolveSelection(db, req.selection, now()))();
    if (selected.observations.length === 0 && req.fail_when_empty) {
      throw new AppError('empty_selection', 'the selection matched no active observations (set fail_when_empty to false for an empty run)');
    }
    // openai and http hand the run to another process, often another machine: sources that do not
    // allow external processing send neither text nor media (nor is text derived for them).
    const external = this.submitter.name !== 'queue';
    const texts = await Promise.all(
      selected.observations.map((o) => {
        // Every selected observation's source is in the selection (resolveSelection puts it there).
        if (external && !allowsExternalProcessing(selected.sources.get(o.source_id)!))
          return withheldText(o.source_id, this.submitter.name);
        return observationText(this.deps, this.derivations, o);
      }),
    );
    return { selected, input: composeInput(selected.observations, texts, effectivePolicy(req), req.request) };
  }

  /** Kheish's RuntimeSettingsView describing the configured run submitter. */
  runtime(): RuntimeSettingsView {
    return runtimeSettings(this.deps.config);
  }

  /** Resolves once every journal text started so far is written (or has failed and been logged). */
  async flushJournal(): Promise<void> {
    while (this.writing.size) await Promise.all(this.writing);
  }

  /**
   * Reads one run with its input (and output once finished), as `reader` may see it: the
   * read-only token gets no input or output of runs that involve sensitive observations.
   * not_found if missing (whatever the form of the id).
   */
  get(runId: string, reader: Reader = 'admin'): RunView {
    const row = getRunRow(this.deps.db, runId);
    if (!row) throw notFound(`run "${runId}"`);
    return visibleTo(reader, toRunView(row, true));
  }

  /** Lists runs (without their input) by creation order, as `reader` may see them; bad_request for a foreign cursor. */
  list(q: RunFilter, reader: Reader = 'admin'): Listing<RunView> {
    const listing = listRuns(this.deps.db, q);
    return {
      ...listing,
      fetchPage: (cursor, limit) => {
        const page = listing.fetchPage(cursor, limit);
        return { ...page, items: page.items.map((v) => visibleTo(reader, v)) };
      },
    };
  }

  /**
   * Takes a queued run for an agent runtime (queued → running) and returns it with its input;
   * not_found if missing; conflict when it is not queued or another submitter carries it.
   */
  claim(runId: string): RunView {
    const row = getRunRow(this.deps.db, runId);
    if (!row) throw notFound(`run "${runId}"`);
    if (row.submitter !== 'queue' && row.submitter === this.submitter.name) {
      throw new AppError('conflict', `run "${runId}" is carried by the ${row.submitter} submitter and cannot be claimed`);
    }
    const started = this.lifecycle.start(runId, this.deps.config.runs.claim_lease_ms);
    if (!started) throw new AppError('conflict', `run "${runId}" is ${row.status}; only a queued run can be claimed`);
    return toRunView(started, true);
  }

  /**
   * Keeps a claimed run leased for another `runs.claim_lease_ms`; not_found if missing,
   * conflict when it is not a claimed, running run (its lease may already have run out).
   */
  heartbeat(runId: string): RunView {
    const row = getRunRow(this.deps.db, runId);
    if (!row) throw notFound(`run "${runId}"`);
    const extended = this.lifecycle.extendLease(runId, this.deps.config.runs.claim_lease_ms);
    if (!extended) throw new AppError('conflict', `run "${runId}" is ${row.status} and not held by a claim`);
    return toRunView(extended, false);
  }

  /** Returns claimed runs whose lease ran out to the queue; their ids. */
  requeueExpiredClaims(now = this.deps.now()): string[] {
    return this.lifecycle.requeueExpiredClaims(now);
  }

  /**
   * Ends a running run with the runtime's output (and usage) or error (→ completed | failed),
   * releasing the blobs it held; not_found if missing; conflict when it is not running or the
   * openai submitter carries it.
   */
  complete(runId: string, body: CompleteRun): RunView {
    const row = getRunRow(this.deps.db, runId);
    if (!row) throw notFound(`run "${runId}"`);
    if (row.submitter === 'openai' && this.submitter.name === 'openai') {
      throw new AppError('conflict', `run "${runId}" is carried by the openai submitter and cannot be completed over the API`);
    }
    const outcome = body.error !== undefined ? { error: body.error } : { output: body.output!, usage: body.usage };
    const view = this.lifecycle.finish(runId, outcome);
    if (!view) throw new AppError('conflict', `run "${runId}" is ${row.status}; only a running run can be completed`);
    return view;
  }

  /** Starts the submitter, which resumes unfinished runs, and writes journal texts a crash left unwritten. */
  start(): void {
    this.submitter.start();
    const pending = listSessionInputsWithoutText(this.deps.db, 10_000);
    for (const e of pending) this.writeJournalText(e.session_id, e.offset, JSON.parse(e.content) as ComposedInput);
    if (pending.length) this.logger?.info({ session_inputs: pending.length }, 'writing session input texts left unwritten');
  }

  /** Stops the submitter (runs in flight resume at the next start) and finishes the journal texts being written. */
  async close(): Promise<void> {
    await this.submitter.close();
    await this.flushJournal();
  }

  /**
   * Writes a journal entry's text/plain rendering after its run committed: the entry's content
   * is the durable record, and this blob (temp + fsync + rename, like any) only has to exist by
   * the time a `session_input` derivation reads it. Off the materialization's path: it costs
   * two fsyncs. Never throws; a failure is logged and retried at the next start.
   */
  private writeJournalText(sessionId: string, offset: number, input: ComposedInput): void {
    const { db, blobs, now } = this.deps;
    const work = (async () => {
      let staged: StagedBlob | undefined;
      try {
        staged = await blobs.stage(Buffer.from(renderInputText(input), 'utf8'));
        const s = staged;
        blobs.publishSync(s);
        commitThenErase(this.deps, () => {
          const assetId = ensureAsset(db, s.sha256, TEXT_MEDIA_TYPE, s.byteLength, now());
          if (setSessionInputText(db, sessionId, offset, assetId)) return { result: undefined, freed: [] };
          // Its run was erased while the text was written: keep nothing of it.
          return { result: undefined, freed: releaseAssets(db, [assetId]), erased: true };
        });
      } catch (err) {
        // A published text that no row took would be an orphan blob.
        if (staged && !getAsset(db, assetIdOf(staged.sha256))) blobs.removeSync(staged.sha256);
        this.logger?.error({ err, session_id: sessionId, offset }, 'writing a session input text failed');
      }
    })();
    this.writing.add(work);
    void work.finally(() => this.writing.delete(work));
  }

  /**
   * Records the run in one transaction: re-checks the selection (an observation purged since is
   * gone), appends the journal entry, stores the run with its held assets and the run.queued event.
   */
  private record(req: MaterializationRequest, selected: Selected, input: ComposedInput): RunRow {
    const { db, now, newId } = this.deps;
    return db.transaction(() => {
      const observations = selected.observations.map((o) => requireActive(db, o.observation_id));
      const sources = [...selected.sources.keys()].map((id) => requireMaterializable(db, id));
      const t = now();
      const runId = newId('run');
      const content = JSON.stringify(input);
      const offset = appendSessionInput(db, { session_id: req.target_session_id, run_id: runId, content, created_at_ms: t });
      const streams = req.selection.type === 'latest_from_stream' ? [req.selection.stream_id] : observations.map((o) => o.stream_id);
      const row: RunRow = {
        run_id: runId,
        kind: 'observation_materialization',
        status: 'queued',
        submitter: this.submitter.name,
        target_session_id: req.target_session_id,
        session_input_offset: offset,
        observation_ids: JSON.stringify(observations.map((o) => o.observation_id)),
        asset_ids: JSON.stringify(input.attachments.map((a) => a.asset_id)),
        source_ids: JSON.stringify(sources.map((s) => s.source_id)),
        stream_ids: JSON.stringify([...new Set(streams.filter((s): s is string => s !== null))]),
        sensitivity: mostRestrictive([...observations.map((o) => o.sensitivity), ...sources.map((s) => s.sensitivity)]),
        output_delivery_allowed: sources.every((s) => s.allow_output_delivery === 1) ? 1 : 0,
        raw_asset_policy: effectivePolicy(req),
        external_processing_withheld: JSON.stringify(
          input.observations.filter((o) => o.text_origin === 'withheld').map((o) => o.observation_id),
        ),
        input: content,
        output: null,
        usage: null,
        error: null,
        attempts: 0,
        created_at_ms: t,
        updated_at_ms: t,
        started_at_ms: null,
        submitted_at_ms: null,
        finished_at_ms: null,
        lease_expires_at_ms: null,
        actor_id: actorOf(
          req,
          observations.map((o) => o.observation_id),
        ),
      };
      insertRun(
        db,
        row,
        input.attachments.map((a) => a.asset_id),
      );
      appendRunEvent(this.deps, 'run.queued', row);
      return row;
    })();
  }
}

/** What a reader may see of a run: the read-only token gets no input or output of runs involving sensitive observations. */
function visibleTo(reader: Reader, view: RunView): RunView {
  if (reader === 'admin' || view.sensitivity !== 'sensitive') return view;
  return { ...view, ...(view.input !== undefined ? { input: null } : {}), output: null };
}

/** Kheish's `request.actor_id` of a materialization: the first id, the source, or `source:stream`. */
function actorOf(req: MaterializationRequest, observationIds: string[]): string {
  const s = req.selection;
  if (s.type === 'observation_ids') return s.observation_ids[0] ?? observationIds[0] ?? '';
  if (s.type === 'latest_from_stream') return `${s.source_id}:${s.stream_id}`;
  if (s.type === 'observation_group') return `observation-group:${s.capture_group_id}`;
  return s.source_id;
}

/** The most restrictive of some sensitivities (null for none). */
export function mostRestrictive(values: Sensitivity[]): Sensitivity | null {
  let max = -1;
  for (const v of values) max = Math.max(max, SENSITIVITIES.indexOf(v));
  return max < 0 ? null : SENSITIVITIES[max];
}

/** Builds the service with the submitter `runs.submitter` names. */
export function createMaterializationService(deps: Deps, derivations: DerivationService, logger?: Pick<Logger, 'error' | 'info' | 'warn'>) {
  const lifecycle = new RunLifecycle(deps);
  return new MaterializationService(deps, derivations, createSubmitter(deps, lifecycle, logger), lifecycle, logger);
}
