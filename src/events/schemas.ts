import { z } from 'zod';
import { eventIdSchema, sourceIdSchema } from '../ids.js';
import { EVENT_TYPES } from './types.js';

/** Query of `GET /v1/events`: comma-separated `types`, one `source_id`, and `last_event_id` to resume. */
export const eventsQuerySchema = z
  .object({
    types: z
      .string()
      .max(1000)
      .transform((s) =>
        s
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.enum(EVENT_TYPES)))
      .optional(),
    source_id: sourceIdSchema.optional(),
    last_event_id: eventIdSchema.optional(),
  })
  .strict();
