import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { z } from 'zod';
import { getAsset } from '../../assets/repo.js';
import { AppError, notFound } from '../../errors.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { parseParam } from '../validate.js';

export const assetIdSchema = z.string().regex(/^ast_[0-9a-f]{64}$/, 'must be an asset id');

/** `/v1/assets/{id}` metadata and content. Content of sensitive sources' assets needs the admin token. */
export function assetRoutes({ services, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { db, blobs } = services;

  const load = (id: string) => {
    const row = getAsset(db, id);
    if (!row) throw notFound(`asset "${id}"`);
    return row;
  };

  app.get('/:asset_id', auth('read'), (c) => c.json(load(parseParam(c, 'asset_id', assetIdSchema))));

  app.get('/:asset_id/content', auth('read'), (c) => {
    const row = load(parseParam(c, 'asset_id', assetIdSchema));
    if (c.get('role') !== 'admin') {
      const sensitive = db
        .prepare(
          `SELECT 1 FROM observations WHERE (asset_id = ? OR canonical_text_asset_id = ?) AND sensitivity IN ('sensitive', 'restricted') LIMIT 1`,
        )
        .get(row.asset_id, row.asset_id);
      if (sensitive) throw new AppError('forbidden', 'content of sensitive sources needs the admin token');
    }
    const etag = `"${row.sha256}"`;
    const headers = { etag, 'cache-control': 'private, max-age=31536000, immutable' };
    if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers);
    const stream = Readable.toWeb(createReadStream(blobs.pathOf(row.sha256))) as ReadableStream;
    return c.body(stream, 200, {
      ...headers,
      'content-type': row.media_type,
      'content-length': String(row.byte_length),
      'x-content-type-options': 'nosniff',
    });
  });

  return app;
}
