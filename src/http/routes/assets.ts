import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { noneMatch } from '../conditional.js';
import { doc } from '../openapi.js';
import { pathId } from '../validate.js';

/** `/v1/assets/{id}` metadata and content (the domain decides who may read the bytes). */
export function assetRoutes({ services, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { assets } = services;

  app.get('/:asset_id', describeRoute(doc({ summary: 'Asset metadata', auth: 'reader' })), auth('read'), (c) =>
    c.json(assets.get(pathId(c, 'asset_id'))),
  );

  app.get(
    '/:asset_id/content',
    describeRoute(
      doc({
        summary: 'Asset bytes (admin token for content of sensitive sources)',
        auth: 'reader',
        responseMedia: 'application/octet-stream',
      }),
    ),
    auth('read'),
    (c) => {
      const { asset, stream } = assets.content(pathId(c, 'asset_id'), c.get('role'));
      const etag = `"${asset.sha256}"`;
      const headers = { etag, 'cache-control': 'private, max-age=31536000, immutable' };
      if (noneMatch(c.req.header('if-none-match'), etag)) return c.body(null, 304, headers);
      const contentHeaders = {
        ...headers,
        'content-type': asset.media_type,
        'content-length': String(asset.byte_length),
        'x-content-type-options': 'nosniff',
      };
      // HEAD runs this GET handler and drops the body: a stream opened for it would never be read or closed.
      if (c.req.method === 'HEAD') return c.body(null, 200, contentHeaders);
      return c.body(Readable.toWeb(stream()) as ReadableStream, 200, contentHeaders);
    },
  );

  return app;
}
