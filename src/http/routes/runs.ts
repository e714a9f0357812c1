import { Hono } from 'hono';
import {
  completeRunSchema,
  materializationRequestSchema,
  runIdSchema,
  runListQuerySchema,
  type RunView,
} from '../../materialization/schemas.js';
import type { AppEnv, Role } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { parseJsonBody, parseParam, parseQuery } from '../validate.js';

/**
 * What a caller may see of a run: the read-only token gets no input or output of runs that
 * involve sensitive or restricted observations (like their asset content).
 */
function visible(role: Role, view: RunView): RunView {
  if (role === 'admin' || view.sensitivity === null || view.sensitivity === 'public' || view.sensitivity === 'internal') return view;
  return { ...view, ...(view.input !== undefined ? { input: null } : {}), output: null };
}

/**
 * `POST /v1/observation-materializations` (materialize a selection into a run, 202) and
 * `/v1/runs`: list, read, and for agent runtimes claim and complete.
 */
export function runRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { runs } = services;
  const bodyLimit = config.limits.max_admin_body_bytes;

  app.post('/observation-materializations', auth('write'), async (c) => {
    const view = await runs.materialize(await parseJsonBody(c, materializationRequestSchema, bodyLimit));
    c.header('location', `/v1/runs/${view.run_id}`);
    return c.json(view, 202);
  });

  app.get('/runs', auth('read'), (c) => {
    const page = runs.list(parseQuery(c, runListQuerySchema));
    return c.json({ ...page, data: page.data.map((v) => visible(c.get('role'), v)) });
  });

  app.get('/runs/:run_id', auth('read'), (c) => c.json(visible(c.get('role'), runs.get(parseParam(c, 'run_id', runIdSchema)))));

  app.post('/runs/:run_id/claim', auth('write'), (c) => c.json(runs.claim(parseParam(c, 'run_id', runIdSchema))));

  app.post('/runs/:run_id/heartbeat', auth('write'), (c) => c.json(runs.heartbeat(parseParam(c, 'run_id', runIdSchema))));

  app.post('/runs/:run_id/complete', auth('write'), async (c) => {
    const id = parseParam(c, 'run_id', runIdSchema);
    return c.json(runs.complete(id, await parseJsonBody(c, completeRunSchema, bodyLimit)));
  });

  return app;
}
