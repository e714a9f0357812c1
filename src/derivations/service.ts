import type { Deps } from '../deps.js';
import { AppError, notFound } from '../errors.js';
import type { Logger } from '../logger.js';
import { autoDerive, listUnrecordedAutoDerive, type Uploaded } from './auto-derive.js';
import type { DerivationEngines } from './compute.js';
import { createEngines, ocrStats } from './engines.js';
import { isSettled, recordRequest } from './record.js';
import { getDerivationRow, listDerivations, listUnsettledIds, toDerivationView } from './repo.js';
import { DerivationRunner } from './runner.js';
import type { DerivationListQuery, DerivationOptions, DerivationRequest, DerivationView } from './schemas.js';

export interface DerivationResult {
  view: DerivationView;
  /** True once the record is completed or failed. */
  settled: boolean;
}

/**
 * Derivations: cached, deterministic canonical text and visual previews of assets and
 * observations, computed by a bounded background queue whose backlog lives in SQLite. No HTTP.
 * Requests are recorded by `record.ts`, run by `DerivationRunner` (`runner.ts`); uploads reach
 * it through `autoDerive` (`auto-derive.ts`).
 */
export class DerivationService {
  private runner: DerivationRunner;
  private closedSignal: Promise<void>;
  private signalClosed!: () => void;

  constructor(
    private deps: Deps,
    private engines: DerivationEngines,
    private logger?: Pick<Logger, 'error' | 'info' | 'warn'>,
  ) {
    this.runner = new DerivationRunner(deps, engines, logger);
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
  ocrStats() {
    return ocrStats(this.engines);
  }

  list(q: DerivationListQuery) {
    return listDerivations(this.deps.db, q);
  }

  /**
   * Queues the source's current `auto_derive` profiles for a new observation (the upload hook).
   * Never throws: the upload has committed already (see `autoDerive`).
   */
  autoDerive(observation: Uploaded): void {
    autoDerive(this.deps, this.logger, observation, (profile, observationId) => {
      this.findOrCreate({ profile, subject: { type: 'observation', observation_id: observationId } }, {}, true);
    });
  }

  /**
   * Starts the queue and resumes its durable backlog: every pending or processing derivation,
   * and auto_derive for observations whose upload committed but whose derivations were never
   * recorded (a crash between the two).
   */
  start(): void {
    const { db, config } = this.deps;
    this.runner.start(config.derivations.paused);
    const ids = listUnsettledIds(db);
    for (const id of ids) void this.runner.enqueue(id);
    const orphans = listUnrecordedAutoDerive(db);
    for (const o of orphans) this.autoDerive(o);
    if (ids.length || orphans.length)
      this.logger?.info({ derivations: ids.length, observations: orphans.length }, 'resumed derivation backlog');
  }

  /**
   * Stops: waiting requests answer with the record as it is, running backends are aborted and
   * the OCR workers terminated. Unfinished derivations stay pending/processing for the next start.
   */
  async close(): Promise<void> {
    this.signalClosed();
    await this.runner.close();
  }

  /** Records the request (the single-flight point) and queues what is left to compute. */
  private findOrCreate(input: DerivationRequest, opts: DerivationOptions, auto: boolean) {
    const r = recordRequest(this.deps, this.engines, input, opts, auto);
    const id = r.row.derivation_id;
    const done = isSettled(r.row.status)
      ? Promise.resolve()
      : this.runner.enqueue(id, { rerun: r.rerun, full: r.rerun && opts.force_refresh });
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
}

/** Builds the derivation service with its engines from the config (see `createEngines`). */
export function createDerivationService(deps: Deps, logger?: Pick<Logger, 'error' | 'info' | 'warn'>) {
  return new DerivationService(deps, createEngines(deps.config), logger);
}
