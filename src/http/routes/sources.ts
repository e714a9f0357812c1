import { Hono } from 'hono';
import { sourceIdSchema } from '../../ids.js';
import {
  rotateTokenSchema,
  sourceListQuerySchema,
  sourcePatchSchema,
  sourceUpsertSchema,
} from '../../sources/schemas.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { parseJsonBody, parseParam, parseQuery } from '../validate.js';

/** `/v1/observation-sources`: admin management of sources and their tokens. */
export function sourceRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const limit = config.limits.max_admin_body_bytes;
  const sources = services.sources;

  app.get('/', auth('read'), (c) => c.json(sources.list(parseQuery(c, sourceListQuerySchema))));

  app.post('/', auth('write'), async (c) => {
    const input = await parseJsonBody(c, sourceUpsertSchema, limit);
    const { source, upload_token, created } = sources.upsert(input);
    c.header('location', `/v1/observation-sources/${source.source_id}`);
    return c.json(upload_token ? { ...source, upload_token } : source, created ? 201 : 200);
  });

  app.get('/:source_id', auth('read'), (c) => c.json(sources.get(parseParam(c, 'source_id', sourceIdSchema))));

  app.patch('/:source_id', auth('write'), async (c) => {
    const id = parseParam(c, 'source_id', sourceIdSchema);
    return c.json(sources.patch(id, await parseJsonBody(c, sourcePatchSchema, limit)));
  });

  app.delete('/:source_id', auth('write'), (c) => {
    sources.delete(parseParam(c, 'source_id', sourceIdSchema));
    return c.body(null, 204);
  });

  app.post('/:source_id/rotate-token', auth('write'), async (c) => {
    const id = parseParam(c, 'source_id', sourceIdSchema);
    const hasBody = (c.req.header('content-length') ?? '0') !== '0' || c.req.header('transfer-encoding');
    const input = hasBody ? await parseJsonBody(c, rotateTokenSchema, limit) : rotateTokenSchema.parse({});
    const { source, upload_token } = sources.rotateToken(id, input);
    return c.json(upload_token ? { ...source, upload_token } : source);
  });

  app.post('/:source_id/revoke-token', auth('write'), (c) =>
    c.json(sources.revokeToken(parseParam(c, 'source_id', sourceIdSchema))),
  );

  return app;
}
