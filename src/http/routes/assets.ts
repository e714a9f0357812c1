import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { z } from 'zod';
import { getAsset } from '../../assets/repo.js';
import { isDerivedFromSensitive } from '../../derivations/repo.js';
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
      // Derived assets (previews, OCR text) inherit the sensitivity of what they were derived from.
      if (isDerivedFromSensitive(db, row.asset_id)) throw new AppError('forbidden', 'content of sensitive sources needs the admin token');
    }
    const etag = `"${row.sha256}"`;
    const headers = { etag, 'cache-control': 'private, max-age=31536000, immutable' };
    if (noneMatch(c.req.header('if-none-match'), etag)) return c.body(null, 304, headers);
    const contentHeaders = {
      ...headers,
      'content-type': row.media_type,
      'content-length': String(row.byte_length),
      'x-content-type-options': 'nosniff',
    };
    // HEAD runs this GET handler and drops the body: a stream opened for it would never be read or closed.
    if (c.req.method === 'HEAD') return c.body(null, 200, contentHeaders);
    const stream = Readable.toWeb(createReadStream(blobs.pathOf(row.sha256))) as ReadableStream;
    return c.body(stream, 200, contentHeaders);
  });

  return app;
}

/** RFC 9110 If-None-Match: `*`, or a list of entity tags compared weakly (a `W/` prefix is ignored). */
function noneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
