import { Hono } from 'hono';
import { routePath } from 'hono/route';
import type { BlobStore } from '../assets/blob-store.js';
import type { CaptureAgentService } from '../capture/service.js';
import type { Config } from '../config/schema.js';
import type { Db } from '../db/open.js';
import type { EventHub } from '../events/hub.js';
import type { DerivationService } from '../derivations/service.js';
import { AppError, isDiskFull } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AssetService } from '../assets/service.js';
import type { MaterializationService } from '../materialization/service.js';
import type { ObservationService } from '../observations/service.js';
import type { SearchService } from '../search/service.js';
import type { SourceService } from '../sources/service.js';
import type { SignedUploadService } from '../uploads/service.js';
import type { UrlImportService } from '../uploads/url-import.js';
import { adminAuth, type AppEnv } from './auth.js';
import { browserGuard } from './browser-guard.js';
import { MemoryBudget } from './memory-budget.js';
import type { Metrics } from './metrics.js';
import { describeRoute } from 'hono-openapi';
import { DOCS_HTML, buildOpenApi, doc } from './openapi.js';
import { problemResponse, toProblem } from './problem.js';
import { assetRoutes } from './routes/assets.js';
import { captureRoutes } from './routes/capture.js';
import { consoleRoutes } from './routes/console.js';
import { derivationRoutes } from './routes/derivations.js';
import { eventRoutes } from './routes/events.js';
import { mcpRoutes } from './routes/mcp.js';
import { observationRoutes } from './routes/observations.js';
import { runRoutes } from './routes/runs.js';
import { searchRoutes } from './routes/search.js';
import { sourceRoutes } from './routes/sources.js';
import { signedUploadRoutes, uploadUrlRoutes } from './routes/signed-uploads.js';
import { uploadBatchRoutes } from './routes/upload-batch.js';
import { observationUploadRoutes } from './routes/uploads.js';

export interface Services {
  /** For the CLI, metrics and readiness only: routes go through the services below. */
  db: Db;
  blobs: BlobStore;
  config: Config;
  sources: SourceService;
  /** Direct observation uploads (JSON/multipart/batch), reads, deletes and the audit trail. */
  observations: ObservationService;
  /** Asset metadata and content, with the rule of who may read sensitive bytes. */
  assets: AssetService;
  /** Signed upload URLs: minting them, the PUT of their bytes, and their use by an observation. */
  signedUploads: SignedUploadService;
  /** Observations from a URL observd fetches itself (`upload.url`). */
  urlImports: UrlImportService;
  /** Live readers of the event outbox (SSE). */
  eventStreams: EventHub;
  derivations: DerivationService;
  /** Materializations into runs, the runs API and the run submitter (`GET /v1/runtime`). */
  materializations: MaterializationService;
  /** Full-text search over canonical text. */
  search: SearchService;
  /** Capture agents: provisioning, heartbeats, alerts, revocation. */
  captureAgents: CaptureAgentService;
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

  // Before routing, so every route (and any added later) lives within the browser-safety rules.
  const publicHost = config.uploads.public_base_url ? [new URL(config.uploads.public_base_url).host] : [];
  app.use(
    '*',
    browserGuard({
      allowedHosts: [...config.http.allowed_hosts, ...publicHost],
      allowedOrigins: config.http.allowed_origins,
      // Signed upload PUTs take raw bytes; upload-token routes refuse other types in uploadAdmission.
      ownBodyAdmission: (path) => path.startsWith('/v1/uploads/') || UPLOAD_TOKEN_ROUTE.test(path),
    }),
  );

  // Every body (JSON uploads and batches, multipart uploads, admin JSON) must keep this pace, so a
  // dribbling client cannot hold the memory budget, a temp file or a connection for long.
  const bodyRate = { bytesPerSecond: config.limits.json_body_min_bytes_per_s, graceMs: config.limits.json_body_rate_grace_ms };
  app.use('*', async (c, next) => {
    c.set('bodyRate', bodyRate);
    await next();
  });

