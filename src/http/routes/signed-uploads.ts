import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { uploadUrlRequestSchema } from '../../observations/schemas.js';
import { receivedUploadSchema, uploadUrlQuerySchema, uploadUrlSchema } from '../../uploads/schemas.js';
import type { RouteDeps } from '../app.js';
import type { AppEnv } from '../auth.js';
import { declaredLength, readLimitedBytes } from '../body.js';
import { doc } from '../openapi.js';
import { uploadAdmission } from '../upload-admission.js';
import { parseJson, parseWith } from '../validate.js';

/** `POST /v1/observation-sources/{id}/upload-urls` (upload token, behind `uploadAdmission`): mints a signed upload URL. */
export function uploadUrlRoutes({ services, config }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { observations, signedUploads } = services;
  const limit = config.limits.max_admin_body_bytes;

  app.post(
    '/:source_id/upload-urls',
    describeRoute(
      doc({
        summary: 'Mint a signed upload URL: PUT the raw bytes to it (no token), then create the observation with upload.upload_id',
        auth: 'upload',
        body: uploadUrlRequestSchema,
        response: uploadUrlSchema,
        status: 201,
      }),
    ),
    uploadAdmission({ observations, accepts: ['json'], maxBytes: { json: limit } }),
    async (c) => {
      const req = parseWith(uploadUrlRequestSchema, parseJson(await readLimitedBytes(c, limit)));
      const base = config.uploads.public_base_url ?? new URL(c.req.url).origin;
      return c.json(signedUploads.mint(c.get('upload')!.source, req, base), 201);
    },
  );

  return app;
}

/**
 * `PUT /v1/uploads/{upload_id}?…&signature=…`: the raw bytes of a signed upload URL. The URL is
 * the credential (no token), so the service checks it, the source, the disk floor and the size,
 * and audits what it refuses.
 */
export function signedUploadRoutes({ services }: RouteDeps) {
  const app = new Hono<AppEnv>();

  app.put(
    '/:upload_id',
    describeRoute(
      doc({
        summary: 'The raw bytes of a signed upload (the body is the media itself; the signed URL is the credential, single use)',
        auth: 'none',
        query: uploadUrlQuerySchema,
        response: receivedUploadSchema,
      }),
    ),
    async (c) => {
      c.set('problemDomain', 'observation_ingress');
      const q = c.req.query();
      const received = await services.signedUploads.receive(
        c.req.param('upload_id'),
        { source_id: q.source_id, media_type: q.media_type, expires_at_ms: q.expires_at_ms, signature: q.signature },
        c.req.raw.body,
        declaredLength(c.req.raw),
      );
      return c.json(received, 200);
    },
  );

  return app;
}
