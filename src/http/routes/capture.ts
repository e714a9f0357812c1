import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import {
  agentViewSchema,
  alertViewSchema,
  captureListQuerySchema,
  heartbeatRequestSchema,
  heartbeatResponseSchema,
  provisionRequestSchema,
  provisionResponseSchema,
  revokeRequestSchema,
} from '../../capture/schemas.js';
import { bearerToken, type AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { renderList } from '../list.js';
import { doc, listOf } from '../openapi.js';
import { parseJsonBody, parseQuery, parseWith, readOptionalJsonBody } from '../validate.js';

/** Largest heartbeat or revoke body read. */
const SMALL_BODY = 64 * 1024;

/**
 * The capture-agent plane: `POST /v1/capture-agent-provisions`, `GET /v1/capture-agents[/{id}]`,
 * `POST /v1/capture-agents/{id}/revoke` (admin), `GET /v1/capture-alerts`, and the heartbeat,
 * which takes the agent's own bearer instead of admin auth.
 */
export function captureRoutes({ services, config, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const agents = services.captureAgents;

  app.post(
    '/capture-agent-provisions',
    describeRoute(
      doc({
        summary: "Provision a batch of capture agents with the sources they own; each agent's credentials are in this answer only",
        auth: 'admin',
        body: provisionRequestSchema,
        response: provisionResponseSchema,
        status: 201,
      }),
    ),
    auth('write'),
    async (c) => {
      const input = await parseJsonBody(c, provisionRequestSchema, Math.max(config.limits.max_admin_body_bytes, 1024 * 1024));
      return c.json(agents.provision(input), 201);
    },
  );

  app.get(
    '/capture-agents',
    describeRoute(
      doc({
        summary: 'List capture agents by machine id',
        auth: 'reader',
        query: captureListQuerySchema,
        response: listOf(agentViewSchema),
      }),
    ),
    auth('read'),
    (c) => renderList(c, parseQuery(c, captureListQuerySchema), agents.list()),
  );

  // Machine ids are not validated as such: an id that cannot exist is simply unknown (404).
  app.get(
    '/capture-agents/:machine_id',
    describeRoute(doc({ summary: 'Get a capture agent', auth: 'reader', response: agentViewSchema })),
    auth('read'),
    (c) => c.json(agents.get(c.req.param('machine_id'))),
  );

  app.post(
    '/capture-agents/:machine_id/revoke',
    describeRoute(
      doc({
        summary: "Revoke a capture agent: its heartbeats and its sources' uploads get 401, its sources are disabled, its uploads are kept",
        auth: 'admin',
        body: revokeRequestSchema,
        response: agentViewSchema,
      }),
    ),
    auth('write'),
    async (c) => {
      const body = parseWith(revokeRequestSchema, await readOptionalJsonBody(c, SMALL_BODY));
      return c.json(agents.revoke(c.req.param('machine_id'), body.reason));
    },
  );

  // Outside admin auth: the agent's heartbeat token, checked before the body is read. Every
  // authentication failure (unknown agent included) is the same 401.
  app.post(
    '/capture-agents/:machine_id/heartbeat',
    describeRoute(
      doc({
        summary: "Heartbeat with the agent's own bearer token (`{}` is enough)",
        auth: 'upload',
        body: heartbeatRequestSchema,
        response: heartbeatResponseSchema,
      }),
    ),
    async (c) => {
      c.set('problemDomain', 'observation_ingress');
      const machineId = agents.authenticateHeartbeat(c.req.param('machine_id'), bearerToken(c.req.header('authorization')));
      const body = parseWith(heartbeatRequestSchema, await readOptionalJsonBody(c, SMALL_BODY));
      return c.json(agents.heartbeat(machineId, body));
    },
  );

  app.get(
    '/capture-alerts',
    describeRoute(
      doc({
        summary: 'Capture agents that missed their heartbeat deadline',
        auth: 'reader',
        query: captureListQuerySchema,
        response: listOf(alertViewSchema),
      }),
    ),
    auth('read'),
    (c) => renderList(c, parseQuery(c, captureListQuerySchema), agents.alerts()),
  );

  return app;
}
