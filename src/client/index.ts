/**
 * The typed observd client (`observd/client`): every route, with request and view types taken
 * from the daemon's own zod schemas. Runs anywhere `fetch` does (Node 20+; `uploadFile` needs Node).
 */
import type { z } from 'zod';
import type { auditQuerySchema } from '../audit/repo.js';
import type {
  agentViewSchema,
  alertViewSchema,
  heartbeatRequestSchema,
  heartbeatResponseSchema,
  provisionRequestSchema,
  provisionResponseSchema,
} from '../capture/schemas.js';
import type { derivationListQuerySchema, derivationRequestSchema, derivationViewSchema } from '../derivations/schemas.js';
import type { completeRunSchema, materializationRequestSchema, runListQuerySchema, runViewSchema } from '../materialization/schemas.js';
import type { runtimeSettingsViewSchema } from '../materialization/runtime.js';
import type {
  batchResultSchema,
  jsonUploadSchema,
  multipartObservationSchema,
  observationListQuerySchema,
  observationViewSchema,
} from '../observations/schemas.js';
import type {
  rotateTokenSchema,
  sourceListQuerySchema,
  sourcePatchSchema,
  sourceUpsertSchema,
  sourceViewSchema,
} from '../sources/schemas.js';
import type { receivedUploadSchema, uploadUrlSchema } from '../uploads/schemas.js';
import { Transport, type CallOptions, type TransportOptions } from './transport.js';

export { ObservdError, isRetryable, type FieldProblem, type Problem } from './errors.js';
export type { TransportOptions as ClientOptions } from './transport.js';

export type SourceUpsert = z.input<typeof sourceUpsertSchema>;
export type SourcePatch = z.input<typeof sourcePatchSchema>;
export type SourceView = z.output<typeof sourceViewSchema>;
export type SourceWithToken = SourceView & { upload_token?: string };
export type RotateToken = z.input<typeof rotateTokenSchema>;
/** A list route's query as a caller writes it: its filters, with numbers where numbers are meant; `listAll` pages. */
type ListQuery<S extends z.ZodType> = { [K in Exclude<keyof z.input<S>, 'page' | 'cursor'>]?: z.input<S>[K] | number };
export type SourceListQuery = ListQuery<typeof sourceListQuerySchema>;
export type JsonUpload = z.input<typeof jsonUploadSchema>;
/** Upload fields without the content (multipart and signed uploads). */
export type UploadFields = z.input<typeof multipartObservationSchema>;
export type ObservationView = z.output<typeof observationViewSchema>;
export type ObservationListQuery = ListQuery<typeof observationListQuerySchema>;
export type BatchResult = z.output<typeof batchResultSchema>;
export type UploadUrl = z.output<typeof uploadUrlSchema>;
export type ReceivedUpload = z.output<typeof receivedUploadSchema>;
export type DerivationRequest = z.input<typeof derivationRequestSchema>;
export type DerivationView = z.output<typeof derivationViewSchema>;
export type DerivationListQuery = ListQuery<typeof derivationListQuerySchema>;
export type MaterializationRequest = z.input<typeof materializationRequestSchema>;
export type RunView = z.output<typeof runViewSchema>;
export type RunListQuery = ListQuery<typeof runListQuerySchema>;
export type CompleteRun = z.input<typeof completeRunSchema>;
export type RuntimeSettingsView = z.output<typeof runtimeSettingsViewSchema>;
export type AuditQuery = ListQuery<typeof auditQuerySchema>;
export type ProvisionRequest = z.input<typeof provisionRequestSchema>;
export type ProvisionResponse = z.output<typeof provisionResponseSchema>;
export type CaptureAgentView = z.output<typeof agentViewSchema>;
export type CaptureAlertView = z.output<typeof alertViewSchema>;
export type HeartbeatRequest = z.input<typeof heartbeatRequestSchema>;
export type HeartbeatResponse = z.output<typeof heartbeatResponseSchema>;
/** A result an upload gave: the observation, and whether it was a replay of an earlier one. */
export interface UploadResult {
  observation: ObservationView;
  replayed: boolean;
}
/** Kheish's ListPage envelope (`page=true` or `cursor` on a list route). */
export interface ListPage<T> {
  items: T[];
  pagination: { limit: number; total_count: number; has_more: boolean; next_cursor?: string | null; order: string };
}
/** One event of `GET /v1/events`. */
export interface ObservdEvent {
  id: string;
  type: string;
  data: { event_id: string; type: string; source_id: string | null; at_ms: number; data: Record<string, unknown> };
}

type Query = CallOptions['query'];
const seg = (s: string) => encodeURIComponent(s);

/** The client. `token` is the admin (or read-only) token; uploads and heartbeats take their own. */
export class ObservdClient {
  readonly http: Transport;

  constructor(opts: TransportOptions) {
    this.http = new Transport(opts);
  }

