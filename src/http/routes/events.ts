import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { AppError } from '../../errors.js';
import { sseEnvelope } from '../../events/payload.js';
import { eventsQuerySchema } from '../../events/schemas.js';
import { EVENT_ID } from '../../ids.js';
import type { RouteDeps } from '../app.js';
import type { AppEnv } from '../auth.js';
import { parseQuery } from '../validate.js';
import { describeRoute } from 'hono-openapi';
import { doc } from '../openapi.js';

/**
 * `GET /v1/events` (admin or read-only token): the outbox as Server-Sent Events — `id` is the
 * event's sequence number, `event` its type, `data` the JSON envelope. `Last-Event-ID` (or
 * `?last_event_id=`) resumes after that event; without it the stream starts with what happens
 * next. Idle streams get a comment line every `events.heartbeat_ms`; all end when the daemon closes.
 */
export function eventRoutes({ services, auth, logger }: RouteDeps) {
  const app = new Hono<AppEnv>();

  app.get(
    '/',
    describeRoute(
      doc({
        summary: 'Server-Sent Events from the outbox (id = sequence number; resume with Last-Event-ID; comment-line heartbeats)',
        auth: 'reader',
        query: eventsQuerySchema,
        responseMedia: 'text/event-stream',
      }),
    ),
    auth('read'),
    (c) => {
      const q = parseQuery(c, eventsQuerySchema);
      const header = c.req.header('last-event-id')?.trim() || undefined;
      if (header !== undefined && !EVENT_ID.test(header)) {
        throw new AppError('bad_request', 'Last-Event-ID must be the id of an event (a sequence number)');
      }
      const last = header ?? q.last_event_id;
      // Opened before answering, so the stream's starting point is fixed once the client sees headers.
      const events = services.eventStreams.open({ types: q.types, sourceId: q.source_id }, last === undefined ? undefined : Number(last));
      c.header('x-accel-buffering', 'no');
      return streamSSE(c, async (stream) => {
        stream.onAbort(() => events.close());
        try {
          for await (const item of events) {
            if ('heartbeat' in item) await stream.write(': heartbeat\n\n');
            else {
              for (const ev of item.events) {
                await stream.writeSSE({ id: String(ev.seq), event: ev.type, data: JSON.stringify(sseEnvelope(ev)) });
              }
            }
            if (stream.aborted) break;
          }
        } catch (err) {
          logger.error({ err }, 'event stream failed');
        } finally {
          events.close();
        }
      });
    },
  );

  return app;
}