  // The server resolves `.`/`..` (and `%2E%2E`) segments before routing, so `/sources/..` would
  // silently become another route; refuse them from the raw request target instead.
  app.use('*', async (c, next) => {
    const target = (c.env as { incoming?: { url?: string } } | undefined)?.incoming?.url;
    if (target && hasDotSegment(target)) throw new AppError('bad_request', 'path segments "." and ".." are not allowed');
    await next();
  });

  app.onError((err, c) => {
    if (isDiskFull(err)) logger.warn({ err, path: c.req.path }, 'disk full: request refused with 507');
    else if (!(err instanceof AppError)) logger.error({ err, path: c.req.path }, 'unhandled error');
    return toProblem(err, c.get('problemDomain'));
  });
  app.notFound((c) => problemResponse('not_found', `no route for ${c.req.method} ${c.req.path}`));

  app.get('/livez', describeRoute(doc({ summary: 'Liveness', auth: 'none' })), (c) => c.json({ status: 'ok' }));
  app.get('/readyz', describeRoute(doc({ summary: 'Readiness (503 while draining)', auth: 'none' })), (c) => {
    try {
      services.db.prepare('SELECT 1').get();
    } catch {
      return c.json({ status: 'unavailable', reason: 'database' }, 503);
    }
    return ready() ? c.json({ status: 'ready' }) : c.json({ status: 'draining' }, 503);
  });
  app.get('/metrics', describeRoute(doc({ summary: 'Prometheus metrics', auth: 'none', responseMedia: 'text/plain' })), async (c) =>
    c.text(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  );
  // Generated once, on first request, from the routes mounted below and their describeRoute docs.
  let openapi: ReturnType<typeof buildOpenApi> | undefined;
  app.get('/openapi.json', describeRoute(doc({ summary: 'This OpenAPI document, generated from the routes', auth: 'none' })), async (c) =>
    c.json(await (openapi ??= buildOpenApi(app, version))),
  );
  app.get('/docs', describeRoute(doc({ summary: 'API reference page (works offline)', auth: 'none', responseMedia: 'text/html' })), (c) =>
    c.html(DOCS_HTML),
  );
  app.get('/console/', describeRoute(doc({ summary: 'Redirects to the web console at /console', auth: 'none', status: 301 })), (c) =>
    c.redirect('/console', 301),
  );
  app.route('/console', consoleRoutes());

  app.route('/v1/observation-sources', observationUploadRoutes(deps));
  app.route('/v1/observation-sources', uploadBatchRoutes(deps));
  app.route('/v1/observation-sources', uploadUrlRoutes(deps));
  app.route('/v1/uploads', signedUploadRoutes(deps));
  app.route('/v1/events', eventRoutes(deps));
  app.route('/v1/observation-sources', sourceRoutes(deps));
  app.route('/v1', observationRoutes(deps));
  app.route('/v1/assets', assetRoutes(deps));
  app.route('/v1/derivations', derivationRoutes(deps));
  app.route('/v1', runRoutes(deps));
  app.route('/v1/search', searchRoutes(deps));
  app.route('/v1', captureRoutes(deps));
  app.route(
    '/mcp',
    mcpRoutes(deps, async (req, env) => app.fetch(req, env)),
  );
  return app;
}

/** The routes behind `uploadAdmission` (direct, batch and signed-URL uploads). */
const UPLOAD_TOKEN_ROUTE = /^\/v1\/observation-sources\/[^/]+\/(?:observations(?:\/batch)?|upload-urls)\/?$/;

/** True when a raw request target has a `.` or `..` path segment, percent-encoded or not. */
function hasDotSegment(target: string): boolean {
  const path = target.split(/[?#]/, 1)[0];
  return path.split('/').some((seg) => /^(?:\.|%2e){1,2}$/i.test(seg));
}
