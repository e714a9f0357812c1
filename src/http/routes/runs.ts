import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { completeRunSchema, materializationRequestSchema, runListQuerySchema, runViewSchema } from '../../materialization/schemas.js';
import { runtimeSettingsViewSchema } from '../../materialization/runtime.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { renderList } from '../list.js';
import { doc, listOf } from '../openapi.js';
import { parseJsonBody, parseQuery, pathId } from '../validate.js';

/**
 * `POST /v1/observation-materializations` (materialize a selection into a run, 202),
 * `GET /v1/runtime` (Kheish's RuntimeSettingsView of the run submitter) and `/v1/runs`: list,
 * read, and for agent runtimes claim and complete.
 */
export function runRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { materializations } = services;
  const bodyLimit = config.limits.max_admin_body_bytes;

  app.post(
    '/observation-materializations',
    describeRoute(
      doc({
        summary: 'Materialize a selection of observations into a run (its composed input, handed to the run submitter)',
        auth: 'admin',
        body: materializationRequestSchema,
        response: runViewSchema,
        status: 202,
      }),
    ),
    auth('write'),
    async (c) => {
      const view = await materializations.materialize(await parseJsonBody(c, materializationRequestSchema, bodyLimit));
      c.header('location', `/v1/runs/${view.run_id}`);
      return c.json(view, 202);
    },
  );

  app.get(
    '/runtime',
    describeRoute(
      doc({
        summary: "Kheish's RuntimeSettingsView, describing observd's run submitter (the Kheish CLI reads it before materializing)",
        auth: 'reader',
        response: runtimeSettingsViewSchema,
      }),
    ),
    auth('read'),
    (c) => c.json(materializations.runtime()),
  );

  app.get(
    '/runs',
    describeRoute(
      doc({ summary: 'List runs (without their input)', auth: 'reader', query: runListQuerySchema, response: listOf(runViewSchema) }),
    ),
    auth('read'),
    (c) => {
      const q = parseQuery(c, runListQuerySchema);
      const filter = { status: q.status, target_session_id: q.target_session_id ?? q.session_id };
      return renderList(c, q, materializations.list(filter, c.get('role')));
    },
  );

  app.get(
    '/runs/:run_id',
    describeRoute(
      doc({ summary: 'Get a run with its composed input, and output and usage once finished', auth: 'reader', response: runViewSchema }),
    ),
    auth('read'),
    (c) => c.json(materializations.get(pathId(c, 'run_id'), c.get('role'))),
  );

  app.post(
    '/runs/:run_id/claim',
    describeRoute(
      doc({
        summary: 'Claim a queued run for an agent runtime (queued → running, leased for runs.claim_lease_ms; 409 otherwise)',
        auth: 'admin',
        response: runViewSchema,
      }),
    ),
    auth('write'),
    (c) => c.json(materializations.claim(pathId(c, 'run_id'))),
  );

  app.post(
    '/runs/:run_id/heartbeat',
    describeRoute(
      doc({ summary: 'Extend the lease of a claimed run (409 when it is no longer held)', auth: 'admin', response: runViewSchema }),
    ),
    auth('write'),
    (c) => c.json(materializations.heartbeat(pathId(c, 'run_id'))),
  );

  app.post(
    '/runs/:run_id/complete',
    describeRoute(
      doc({
        summary: 'Finish a running run with its output (and usage) or an error (→ completed | failed; 409 otherwise)',
        auth: 'admin',
        body: completeRunSchema,
        response: runViewSchema,
      }),
    ),
    auth('write'),
    async (c) => {
      const id = pathId(c, 'run_id');
      return c.json(materializations.complete(id, await parseJsonBody(c, completeRunSchema, bodyLimit)));
    },
  );

  return app;
}
