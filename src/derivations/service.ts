import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { StagedBlob } from '../assets/blob-store.js';
import { assetIdOf, discardUnclaimed, ensureAsset, getAsset, releaseWithDerivations } from '../assets/repo.js';
import { commitThenErase, type Deps } from '../deps.js';
import { AppError, isDiskFull, notFound } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ObservationView } from '../observations/schemas.js';
import { redactionForSubject } from '../privacy/policy.js';
import { indexText, unindexComputedText } from '../search/repo.js';
import { getSourceRow } from '../sources/repo.js';
import {
  BackendFailure,
  computeDerivation,
  ExternalProcessingWithheld,
  messageOf,
  type DerivationEngines,
  type Outcome,
} from './compute.js';
import { availableParallelism } from 'node:os';
import { OcrPool } from './ocr.js';
import { ScreenText, type ScreenTextStats } from './screen-text.js';
import { planFor } from './plan.js';
import { JobQueue, retryWhenDiskFull } from '../job-queue.js';
import {
  findByCacheKey,
  getDerivationRow,
  insertDerivation,
  listDerivations,
  listUnsettledIds,
  refreshProcessingStatus,
  toDerivationView,
  type DerivationRow,
  updateDerivation,
} from './repo.js';
import {
  PROFILE_VERSIONS,
  type DerivationBackend,
  type DerivationListQuery,
  type DerivationOptions,
  type DerivationProfile,
  type DerivationRequest,
  type DerivationView,
} from './schemas.js';
import { resolveSubject, type ResolvedSubject } from './subjects.js';
import { Transcriber } from './transcribe.js';

export type { DerivationEngines };

/** Callbacks run after a derivation settled and committed: the one place completion is reported (events go here). */
export interface DerivationHooks {
  onSettled?: (view: DerivationView) => void;
}

export interface DerivationResult {
  view: DerivationView;
  /** True once the record is completed or failed. */
  settled: boolean;
}

const MAX_ERROR_CHARS = 2000;

const isSettled = (s: DerivationRow['status']) => s === 'completed' || s === 'failed';

/**
 * The cache key: profile, its version, the subject, the subject's content, the backend identity
 * and, for text observd computes, the PII detectors applied to it (only when there are some, so
 * keys made before redaction existed still hit).
 */
