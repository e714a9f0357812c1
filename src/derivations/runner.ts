import type { StagedBlob } from '../assets/blob-store.js';
import { assetIdOf, discardUnclaimed, ensureAsset, getAsset, releaseWithDerivations } from '../assets/repo.js';
import { commitThenErase, type Deps } from '../deps.js';
import { isDiskFull } from '../errors.js';
import { JobQueue, retryWhenDiskFull } from '../job-queue.js';
import type { Logger } from '../logger.js';
import { indexText, unindexComputedText } from '../search/repo.js';
import {
  BackendFailure,
  computeDerivation,
  type DerivationEngines,
  ExternalProcessingWithheld,
  messageOf,
  type Outcome,
} from './compute.js';
import { isSettled } from './record.js';
import { getDerivationRow, refreshProcessingStatus, toDerivationView, type DerivationRow, updateDerivation } from './repo.js';
import type { DerivationBackend, DerivationView } from './schemas.js';

type Failure = { message: string; backend: DerivationBackend | null; withheld?: boolean };

const MAX_ERROR_CHARS = 2000;

/**
 * Runs queued derivations: a bounded background queue (`derivations.queue_concurrency`) whose
 * backlog lives in SQLite. Each job marks its record processing, computes outside any
 * transaction, then settles the record, its result asset, the search index and the event in one.
 */
export class DerivationRunner {
  private queue: JobQueue;
  private closed = false;
  private abort = new AbortController();
  /** Derivations asked to recompute with force_refresh: their OCR is whole-frame, never incremental. */
  private forceFull = new Set<string>();

  constructor(
    private deps: Deps,
    private engines: DerivationEngines,
    private logger?: Pick<Logger, 'error' | 'info' | 'warn'>,
  ) {
    this.queue = new JobQueue(
      deps.config.derivations.queue_concurrency,
      (id, park) => this.run(id, park),
      // A full disk is not the derivation's fault: it stays pending/processing and runs again once there is room.
      retryWhenDiskFull(logger, 'derivation_id', { postponed: 'derivation postponed: disk full', crashed: 'derivation job crashed' }),
    );
  }

  /**
   * Queues a derivation unless it is queued or running; `rerun` (its record was reset) follows a
   * run in progress with a fresh one, `full` makes its OCR whole-frame. Resolves when it has run.
   */
  enqueue(id: string, how: { rerun?: boolean; full?: boolean } = {}): Promise<void> {
    if (how.full) this.forceFull.add(id);
    return how.rerun ? this.queue.rerun(id) : this.queue.ensure(id);
  }

  /** Starts running jobs unless `paused` (queued ones stay queued until a start that is not). */
  start(paused: boolean): void {
    if (!paused) this.queue.start();
  }

  /** Aborts running backends, terminates the OCR workers and waits for the runs in progress; they record nothing. */
  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await this.engines.ocr.close();
    await this.queue.stop();
  }

  /** One job: mark processing, compute outside any transaction, then settle in one. */
  private async run(id: string, park: () => void): Promise<void> {
    const { db, now, blobs } = this.deps;
    const row = getDerivationRow(db, id);
    const full = this.forceFull.delete(id);
    if (!row || isSettled(row.status) || this.closed) return;
    db.transaction(() => {
      updateDerivation(db, id, { status: 'processing', updated_at_ms: now() });
      if (row.auto_derive && row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
    })();
    let outcome: Outcome | undefined;
    let failure: Failure | undefined;
    let staged: StagedBlob | undefined;
    try {
      outcome = await computeDerivation({ deps: this.deps, engines: this.engines, signal: this.abort.signal, full, park }, row);
      if (outcome.kind === 'produced') staged = await blobs.stage(outcome.bytes);
    } catch (e) {
      // A full disk is retried (by the queue), not recorded as the derivation's failure.
      if (isDiskFull(e)) throw e;
      failure = {
        message: messageOf(e),
        backend: e instanceof BackendFailure ? e.backend : null,
        withheld: e instanceof ExternalProcessingWithheld,
      };
    }
    if (this.closed) {
      // Left as processing: the next start runs it again.
      if (staged) blobs.discard(staged);
      return;
    }
    const view = this.settle(id, outcome, failure, staged);
    if (!view) return;
    if (view.status === 'failed') this.logger?.info({ derivation_id: id, profile: view.profile, error: view.error }, 'derivation failed');
  }

  /** Stores the outcome; returns the settled view, or undefined when the derivation was dropped meanwhile. */
  private settle(
    id: string,
    outcome: Outcome | undefined,
    failure: Failure | undefined,
    staged: StagedBlob | undefined,
  ): DerivationView | undefined {
    const { db, now, blobs } = this.deps;
    if (staged) blobs.publishSync(staged);
    try {
      return commitThenErase(this.deps, () => {
        const current = getDerivationRow(db, id);
        if (current?.status !== 'processing') {
          // Its subject was erased while it ran: keep nothing it made.
          const orphan = staged && !getAsset(db, assetIdOf(staged.sha256)) ? [staged.sha256] : [];
          return { result: undefined, freed: orphan };
        }
        const t = now();
        let set: Partial<DerivationRow>;
        if (outcome && !failure) {
          const reused = outcome.kind === 'reuse';
          set = {
            status: 'completed',
            error: null,
            result_asset_id: reused ? outcome.assetId : ensureAsset(db, staged!.sha256, outcome.mediaType, staged!.byteLength, t),
            reused_subject_asset: reused ? 1 : 0,
            // Where screen text came from is stored beside the backend that made it.
            backend:
              !reused && outcome.backend
                ? JSON.stringify(outcome.textFrom ? { ...outcome.backend, text_from: outcome.textFrom } : outcome.backend)
                : null,
            external_processing_withheld: 0,
            updated_at_ms: t,
          };
        } else {
          set = {
            status: 'failed',
            error: (failure?.message ?? 'unknown failure').slice(0, MAX_ERROR_CHARS),
            result_asset_id: null,
            reused_subject_asset: 0,
            backend: failure?.backend ? JSON.stringify(failure.backend) : null,
            external_processing_withheld: failure?.withheld ? 1 : 0,
            updated_at_ms: t,
          };
        }
        updateDerivation(db, id, set);
        // The observation's canonical text enters the search index in the commit that stores it.
        if (current.profile === 'canonical_text' && current.subject_observation_id) {
          if (outcome?.kind === 'produced' && !failure) indexText(db, current.subject_observation_id, outcome.bytes.toString('utf8'));
          else if (failure) unindexComputedText(db, current.subject_observation_id);
        }
        const old = current.result_asset_id;
        const freed = old && old !== set.result_asset_id ? releaseWithDerivations(db, [], [old]) : [];
        if (current.auto_derive && current.subject_observation_id) refreshProcessingStatus(db, current.subject_observation_id);
        const view = toDerivationView(getDerivationRow(db, id)!);
        this.deps.events.append(view.status === 'completed' ? 'derivation.completed' : 'derivation.failed', null, {
          derivation_id: view.derivation_id,
          profile: view.profile,
          subject: view.subject,
          status: view.status,
          result_asset_id: view.result_asset_id,
          ...(view.error ? { error: view.error } : {}),
        });
        return { result: view, freed };
      });
    } catch (e) {
      // Not stored (a full disk): the published result must not stay behind as an orphan blob.
      if (staged) discardUnclaimed(db, blobs, [staged.sha256]);
      throw e;
    }
  }
}
