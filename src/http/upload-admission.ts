import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.js';
import { sourceIdSchema } from '../ids.js';
import type { ObservationService } from '../observations/service.js';
import { bearerToken, type AppEnv } from './auth.js';
import { isJsonType } from './browser-guard.js';
import { declaredLength, reserveJsonBody } from './body.js';
import type { MemoryBudget } from './memory-budget.js';

export interface UploadAdmissionOptions {
  observations: ObservationService;
  /** Body kinds the route reads; anything else is unsupported_media_type (after authentication). */
  accepts: ReadonlyArray<'json' | 'multipart'>;
  /** The largest body of each kind; a declared Content-Length over it is payload_too_large before reading. */
  maxBytes: Partial<Record<'json' | 'multipart', number>>;
  /** Reserves memory for JSON bodies (held whole while parsed) before they are read; released after the handler. */
  jsonBudget?: MemoryBudget;
}

/**
 * The one admission of every upload-token route (direct, batch and signed-URL uploads), as hono
 * writes `bodyLimit({ maxSize })`: Kheish's problem domain `observation_ingress`; the source id
 * (a malformed one is an unknown source: 401, like a wrong token, and never touches the disk);
 * the upload token (401, or 403 for a paused source); the free-disk floor (507); the body kind
 * (415); a declared size over the limit (413); the rate limit (429); the JSON memory budget; and
 * the rejection audit of whatever this or the handler refuses. The handler finds the source in
 * `c.get('upload')`.
 */
export function uploadAdmission(opts: UploadAdmissionOptions): MiddlewareHandler<AppEnv> {
  const { observations } = opts;
  return async (c, next) => {
    c.set('problemDomain', 'observation_ingress');
    const sourceId = c.req.param('source_id') ?? '';
    if (!sourceIdSchema.safeParse(sourceId).success) throw new AppError('unauthorized', 'missing or invalid upload token for this source');
    const token = bearerToken(c.req.header('authorization'));
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    const kind = type.startsWith('multipart/form-data') ? 'multipart' : isJsonType(type) ? 'json' : undefined;
    if (!kind || !opts.accepts.includes(kind)) {
      // Authenticate first: an unauthenticated caller learns nothing about accepted shapes.
      observations.admit(sourceId, token, undefined, Infinity);
      const e = new AppError(
        'unsupported_media_type',
        `send ${opts.accepts.map((k) => (k === 'json' ? 'application/json' : 'multipart/form-data')).join(' or ')}`,
      );
      observations.recordRejection(sourceId, e);
      throw e;
    }
    const limit = opts.maxBytes[kind] ?? Infinity;
    const source = observations.admit(sourceId, token, declaredLength(c.req.raw), limit);
    let release: (() => void) | undefined;
    try {
      if (kind === 'json' && opts.jsonBudget) release = await reserveJsonBody(c.req.raw, limit, opts.jsonBudget);
      c.set('upload', { source, kind });
      await next();
    } catch (e) {
      observations.recordRejection(sourceId, e);
      throw e;
    } finally {
      release?.();
    }
    // hono turns a handler's throw into the error response before control returns here.
    if (c.error) observations.recordRejection(sourceId, c.error);
  };
}
