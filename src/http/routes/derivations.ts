import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import {
  derivationListQuerySchema,
  derivationPostQuerySchema,
  derivationRequestSchema,
  derivationViewSchema,
} from '../../derivations/schemas.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { renderList } from '../list.js';
import { doc, listOf } from '../openapi.js';
import { parseJsonBody, parseQuery, pathId } from '../validate.js';

/** `/v1/derivations`: request (and by default wait for) a derivation, list and read them. */
export function derivationRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { derivations } = services;

  app.post(
    '/',
    describeRoute(
      doc({
        summary: 'Derive canonical text or a visual preview (waits for the result unless wait=false; 202 while pending)',
        auth: 'admin',
        query: derivationPostQuerySchema,
        body: derivationRequestSchema,
        response: derivationViewSchema,
      }),
    ),
    auth('write'),
    async (c) => {
      const q = parseQuery(c, derivationPostQuerySchema);
      const input = await parseJsonBody(c, derivationRequestSchema, config.limits.max_admin_body_bytes);
      const { view, settled } = await derivations.request(input, q);
      c.header('location', `/v1/derivations/${view.derivation_id}`);
      return c.json(view, settled ? 200 : 202);
    },
  );

  app.get(
    '/',
    describeRoute(
      doc({ summary: 'List derivations', auth: 'reader', query: derivationListQuerySchema, response: listOf(derivationViewSchema) }),
    ),
    auth('read'),
    (c) => {
      const { limit, page, cursor, ...filter } = parseQuery(c, derivationListQuerySchema);
      return renderList(c, { limit, page, cursor }, derivations.list(filter));
    },
  );

  app.get(
    '/:derivation_id',
    describeRoute(doc({ summary: 'Get a derivation', auth: 'reader', response: derivationViewSchema })),
    auth('read'),
    (c) => c.json(derivations.get(pathId(c, 'derivation_id'))),
  );

  return app;
}
