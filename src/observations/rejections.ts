import { recordAudit } from '../audit/repo.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { getSourceRow } from '../sources/repo.js';
import { RateLimiter } from './rate-limiter.js';

/** How many rejections per source and reason reach the audit trail each minute. */
const REJECTION_AUDITS_PER_MINUTE = 30;

/**
 * The audit of refused uploads. A rejection is written after the response is on its way (so its
 * latency says nothing about the source), only for sources that exist, and at most
 * REJECTION_AUDITS_PER_MINUTE per source and reason: a client without a valid token cannot turn
 * requests into unbounded disk writes. What the cap holds back is counted into the next
 * record's `suppressed`.
 */
export class RejectionAudit {
  private limiter = new RateLimiter();
  private suppressed = new Map<string, number>();
  /** Errors already recorded: the domain's guard and the HTTP admission may both see one. */
  private recorded = new WeakSet<AppError>();

  constructor(private deps: Pick<Deps, 'db' | 'newId' | 'now'>) {}

  /** Runs `fn` (sync or async); an AppError it throws is recorded, then rethrown. */
  guard<T>(sourceId: string, fn: () => T): T {
    try {
      const r = fn();
      if (r instanceof Promise) return r.catch((e) => (this.record(sourceId, e), Promise.reject(e))) as T;
      return r;
    } catch (e) {
      this.record(sourceId, e);
      throw e;
    }
  }

  /** Records a rejection as `upload_rejected` (or `upload_rate_limited`) with its code; other errors are not client mistakes and are ignored here. */
  record(sourceId: string, e: unknown): void {
    if (!(e instanceof AppError) || this.recorded.has(e)) return;
    this.recorded.add(e);
    setImmediate(() => this.write(sourceId, e));
  }

  private write(sourceId: string, e: AppError): void {
    const { db, newId, now } = this.deps;
    if (!db.open || !getSourceRow(db, sourceId)) return;
    const key = `${sourceId}\u0000${e.code}`;
    if (this.limiter.take(key, { burst: REJECTION_AUDITS_PER_MINUTE, window_ms: 60_000 }, now()) > 0) {
      this.suppressed.set(key, (this.suppressed.get(key) ?? 0) + 1);
      return;
    }
    const suppressed = this.suppressed.get(key) ?? 0;
    this.suppressed.delete(key);
    const event = e.code === 'rate_limited' ? 'upload_rate_limited' : 'upload_rejected';
    const detail: Record<string, unknown> = { reason: kheishReason(e), code: e.code, ...(suppressed ? { suppressed } : {}) };
    if (e.retryAfterSeconds !== undefined) detail.retry_after_ms = e.retryAfterSeconds * 1000;
    try {
      db.transaction(() => recordAudit(db, newId, now(), event, { source_id: sourceId, detail }))();
    } catch {
      // Deferred, so nothing above would catch it: a failed write (a full disk) must not take
      // the daemon down. The rejection is counted into the next record's `suppressed` instead.
      this.suppressed.set(key, suppressed + 1);
    }
  }
}

/** Kheish's rejection reason for an error: its own when the error names one, else by code (ours for codes Kheish lacks). */
export function kheishReason(e: AppError): string {
  if (e.reason) return e.reason;
  switch (e.code) {
    case 'unauthorized':
      return 'missing_or_invalid_token';
    case 'forbidden':
      return 'source_not_active';
    case 'media_mismatch':
    case 'unsupported_media_type':
      return 'unsupported_media_type';
    case 'bad_request':
    case 'validation_failed':
      return 'invalid_request';
    default:
      return e.code;
  }
}
