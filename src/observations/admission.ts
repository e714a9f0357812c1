import { statfsSync } from 'node:fs';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import type { SourceRow } from '../sources/repo.js';
import type { SourceService } from '../sources/service.js';
import { RateLimiter } from './rate-limiter.js';
import type { RejectionAudit } from './rejections.js';

/** The checks an upload passes before its body is read: token, disk floor, declared size, rate limit. */
export class IngestAdmission {
  private limiter = new RateLimiter();

  constructor(
    private deps: Pick<Deps, 'now' | 'config' | 'blobs'>,
    private sources: SourceService,
    private rejections: RejectionAudit,
  ) {}

  /**
   * Everything an upload must pass before its body is read: the token (unauthorized, or
   * forbidden for a paused/disabled source), the rate limit (rate_limited), the free-disk floor
   * (insufficient_storage) and a declared size over `maxBytes` (payload_too_large).
   */
  admit(sourceId: string, token: string | undefined, declaredBytes: number | undefined, maxBytes: number): SourceRow {
    return this.rejections.guard(sourceId, () => {
      const source = this.sources.authenticateUpload(sourceId, token);
      this.assertDiskFloor();
      if (declaredBytes !== undefined && declaredBytes > maxBytes) {
        throw new AppError('payload_too_large', `request body of ${declaredBytes} bytes exceeds the limit of ${maxBytes}`);
      }
      this.takeRateToken(source);
      return source;
    });
  }

  /**
   * Takes one token from the source's ingest rate limit (`admit` takes the first; a batch takes
   * one more per further item); rate_limited, with the wait, when none is left.
   */
  takeRateToken(source: SourceRow): void {
    if (!source.ingest_rate_limit) return;
    const wait = this.limiter.take(source.source_id, JSON.parse(source.ingest_rate_limit), this.deps.now());
    if (wait > 0) {
      throw new AppError('rate_limited', `ingest rate limit of source "${source.source_id}" reached`, {
        retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)),
      });
    }
  }

  /** Refuses writes when the data directory's free space is below the configured floor; insufficient_storage. */
  assertDiskFloor(): void {
    const floor = this.deps.config.retention.min_free_bytes;
    if (floor <= 0) return;
    const s = statfsSync(this.deps.blobs.dataDir);
    const free = Number(s.bavail) * Number(s.bsize);
    if (free < floor) {
      throw new AppError('insufficient_storage', `free disk space is below the configured floor of ${floor} bytes`);
    }
  }
}
