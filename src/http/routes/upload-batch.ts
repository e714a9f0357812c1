import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { AppError, isDiskFull } from '../../errors.js';
import {
  batchEnvelopeSchema,
  batchResultSchema,
  batchUploadSchema,
  jsonUploadSchema,
  type ObservationView,
} from '../../observations/schemas.js';
import type { RouteDeps } from '../app.js';
import type { AppEnv } from '../auth.js';
import { readLimitedBytes } from '../body.js';
import { doc } from '../openapi.js';
import { toProblem } from '../problem.js';
import { uploadAdmission } from '../upload-admission.js';
import { parseJson, parseWith } from '../validate.js';
import { ingestJsonUpload } from './uploads.js';

interface ItemResult {
  index: number;
  status: number;
  observation?: ObservationView;
  error?: Record<string, unknown>;
}

/**
 * `POST /v1/observation-sources/{id}/observations/batch`: up to 100 single JSON uploads in one
 * body, each validated, deduplicated and idempotent on its own. Admission (auth, the disk floor,
 * `limits.max_batch_bytes`) applies once; the rate limit counts items: admission takes the first
 * token and every further item one more, so an item past the limit gets its own 429.
 */
export function uploadBatchRoutes({ services, config, logger, jsonBudget }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { observations } = services;
  const limit = config.limits.max_batch_bytes;

  app.post(
    '/:source_id/observations/batch',
    describeRoute(
      doc({
        summary:
          'Upload up to 100 observations (each the JSON upload body); 200 with a status per item. The rate limit counts one token per item',
        auth: 'upload',
        body: batchUploadSchema,
        response: batchResultSchema,
      }),
    ),
    uploadAdmission({ observations, accepts: ['json'], maxBytes: { json: limit }, jsonBudget }),
    async (c) => {
      const { source } = c.get('upload')!;
      const items = parseWith(batchEnvelopeSchema, parseJson(await readLimitedBytes(c, limit))).items;
      // Items with different keys run concurrently (so their commits share group commits); items
      // repeating a key run after the earlier one, in order, and so replay it.
      const byKey = new Map<string, Promise<unknown>>();
      const results: ItemResult[] = new Array(items.length);
      const one = async (index: number, item: unknown) => {
        try {
          if (index > 0) observations.takeRateToken(source);
          const { observation, replayed } = await ingestJsonUpload(services, source, parseWith(jsonUploadSchema, item));
          results[index] = { index, status: replayed ? 200 : 201, observation };
        } catch (e) {
          // An item's refusal is answered in its result, so it is audited here, once.
          observations.recordRejection(source.source_id, e);
          if (!(e instanceof AppError) && !isDiskFull(e)) logger.error({ err: e, source_id: source.source_id, index }, 'batch item failed');
          const problem = toProblem(e, 'observation_ingress');
          results[index] = { index, status: problem.status, error: (await problem.json()) as Record<string, unknown> };
        }
      };
      items.forEach((item, index) => {
        const key = (item as { idempotency_key?: unknown } | null)?.idempotency_key;
        const k = typeof key === 'string' ? key : `\u0000${index}`;
        byKey.set(
          k,
          (byKey.get(k) ?? Promise.resolve()).then(() => one(index, item)),
        );
      });
      await Promise.all(byKey.values());
      return c.json({ results }, 200);
    },
  );

  return app;
}