export function cacheKey(
  profile: DerivationProfile,
  s: ResolvedSubject,
  backendIdentity: string | null,
  redaction: readonly string[] = [],
): string {
  const parts: unknown[] = [profile, PROFILE_VERSIONS[profile], s.key, s.contentHash, backendIdentity];
  if (redaction.length) parts.push(redaction);
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * Derivations: cached, deterministic canonical text and visual previews of assets and
 * observations, computed by a bounded background queue whose backlog lives in SQLite. No HTTP.
 */
export class DerivationService {
  private queue: JobQueue;
  private closed = false;
  private abort = new AbortController();
  private closedSignal: Promise<void>;
  /** Derivations asked to recompute with force_refresh: their OCR is whole-frame, never incremental. */
  private forceFull = new Set<string>();
  private signalClosed!: () => void;

  constructor(
    private deps: Deps,
    private engines: DerivationEngines,
    private logger?: Pick<Logger, 'error' | 'info' | 'warn'>,
    private hooks: DerivationHooks = {},
  ) {
    this.queue = new JobQueue(
      deps.config.derivations.queue_concurrency,
      (id, park) => this.runJob(id, park),
      // A full disk is not the derivation's fault: it stays pending/processing and runs again once there is room.
      retryWhenDiskFull(logger, 'derivation_id', { postponed: 'derivation postponed: disk full', crashed: 'derivation job crashed' }),
    );
    this.closedSignal = new Promise((r) => (this.signalClosed = r));
  }

  /**
   * Finds or creates the derivation of `profile` for a subject and, unless `wait` is false,
   * waits (up to `derivations.wait_timeout_ms`) for it to settle. A settled record is a cache
   * hit unless `force_refresh` (or `retry_failed` for a failed one) asks to recompute it;
   * identical requests share one computation. not_found / gone for the subject,
   * unsupported_derivation for a profile the subject's media cannot give.
   */
  async request(input: DerivationRequest, opts: DerivationOptions = {}): Promise<DerivationResult> {
    const { row, cacheStatus, done } = this.findOrCreate(input, opts, false);
    if (opts.wait !== false && !isSettled(row.status)) await this.waitFor(done);
    const current = getDerivationRow(this.deps.db, row.derivation_id);
    if (!current) throw new AppError('gone', 'the subject was erased while the derivation ran; the derivation went with it');
    return { view: toDerivationView(current, cacheStatus), settled: isSettled(current.status) };
  }

  /** Reads one derivation; not_found if missing. */
  get(id: string): DerivationView {
    const row = getDerivationRow(this.deps.db, id);
    if (!row) throw notFound(`derivation "${id}"`);
    return toDerivationView(row);
  }

  /** OCR work so far: recognitions run (whole or region) and how screen frames got their text. */
  ocrStats(): { recognitions: number; screen: ScreenTextStats | null } {
    return { recognitions: this.engines.ocr.recognitions, screen: this.engines.screen ? { ...this.engines.screen.stats } : null };
  }

  list(q: DerivationListQuery) {
    return listDerivations(this.deps.db, q);
  }

  /**
   * Queues the source's current `auto_derive` profiles for a new observation (the upload hook).
   * Never throws: the upload has committed already. A derivation that cannot be created marks
   * the observation's processing_status failed; with nothing left to derive it is completed.
   */
  autoDerive(observation: Pick<ObservationView, 'observation_id' | 'source_id' | 'processing_status'>): void {
    if (observation.processing_status === null) return;
    const id = observation.observation_id;
    const setStatus = (s: 'completed' | 'failed') =>
      this.deps.db
        .prepare(`UPDATE observations SET processing_status = ? WHERE observation_id = ? AND processing_status IS NOT NULL`)
        .run(s, id);
    try {
      const source = getSourceRow(this.deps.db, observation.source_id);
      const profiles = source ? (JSON.parse(source.auto_derive) as DerivationProfile[]) : [];
      if (profiles.length === 0) setStatus('completed');
      for (const profile of profiles) {
        try {
          this.findOrCreate({ profile, subject: { type: 'observation', observation_id: id } }, {}, true);
        } catch (err) {
          this.logger?.error({ err, observation_id: id, profile }, 'auto_derive could not start');
          setStatus('failed');
        }
      }
    } catch (err) {
      this.logger?.error({ err, observation_id: id }, 'auto_derive failed');
    }
  }

  /**
   * Starts the queue and resumes its durable backlog: every pending or processing derivation,
   * and auto_derive for observations whose upload committed but whose derivations were never
   * recorded (a crash between the two).
   */
  start(): void {
    const { db, config } = this.deps;
    if (!config.derivations.paused) this.queue.start();
    const ids = listUnsettledIds(db);
    for (const id of ids) void this.queue.ensure(id);
    const orphans = db
      .prepare(
        `SELECT observation_id, source_id, processing_status FROM observations o
         WHERE processing_status IN ('pending', 'processing') AND retention_state = 'active'
           AND NOT EXISTS (SELECT 1 FROM derivations d WHERE d.subject_observation_id = o.observation_id AND d.auto_derive = 1)`,
      )
      .all() as Array<Pick<ObservationView, 'observation_id' | 'source_id' | 'processing_status'>>;
    for (const o of orphans) this.autoDerive(o);
    if (ids.length || orphans.length)
      this.logger?.info({ derivations: ids.length, observations: orphans.length }, 'resumed derivation backlog');
  }

  /**
   * Stops: waiting requests answer with the record as it is, running backends are aborted and
   * the OCR workers terminated. Unfinished derivations stay pending/processing for the next start.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.signalClosed();
    this.abort.abort();
    await this.engines.ocr.close();
    await this.queue.stop();
  }

  /** Records the request in one transaction: the single-flight point (one row per cache key). */
  private findOrCreate(input: DerivationRequest, opts: DerivationOptions, auto: boolean) {
    const { db, now, newId } = this.deps;
    const r = db.transaction(() => {
      const resolved = resolveSubject(db, input.subject);
      const plan = planFor(input.profile, resolved);
      const identity = plan.kind === 'transcribe' ? this.engines.transcriber.identity : null;
      const computesText = plan.kind === 'ocr' || plan.kind === 'transcribe';
      const key = cacheKey(input.profile, resolved, identity, computesText ? redactionForSubject(db, this.deps.config, resolved) : []);
      const t = now();
      let row = findByCacheKey(db, key);
      if (!row) {
        row = {
          derivation_id: newId('der'),
          cache_key: key,
          profile: input.profile,
          profile_version: PROFILE_VERSIONS[input.profile],
          subject: JSON.stringify(input.subject),
          subject_type: input.subject.type,
          subject_observation_id: resolved.observationId,
          subject_asset_id: resolved.asset.asset_id,
          subject_content_hash: resolved.contentHash,
          backend_identity: identity,
          status: 'pending',
          error: null,
          backend: null,
          result_asset_id: null,
          reused_subject_asset: 0,
          auto_derive: auto ? 1 : 0,
          external_processing_withheld: 0,
          created_at_ms: t,
          updated_at_ms: t,
        };
        insertDerivation(db, row);
        if (auto && row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
        return { row, cacheStatus: 'miss' as const, rerun: false };
      }
      if (auto && !row.auto_derive) {
        updateDerivation(db, row.derivation_id, { auto_derive: 1 });
        if (row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
      }
      const recompute = isSettled(row.status) && (opts.force_refresh || (opts.retry_failed && row.status === 'failed'));
      if (!recompute) return { row, cacheStatus: isSettled(row.status) ? ('hit' as const) : ('miss' as const), rerun: false };
      // The previous result stays readable until the recomputation settles and replaces it.
      const reset = { status: 'pending' as const, error: null, updated_at_ms: t };
      if (opts.force_refresh) this.forceFull.add(row.derivation_id);
      updateDerivation(db, row.derivation_id, reset);
      if (row.auto_derive && row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
      return { row: { ...row, ...reset }, cacheStatus: 'miss' as const, rerun: true };
    })();
    const id = r.row.derivation_id;
    const done = isSettled(r.row.status) ? Promise.resolve() : r.rerun ? this.queue.rerun(id) : this.queue.ensure(id);
    return { ...r, done };
  }

  private async waitFor(done: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, this.deps.config.derivations.wait_timeout_ms)));
    try {
      await Promise.race([done, timeout, this.closedSignal]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One job: mark processing, compute outside any transaction, then settle in one. */
  private async runJob(id: string, park: () => void): Promise<void> {
    const { db, now, blobs } = this.deps;
    const row = getDerivationRow(db, id);
    const full = this.forceFull.delete(id);
    if (!row || isSettled(row.status) || this.closed) return;
    db.transaction(() => {
      updateDerivation(db, id, { status: 'processing', updated_at_ms: now() });
      if (row.auto_derive && row.subject_observation_id) refreshProcessingStatus(db, row.subject_observation_id);
    })();
    let outcome: Outcome | undefined;
    let failure: { message: string; backend: DerivationBackend | null; withheld?: boolean } | undefined;
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
    this.hooks.onSettled?.(view);
  }

  /** Stores the outcome; returns the settled view, or undefined when the derivation was dropped meanwhile. */
  private settle(
    id: string,
    outcome: Outcome | undefined,
    failure: { message: string; backend: DerivationBackend | null; withheld?: boolean } | undefined,
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

/** Builds the derivation service with its engines from the config: the OCR pool caches under the data directory. */
export function createDerivationService(deps: Deps, logger?: Pick<Logger, 'error' | 'info' | 'warn'>, hooks: DerivationHooks = {}) {
  const d = deps.config.derivations;
  const ocr = new OcrPool({ size: ocrWorkers(d.ocr_workers), cachePath: join(deps.config.data_dir, 'cache', 'ocr') });
  const s = d.screen_ocr;
  const screen = s.incremental
    ? new ScreenText(ocr, { history: s.history, maxRegionFraction: s.max_region_fraction, maxLanes: 32 })
    : undefined;
  return new DerivationService(deps, { ocr, transcriber: new Transcriber(deps.config.transcription), screen }, logger, hooks);
}

/** `ocr_workers`: a number, or `auto` for one per core but one (leaving a core to the event loop), at least 1, at most 8. */
export function ocrWorkers(setting: number | 'auto', cores = availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, Math.min(8, cores - 1)) : setting;
}
