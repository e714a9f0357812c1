import { Hono } from 'hono';
import { z } from 'zod';
import { observationListQuerySchema } from '../../observations/schemas.js';
import { listAudit, auditQuerySchema } from '../../audit/repo.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { parseParam, parseQuery } from '../validate.js';

export const observationIdSchema = z.string().regex(/^obs_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be an observation id');

/** `/v1/observations` reads and deletes, and `/v1/observation-audit`. */
export function observationRoutes({ services, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { observations } = services;

  app.get('/observations', auth('read'), (c) => c.json(observations.list(parseQuery(c, observationListQuerySchema))));

  app.get('/observations/:observation_id', auth('read'), (c) =>
    c.json(observations.get(parseParam(c, 'observation_id', observationIdSchema))),
  );

  app.delete('/observations/:observation_id', auth('write'), (c) => {
    observations.delete(parseParam(c, 'observation_id', observationIdSchema));
    return c.body(null, 204);
  });

  app.get('/observation-audit', auth('read'), (c) => c.json(listAudit(services.db, parseQuery(c, auditQuerySchema))));

  return app;
}
