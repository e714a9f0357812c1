import { Hono } from 'hono';
import { sourceIdSchema } from '../../ids.js';
import { uploadUrlRequestSchema } from '../../observations/schemas.js';
import type { RouteDeps } from '../app.js';
import { bearerToken, type AppEnv } from '../auth.js';
import { declaredLength, readLimitedBytes } from '../body.js';
import { parseJson, parseParam, parseWith } from '../validate.js';

/** `POST /v1/observation-sources/{id}/upload-urls` (upload token): mints a signed upload URL. */
export function uploadUrlRoutes({ services, config }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { observations, uploads } = services;

  app.post('/:source_id/upload-urls', async (c) => {
    const sourceId = parseParam(c, 'source_id', sourceIdSchema);
    const limit = config.limits.max_admin_body_bytes;
    const source = observations.admit(sourceId, bearerToken(c.req.header('authorization')), declaredLength(c.req.raw), limit);
    try {
      const req = parseWith(uploadUrlRequestSchema, parseJson(await readLimitedBytes(c.req.raw, limit)));
      const base = config.uploads.public_base_url ?? new URL(c.req.url).origin;
      return c.json(uploads.mint(source, req, base), 201);
    } catch (e) {
      observations.recordRejection(sourceId, e);
      throw e;
    }
  });

  return app;
}

/** `PUT /v1/uploads/{upload_id}?…&signature=…`: the raw bytes of a signed upload; the URL is the credential. */
export function signedUploadRoutes({ services }: RouteDeps) {
  const app = new Hono<AppEnv>();

  app.put('/:upload_id', async (c) => {
    const q = c.req.query();
    const received = await services.uploads.receive(
      c.req.param('upload_id'),
      { source_id: q.source_id, media_type: q.media_type, expires_at_ms: q.expires_at_ms, signature: q.signature },
      c.req.raw.body,
      declaredLength(c.req.raw),
    );
    return c.json(received, 200);
  });

  return app;
}
