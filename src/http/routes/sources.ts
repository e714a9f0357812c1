import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import {
  revokeTokenSchema,
  rotateTokenSchema,
  sourceListQuerySchema,
  sourcePatchSchema,
  sourceUpsertSchema,
  sourceViewSchema,
} from '../../sources/schemas.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { renderList } from '../list.js';
import { doc, listOf } from '../openapi.js';
import { parseJsonBody, parseQuery, parseWith, pathId, readOptionalJsonBody } from '../validate.js';

/** `/v1/observation-sources`: admin management of sources and their tokens. */
export function sourceRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const limit = config.limits.max_admin_body_bytes;
  const sources = services.sources;

  app.get(
    '/',
    describeRoute(
      doc({
        summary: 'List sources (by id; `query` matches id or display name)',
        auth: 'reader',
        query: sourceListQuerySchema,
        response: listOf(sourceViewSchema),
      }),
    ),
    auth('read'),
    (c) => {
      const q = parseQuery(c, sourceListQuerySchema);
      return renderList(c, q, sources.list({ query: q.query }));
    },
  );

  app.post(
    '/',
    describeRoute(
      doc({
        summary:
          "Create or update a source. Kheish's flat ingest_rate_limit_window_ms/_burst and our ingest_rate_limit object are both accepted; the object wins when both are sent",
        auth: 'admin',
        body: sourceUpsertSchema,
        response: sourceViewSchema,
        status: 201,
      }),
    ),
    auth('write'),
    async (c) => {
      const input = await parseJsonBody(c, sourceUpsertSchema, limit);
      const { source, upload_token, created } = sources.upsert(input);
      c.header('location', `/v1/observation-sources/${source.source_id}`);
      return c.json(upload_token ? { ...source, upload_token } : source, created ? 201 : 200);
    },
  );

  app.get('/:source_id', describeRoute(doc({ summary: 'Get a source', auth: 'reader', response: sourceViewSchema })), auth('read'), (c) =>
    c.json(sources.get(pathId(c, 'source_id', 'observation source'))),
  );

  app.patch(
    '/:source_id',
    describeRoute(doc({ summary: 'Update a source', auth: 'admin', body: sourcePatchSchema, response: sourceViewSchema })),
    auth('write'),
    async (c) => {
      const id = pathId(c, 'source_id', 'observation source');
      return c.json(sources.patch(id, await parseJsonBody(c, sourcePatchSchema, limit)));
    },
  );

  app.delete(
    '/:source_id',
    describeRoute(doc({ summary: 'Delete a source, its observations and unreferenced blobs', auth: 'admin', status: 204 })),
    auth('write'),
    (c) => {
      sources.delete(pathId(c, 'source_id', 'observation source'));
      return c.body(null, 204);
    },
  );

  app.post(
    '/:source_id/rotate-token',
    describeRoute(
      doc({ summary: 'Rotate the upload token with a grace period', auth: 'admin', body: rotateTokenSchema, response: sourceViewSchema }),
    ),
    auth('write'),
    async (c) => {
      const id = pathId(c, 'source_id', 'observation source');
      const input = parseWith(rotateTokenSchema, await readOptionalJsonBody(c, limit));
      const { source, upload_token } = sources.rotateToken(id, input);
      return c.json(upload_token ? { ...source, upload_token } : source);
    },
  );

  app.post(
    '/:source_id/revoke-token',
    describeRoute(
      doc({
        summary: 'Revoke every upload token of a source (`{}` or `{reason}`)',
        auth: 'admin',
        body: revokeTokenSchema,
        response: sourceViewSchema,
      }),
    ),
    auth('write'),
    async (c) => {
      const id = pathId(c, 'source_id', 'observation source');
      const input = parseWith(revokeTokenSchema, await readOptionalJsonBody(c, limit));
      return c.json(sources.revokeToken(id, input.reason));
    },
  );

  return app;
}
