import type { StagedBlob } from '../assets/blob-store.js';
import { listAudit, type AuditRecordView } from '../audit/repo.js';
import type { Deps } from '../deps.js';
import { notFound } from '../errors.js';
import type { Listing } from '../pagination.js';
import type { SourceRow } from '../sources/repo.js';
import type { SourceService } from '../sources/service.js';
import { IngestAdmission } from './admission.js';
import { deleteObservation } from './delete.js';
import type { ObservationHooks } from './hooks.js';
import type { IngestResult } from './idempotency.js';
import { ObservationIngest } from './ingest.js';
import { RejectionAudit } from './rejections.js';
import { getObservationRow, listObservations, toObservationView } from './repo.js';
import type { ObservationFilter, ObservationView, UploadFields } from './schemas.js';

export type { Eviction, ObservationHooks } from './hooks.js';
export type { IngestResult } from './idempotency.js';

/**
 * Uploads, reads and deletes of observations: one front over admission (`admission.ts`), ingest
 * (`ingest.ts`, `commit.ts`, `idempotency.ts`) and deletion (`delete.ts`), which share one
 * rejection audit. No HTTP here: routes, the CLI and tests call it.
 */
export class ObservationService {
  private rejections: RejectionAudit;
  private admission: IngestAdmission;
  private ingestion: ObservationIngest;

  constructor(
    private deps: Deps,
    sources: SourceService,
    private hooks: ObservationHooks,
  ) {
    this.rejections = new RejectionAudit(deps);
    this.admission = new IngestAdmission(deps, sources, this.rejections);
    this.ingestion = new ObservationIngest(deps, this.rejections, hooks);
  }

  /** See `IngestAdmission.admit`: unauthorized, forbidden, rate_limited, insufficient_storage, payload_too_large. */
  admit(sourceId: string, token: string | undefined, declaredBytes: number | undefined, maxBytes: number): SourceRow {
    return this.admission.admit(sourceId, token, declaredBytes, maxBytes);
  }

  /** See `IngestAdmission.takeRateToken`; rate_limited when no token is left. */
  takeRateToken(source: SourceRow): void {
    this.admission.takeRateToken(source);
  }

  /** See `IngestAdmission.assertDiskFloor`; insufficient_storage. */
  assertDiskFloor(): void {
    this.admission.assertDiskFloor();
  }

  /** See `ObservationIngest.ingest`: stores one staged upload, or replays the stored one. */
  ingest(
    source: SourceRow,
    fields: UploadFields,
    staged: StagedBlob,
    within?: (observation: ObservationView) => void,
  ): Promise<IngestResult> {
    return this.ingestion.ingest(source, fields, staged, within);
  }

  /** See `ObservationIngest.replayOf`; undefined when the key is unused, idempotency_conflict. */
  replayOf(source: SourceRow, fields: UploadFields & { media_type: string }, contentSha256: string): IngestResult | undefined {
    return this.ingestion.replayOf(source, fields, contentSha256);
  }

  /** Reads one observation; not_found if missing. */
  get(id: string): ObservationView {
    const row = getObservationRow(this.deps.db, id);
    if (!row) throw notFound(`observation "${id}"`);
    return toObservationView(row);
  }

  /** The observations matching a filter, as keyset pages (see `Listing`). */
  list(q: ObservationFilter) {
    return listObservations(this.deps.db, q);
  }

  /** The audit trail (newest first) matching a filter, as keyset pages. */
  audit(q: { source_id?: string; event?: string }): Listing<AuditRecordView> {
    return listAudit(this.deps.db, q);
  }

  /** Erases an observation now, and every blob nothing else references; not_found if missing. */
  delete(id: string): void {
    deleteObservation(this.deps, this.hooks, id);
  }

  /** Records a rejection that happened while reading the body (size, base64, schema). */
  recordRejection(sourceId: string, e: unknown): void {
    this.rejections.record(sourceId, e);
  }
}