  /**
   * Every row of a list route, page after page (`page=true`, then `cursor`), as an async
   * iterator: memory stays bounded by one page whatever the listing holds.
   */
  async *listAll<T>(path: string, query: Query = {}): AsyncGenerator<T> {
    const { cursor: _ignored, page: _page, ...filters } = query ?? {};
    let cursor: string | undefined;
    for (;;) {
      const body = await this.http.json<ListPage<T> | T[]>(path, { query: { ...filters, ...(cursor ? { cursor } : { page: true }) } });
      // A bare array is a list that is not paged: it is all there is.
      if (Array.isArray(body)) return yield* body;
      yield* body.items;
      cursor = body.pagination.next_cursor ?? undefined;
      if (!body.pagination.has_more || !cursor) return;
    }
  }

  // Sources
  listSources = (q: SourceListQuery = {}) => this.listAll<SourceView>('/v1/observation-sources', q as Query);
  createSource = (body: SourceUpsert) => this.http.json<SourceWithToken>('/v1/observation-sources', { method: 'POST', json: body });
  getSource = (id: string) => this.http.json<SourceView>(`/v1/observation-sources/${seg(id)}`);
  patchSource = (id: string, body: SourcePatch) =>
    this.http.json<SourceView>(`/v1/observation-sources/${seg(id)}`, { method: 'PATCH', json: body });
  deleteSource = (id: string) => this.http.json<void>(`/v1/observation-sources/${seg(id)}`, { method: 'DELETE' });
  rotateToken = (id: string, body: RotateToken = {}) =>
    this.http.json<SourceWithToken>(`/v1/observation-sources/${seg(id)}/rotate-token`, { method: 'POST', json: body });
  revokeToken = (id: string, reason?: string) =>
    this.http.json<SourceView>(`/v1/observation-sources/${seg(id)}/revoke-token`, {
      method: 'POST',
      json: reason === undefined ? {} : { reason },
    });

  // Uploads (the source's upload token). Each is retried with the same idempotency key, so a
  // retry after a lost answer is a replay, never a second observation.
  /** A JSON upload (`upload.content_base64`, or `upload.upload_id` of a signed upload). */
  async upload(sourceId: string, uploadToken: string, body: JsonUpload, signal?: AbortSignal): Promise<UploadResult> {
    return this.uploadResult(
      await this.http.raw(`/v1/observation-sources/${seg(sourceId)}/observations`, {
        method: 'POST',
        json: body,
        bearer: uploadToken,
        retry: 'safe',
        signal,
      }),
    );
  }

  /** A multipart upload streamed from a file (never read whole into memory). */
  async uploadFile(
    sourceId: string,
    uploadToken: string,
    path: string,
    fields: UploadFields & { upload: { media_type: string; file_name?: string } },
    signal?: AbortSignal,
  ) {
    // Through getBuiltinModule, not an import: the client also bundles for browsers (the console).
    const fs = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:fs') as
      | typeof import('node:fs')
      | undefined;
    if (!fs) throw new Error('uploadFile reads a file from disk and needs Node.js 20.16 or later');
    const { openAsBlob } = fs;
    const fileName = fields.upload.file_name ?? path.split(/[\\/]/).pop()!;
    const res = await this.http.raw(`/v1/observation-sources/${seg(sourceId)}/observations`, {
      method: 'POST',
      bearer: uploadToken,
      retry: 'safe',
      signal,
      body: async () => {
        const form = new FormData();
        form.set('observation', JSON.stringify({ ...fields, upload: { ...fields.upload, file_name: fileName } }));
        form.set('file', await openAsBlob(path, { type: fields.upload.media_type }), fileName);
        return form;
      },
    });
    return this.uploadResult(res);
  }

  /** A signed upload: mint an upload URL, PUT the bytes (no token), then create the observation. */
  async uploadSigned(
    sourceId: string,
    uploadToken: string,
    bytes: () => Promise<BodyInit | Uint8Array> | BodyInit | Uint8Array,
    fields: UploadFields & { upload: { media_type: string; file_name: string } },
  ): Promise<UploadResult> {
    const { media_type, file_name } = fields.upload;
    const url = await this.http.json<UploadUrl>(`/v1/observation-sources/${seg(sourceId)}/upload-urls`, {
      method: 'POST',
      json: { media_type, file_name },
      bearer: uploadToken,
      retry: 'safe',
    });
    await this.http.json<ReceivedUpload>('', {
      method: 'PUT',
      url: url.upload_url,
      body: async () => {
        const b = await bytes();
        return (b instanceof Uint8Array ? new Blob([b as Uint8Array<ArrayBuffer>]) : b) as BodyInit;
      },
      bearer: null,
      headers: { 'content-type': media_type },
    });
    const { upload: _u, ...rest } = fields;
    return this.upload(sourceId, uploadToken, { ...rest, upload: { upload_id: url.upload_id } } as JsonUpload);
  }

  /** Up to 100 JSON uploads in one request; each item is idempotent on its own key. */
  uploadBatch = (sourceId: string, uploadToken: string, items: JsonUpload[]) =>
    this.http.json<BatchResult>(`/v1/observation-sources/${seg(sourceId)}/observations/batch`, {
      method: 'POST',
      json: { items },
      bearer: uploadToken,
      retry: 'safe',
    });

