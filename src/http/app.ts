import { Hono } from 'hono';
import { routePath } from 'hono/route';
import type { BlobStore } from '../assets/blob-store.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../db/open.js';
import type { EventHub } from '../events/hub.js';
import type { DerivationService } from '../derivations/service.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MaterializationService } from '../materialization/service.js';
import type { ObservationService } from '../observations/service.js';
import type { SourceService } from '../sources/service.js';
import type { UploadService } from '../uploads/service.js';
import { adminAuth, type AppEnv } from './auth.js';
import { MemoryBudget } from './memory-budget.js';
import type { Metrics } from './metrics.js';
import { DOCS_HTML, buildOpenApi } from './openapi.js';
import { problemResponse, toProblem } from './problem.js';
import { assetRoutes } from './routes/assets.js';
import { derivationRoutes } from './routes/derivations.js';
import { eventRoutes } from './routes/events.js';
import { mcpRoutes } from './routes/mcp.js';
import { observationRoutes } from './routes/observations.js';
import { runRoutes } from './routes/runs.js';
import { sourceRoutes } from './routes/sources.js';
import { signedUploadRoutes, uploadUrlRoutes } from './routes/signed-uploads.js';
import { uploadBatchRoutes } from './routes/upload-batch.js';
import { uploadRoutes } from './routes/uploads.js';

export interface Services {
  db: Db;
  blobs: BlobStore;
  config: Config;
  sources: SourceService;
  observations: ObservationService;
  /** Signed uploads (upload URLs, their PUTs, and their use by an observation). */
  uploads: UploadService;
  /** Live readers of the event outbox (SSE). */
  eventStreams: EventHub;
  derivations: DerivationService;
  runs: MaterializationService;
}

export interface RouteDeps {
  services: Services;
  config: Config;
  auth: ReturnType<typeof adminAuth>;
  logger: Logger;
  /** Bounds the memory of JSON bodies held at once (base64 uploads, batches). */
  jsonBudget: MemoryBudget;
}

export interface AppOptions {
  services: Services;
  logger: Logger;
  metrics: Metrics;
  version: string;
  /** Reports whether the daemon is ready for traffic (false while draining). */
  ready: () => boolean;
}

/** Builds the HTTP adapter over the domain services: routes, auth, problem+json errors, logs, metrics. */
export function createApp({ services, logger, metrics, version, ready }: AppOptions) {
  const { config } = services;
  const auth = adminAuth({ adminToken: config.admin_token, readonlyToken: config.readonly_token });
  const jsonBudget = new MemoryBudget(config.limits.json_body_memory_bytes);
  const deps: RouteDeps = { services, config, auth, logger, jsonBudget };
  const app = new Hono<AppEnv>();

  app.use('*', async (c, next) => {
    const start = performance.now();
    await next();
    const route = routePath(c) || 'unmatched';
    const ms = performance.now() - start;
    metrics.requests.inc({ method: c.req.method, route, status: c.res.status });
    metrics.duration.observe({ method: c.req.method, route }, ms / 1000);
    logger.info({ method: c.req.method, path: c.req.path, route, status: c.res.status, ms: Math.round(ms * 10) / 10 }, 'request');
  });

  // The server resolves `.`/`..` (and `%2E%2E`) segments before routing, so `/sources/..` would
  // silently become another route; refuse them from the raw request target instead.
  app.use('*', async (c, next) => {
    const target = (c.env as { incoming?: { url?: string } } | undefined)?.incoming?.url;
    if (target && hasDotSegment(target)) throw new AppError('bad_request', 'path segments "." and ".." are not allowed');
    await next();
  });

  app.onError((err, c) => {
    if (!(err instanceof AppError)) logger.error({ err, path: c.req.path }, 'unhandled error');
    return toProblem(err);
  });
  app.notFound((c) => problemResponse('not_found', `no route for ${c.req.method} ${c.req.path}`));

  app.get('/livez', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    try {
      services.db.prepare('SELECT 1').get();
    } catch {
      return c.json({ status: 'unavailable', reason: 'database' }, 503);
    }
    return ready() ? c.json({ status: 'ready' }) : c.json({ status: 'draining' }, 503);
  });
  app.get('/metrics', async (c) => c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
  const openapi = buildOpenApi(version);
  app.get('/openapi.json', (c) => c.json(openapi));
  app.get('/docs', (c) => c.html(DOCS_HTML));

  app.route('/v1/observation-sources', uploadRoutes(deps));
  app.route('/v1/observation-sources', uploadBatchRoutes(deps));
  app.route('/v1/observation-sources', uploadUrlRoutes(deps));
  app.route('/v1/uploads', signedUploadRoutes(deps));
  app.route('/v1/events', eventRoutes(deps));
  app.route('/v1/observation-sources', sourceRoutes(deps));
  app.route('/v1', observationRoutes(deps));
  app.route('/v1/assets', assetRoutes(deps));
  app.route('/v1/derivations', derivationRoutes(deps));
  app.route('/v1', runRoutes(deps));
  app.route('/mcp', mcpRoutes(deps, async (req) => app.fetch(req)));
  return app;
}

/** True when a raw request target has a `.` or `..` path segment, percent-encoded or not. */
function hasDotSegment(target: string): boolean {
  const path = target.split(/[?#]/, 1)[0];
  return path.split('/').some((seg) => /^(?:\.|%2e){1,2}$/i.test(seg));
}
