import { Hono, type Context } from 'hono';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { AppError } from '../../errors.js';
import { listParams } from '../../pagination.js';
import { REPEATABLE_LIST_KEYS } from '../../observations/schemas.js';
import { searchFilterSchema, searchHitSchema } from '../../search/schemas.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { renderList } from '../list.js';
import { doc, listOf } from '../openapi.js';
import { parseWith } from '../validate.js';

const listParamsSchema = z.object(listParams);

/** `GET /v1/search?q=`: full-text search over canonical text (read token; sensitive sources need the admin token). */
export function searchRoutes({ services, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();

  app.get(
    '/',
    describeRoute(
      doc({
        summary:
          'Full-text search over canonical text: words (all must match), "phrase", prefix*, -excluded; filters source_id, stream_id (with source_id), kind, after_ms/before_ms, processing_status, metadata.<key>=value; hits best first, snippet matches between « and »',
        auth: 'reader',
        query: searchFilterSchema,
        response: listOf(searchHitSchema),
      }),
    ),
    auth('read'),
    (c) => {
      const { filter, list } = parseSearchQuery(c);
      return renderList(c, list, services.search.search(filter, c.get('role')));
    },
  );

  return app;
}

/**
 * The query string: `q` and filters, `metadata.<key>=value` pairs, and the list parameters;
 * bad_request for a repeated one (except the listing's repeatable keys: `processing_status`).
 */
function parseSearchQuery(c: Context) {
  const flat: Record<string, string> = {};
  const repeatable: Record<string, string | string[]> = {};
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.req.queries())) {
    if ((REPEATABLE_LIST_KEYS as readonly string[]).includes(k)) {
      repeatable[k] = v.length > 1 ? v : v[0];
      continue;
    }
    if (v.length > 1) throw new AppError('bad_request', `query parameter "${k}" is repeated`);
    if (k.startsWith('metadata.')) metadata[k.slice('metadata.'.length)] = v[0];
    else flat[k] = v[0];
  }
  const { limit, page, cursor, ...single } = flat;
  const rest = { ...single, ...repeatable };
  const filter = parseWith(searchFilterSchema, { ...rest, ...(Object.keys(metadata).length ? { metadata } : {}) }, 'query');
  const list = parseWith(listParamsSchema, { limit, page, cursor }, 'query');
  return { filter, list };
}