  // Observations and assets
  listObservations = (q: ObservationListQuery = {}) => this.listAll<ObservationView>('/v1/observations', q as Query);
  getObservation = (id: string) => this.http.json<ObservationView>(`/v1/observations/${seg(id)}`);
  deleteObservation = (id: string) => this.http.json<void>(`/v1/observations/${seg(id)}`, { method: 'DELETE' });
  getAsset = (id: string) => this.http.json<Record<string, unknown>>(`/v1/assets/${seg(id)}`);
  /** The asset's bytes as a Response (stream its body, or `arrayBuffer()`). */
  assetContent = (id: string) => this.http.raw(`/v1/assets/${seg(id)}/content`);
  audit = (q: AuditQuery = {}) => this.listAll<Record<string, unknown>>('/v1/observation-audit', q as Query);

  // Derivations, materialization, runs
  derive = (body: DerivationRequest, q: { wait?: boolean; force_refresh?: boolean; retry_failed?: boolean } = {}) =>
    this.http.json<DerivationView>('/v1/derivations', { method: 'POST', json: body, query: q });
  listDerivations = (q: DerivationListQuery = {}) => this.listAll<DerivationView>('/v1/derivations', q as Query);
  getDerivation = (id: string) => this.http.json<DerivationView>(`/v1/derivations/${seg(id)}`);
  /** Kheish's RuntimeSettingsView of the run submitter. */
  runtime = () => this.http.json<RuntimeSettingsView>('/v1/runtime');
  materialize = (body: MaterializationRequest) =>
    this.http.json<RunView>('/v1/observation-materializations', { method: 'POST', json: body });
  listRuns = (q: RunListQuery = {}) => this.listAll<RunView>('/v1/runs', q as Query);
  getRun = (id: string) => this.http.json<RunView>(`/v1/runs/${seg(id)}`);
  claimRun = (id: string) => this.http.json<RunView>(`/v1/runs/${seg(id)}/claim`, { method: 'POST' });
  heartbeatRun = (id: string) => this.http.json<RunView>(`/v1/runs/${seg(id)}/heartbeat`, { method: 'POST' });
  completeRun = (id: string, body: CompleteRun) => this.http.json<RunView>(`/v1/runs/${seg(id)}/complete`, { method: 'POST', json: body });

  // Capture agents
  /** Provisions a batch; the credentials in the answer are shown once (never retried: a replay is a 409). */
  provisionAgents = (body: ProvisionRequest) =>
    this.http.json<ProvisionResponse>('/v1/capture-agent-provisions', { method: 'POST', json: body });
  listAgents = () => this.listAll<CaptureAgentView>('/v1/capture-agents');
  getAgent = (machineId: string) => this.http.json<CaptureAgentView>(`/v1/capture-agents/${seg(machineId)}`);
  revokeAgent = (machineId: string, reason?: string) =>
    this.http.json<CaptureAgentView>(`/v1/capture-agents/${seg(machineId)}/revoke`, {
      method: 'POST',
      json: reason === undefined ? {} : { reason },
      retry: 'safe',
    });
  listAlerts = () => this.listAll<CaptureAlertView>('/v1/capture-alerts');
  /** A heartbeat with the agent's own token. */
  heartbeat = (machineId: string, heartbeatToken: string, body: HeartbeatRequest = {}, signal?: AbortSignal) =>
    this.http.json<HeartbeatResponse>(`/v1/capture-agents/${seg(machineId)}/heartbeat`, {
      method: 'POST',
      json: body,
      bearer: heartbeatToken,
      retry: 'safe',
      signal,
    });

  /** Server-sent events (`GET /v1/events`) as an async iterator; ends when `signal` aborts or the daemon closes the stream. */
  async *events(
    q: { types?: string[]; source_id?: string; last_event_id?: string } = {},
    signal?: AbortSignal,
  ): AsyncGenerator<ObservdEvent> {
    const res = await this.http.raw('/v1/events', {
      query: { types: q.types?.join(','), source_id: q.source_id, last_event_id: q.last_event_id },
      signal,
      retry: 'never',
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffer += value;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const fields: Record<string, string> = {};
          for (const line of buffer.slice(0, i).split('\n')) {
            const at = line.indexOf(':');
            if (at > 0) fields[line.slice(0, at)] = line.slice(at + 1).replace(/^ /, '');
          }
          buffer = buffer.slice(i + 2);
          if (fields.event && fields.data) yield { id: fields.id, type: fields.event, data: JSON.parse(fields.data) };
        }
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  private async uploadResult(res: Response): Promise<UploadResult> {
    return {
      observation: (await res.json()) as ObservationView,
      replayed: res.headers.get('idempotent-replayed') === 'true' || res.status === 200,
    };
  }
}

/** Creates a client for a daemon. */
export function createClient(opts: TransportOptions): ObservdClient {
  return new ObservdClient(opts);
}
