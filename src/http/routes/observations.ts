import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { z } from 'zod';
import { auditQuerySchema } from '../../audit/repo.js';
import { observationListQuerySchema, observationViewSchema, REPEATABLE_LIST_KEYS } from '../../observations/schemas.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { renderList } from '../list.js';
import { doc, listOf } from '../openapi.js';
import { parseQuery, pathId } from '../validate.js';

/** Kheish's ObservationAuditRecord, plus `audit_id` and `detail`. */
const auditRecordSchema = z.looseObject({
  recorded_at_ms: z.number().int(),
  event: z.string(),
  source_id: z.string(),
  observation_id: z.string().optional(),
  reason: z.string().optional(),
  audit_id: z.string(),
  detail: z.record(z.string(), z.unknown()),
});

/** `/v1/observations` reads and deletes, and `/v1/observation-audit`. */
export function observationRoutes({ services, auth }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { observations } = services;

  app.get(
    '/observations',
    describeRoute(
      doc({
        summary: 'List observations (by capture time, then id)',
        auth: 'reader',
        query: observationListQuerySchema,
        response: listOf(observationViewSchema),
      }),
    ),
    auth('read'),
    (c) => {
      const { limit, page, cursor, ...filter } = parseQuery(c, observationListQuerySchema, REPEATABLE_LIST_KEYS);
      return renderList(c, { limit, page, cursor }, observations.list(filter));
    },
  );

  app.get(
    '/observations/:observation_id',
    describeRoute(doc({ summary: 'Get an observation', auth: 'reader', response: observationViewSchema })),
    auth('read'),
    (c) => c.json(observations.get(pathId(c, 'observation_id'))),
  );

  app.delete(
    '/observations/:observation_id',
    describeRoute(doc({ summary: 'Erase an observation now', auth: 'admin', status: 204 })),
    auth('write'),
    (c) => {
      observations.delete(pathId(c, 'observation_id'));
      return c.body(null, 204);
    },
  );

  app.get(
    '/observation-audit',
    describeRoute(
      doc({
        summary: 'Audit trail, newest first (Kheish event names; `event=` filters)',
        auth: 'reader',
        query: auditQuerySchema,
        response: listOf(auditRecordSchema),
      }),
    ),
    auth('read'),
    (c) => {
      const { limit, page, cursor, ...filter } = parseQuery(c, auditQuerySchema);
      return renderList(c, { limit, page, cursor }, observations.audit(filter));
    },
  );

  return app;
}
