import { Hono } from 'hono';
import { z } from 'zod';
import { derivationListQuerySchema, derivationPostQuerySchema, derivationRequestSchema } from '../../derivations/schemas.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { parseJsonBody, parseParam, parseQuery } from '../validate.js';

export const derivationIdSchema = z.string().regex(/^der_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a derivation id');

/** `/v1/derivations`: request (and by default wait for) a derivation, list and read them. */
export function derivationRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { derivations } = services;

  app.post('/', auth('write'), async (c) => {
    const q = parseQuery(c, derivationPostQuerySchema);
    const input = await parseJsonBody(c, derivationRequestSchema, config.limits.max_admin_body_bytes);
    const { view, settled } = await derivations.request(input, q);
    c.header('location', `/v1/derivations/${view.derivation_id}`);
    return c.json(view, settled ? 200 : 202);
  });

  app.get('/', auth('read'), (c) => c.json(derivations.list(parseQuery(c, derivationListQuerySchema))));

  app.get('/:derivation_id', auth('read'), (c) => c.json(derivations.get(parseParam(c, 'derivation_id', derivationIdSchema))));

  return app;
}
