import { Hono, type Context } from 'hono';
import type { z } from 'zod';
import {
  captureListQuerySchema,
  heartbeatRequestSchema,
  provisionRequestSchema,
  revokeRequestSchema,
  type CaptureListQuery,
} from '../../capture/schemas.js';
import { decodeCursor, encodeCursor } from '../../pagination.js';
import { bearerToken, type AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { readLimitedBytes } from '../body.js';
import { parseJson, parseJsonBody, parseQuery, parseWith } from '../validate.js';

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

  app.post('/capture-agent-provisions', auth('write'), async (c) => {
    const input = await parseJsonBody(c, provisionRequestSchema, Math.max(config.limits.max_admin_body_bytes, 1024 * 1024));
    return c.json(agents.provision(input), 201);
  });

  app.get('/capture-agents', auth('read'), (c) => {
    const q = parseQuery(c, captureListQuerySchema);
    return listResponse(c, q, 'capture-agents', (after) => agents.list(after), (v) => v.machine_id, () => agents.count());
  });

  // Machine ids are not validated as such: an id that cannot exist is simply unknown (404).
  app.get('/capture-agents/:machine_id', auth('read'), (c) => c.json(agents.get(c.req.param('machine_id'))));

  app.post('/capture-agents/:machine_id/revoke', auth('write'), async (c) => {
    const body = await optionalJsonBody(c, revokeRequestSchema);
    return c.json(agents.revoke(c.req.param('machine_id'), body.reason));
  });

  // Outside admin auth: the agent's heartbeat token, checked before the body is read. Every
  // authentication failure (unknown agent included) is the same 401.
  app.post('/capture-agents/:machine_id/heartbeat', async (c) => {
    const machineId = agents.authenticateHeartbeat(c.req.param('machine_id'), bearerToken(c.req.header('authorization')));
    const body = await optionalJsonBody(c, heartbeatRequestSchema);
    return c.json(agents.heartbeat(machineId, body));
  });

  app.get('/capture-alerts', auth('read'), (c) => {
    const q = parseQuery(c, captureListQuerySchema);
    return listResponse(c, q, 'capture-alerts', (after) => agents.alerts(after), (v) => v.machine_id, () => agents.count(true));
  });

  return app;
}

/** A JSON body that may be absent (the Kheish CLI sends `{}`, others send nothing): absent is `{}`. */
async function optionalJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const bytes = await readLimitedBytes(c.req.raw, SMALL_BODY);
  return parseWith(schema, bytes.length === 0 ? {} : parseJson(bytes));
}

/**
 * The list convention: a bare array of every row by default (`limit` truncates it); `page=true`
 * or a `cursor` gives `{items, pagination}` with a keyset cursor on the machine id.
 */
function listResponse<T>(
  c: Context,
  q: CaptureListQuery,
  scope: string,
  rows: (after?: string) => Iterable<T>,
  key: (v: T) => string,
  total: () => number,
): Response {
  const paged = q.page === 'true' || q.page === '1' || q.cursor !== undefined;
  const after = q.cursor !== undefined ? String(decodeCursor(scope, q.cursor, ['string'])[0]) : undefined;
  const limit = q.limit ?? (paged ? 100 : Infinity);
  const items: T[] = [];
  let more = false;
  for (const v of rows(after)) {
    if (items.length === limit) {
      more = true;
      break;
    }
    items.push(v);
  }
  if (!paged) return c.json(items);
  return c.json({
    items,
    pagination: {
      limit,
      total_count: total(),
      has_more: more,
      next_cursor: more ? encodeCursor(scope, [key(items[items.length - 1])]) : null,
      order: 'asc',
    },
  });
}
