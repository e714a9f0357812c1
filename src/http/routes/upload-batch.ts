import { Hono } from 'hono';
import { AppError } from '../../errors.js';
import { sourceIdSchema } from '../../ids.js';
import { batchEnvelopeSchema, jsonUploadSchema, type ObservationView } from '../../observations/schemas.js';
import type { RouteDeps } from '../app.js';
import { bearerToken, type AppEnv } from '../auth.js';
import { declaredLength, readLimitedBytes, reserveJsonBody } from '../body.js';
import { toProblem } from '../problem.js';
import { parseJson, parseParam, parseWith } from '../validate.js';
import { ingestJsonUpload, isJson, jsonBodyRate } from './uploads.js';

interface ItemResult {
  index: number;
  status: number;
  observation?: ObservationView;
  error?: Record<string, unknown>;
}

/**
 * `POST /v1/observation-sources/{id}/observations/batch`: up to 100 single JSON uploads in one
 * body, each validated, deduplicated and idempotent on its own. Auth, the disk floor and the
 * body limit (`limits.max_batch_bytes`) apply once; the rate limit counts items: `admit` takes
 * the first token and every further item one more, so an item past the limit gets its own 429.
 */
export function uploadBatchRoutes({ services, config, logger, jsonBudget }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const { observations } = services;

  app.post('/:source_id/observations/batch', async (c) => {
    const sourceId = parseParam(c, 'source_id', sourceIdSchema);
    const limit = config.limits.max_batch_bytes;
    const source = observations.admit(sourceId, bearerToken(c.req.header('authorization')), declaredLength(c.req.raw), limit);
    const release = await reserveJsonBody(c.req.raw, limit, jsonBudget);
    try {
      return c.json({ results: await ingestItems(sourceId, source, limit, c.req.raw) }, 200);
    } finally {
      release();
    }
  });

  async function ingestItems(sourceId: string, source: Parameters<typeof ingestJsonUpload>[1], limit: number, req: Request) {
    let items: unknown[];
    try {
      if (!isJson((req.headers.get('content-type') ?? '').toLowerCase())) {
        throw new AppError('unsupported_media_type', 'send the batch as application/json');
      }
      items = parseWith(batchEnvelopeSchema, parseJson(await readLimitedBytes(req, limit, jsonBodyRate(config)))).items;
    } catch (e) {
      observations.recordRejection(sourceId, e);
      throw e;
    }
    // Items with different keys run concurrently (so their commits share group commits); items
    // repeating a key run after the earlier one, in order, and so replay it.
    const byKey = new Map<string, Promise<unknown>>();
    const results: ItemResult[] = new Array(items.length);
    const one = async (index: number, item: unknown) => {
      try {
        let body;
        try {
          if (index > 0) observations.takeRateToken(source);
          body = parseWith(jsonUploadSchema, item);
        } catch (e) {
          observations.recordRejection(sourceId, e);
          throw e;
        }
        const { observation, replayed } = await ingestJsonUpload(services, source, body);
        results[index] = { index, status: replayed ? 200 : 201, observation };
      } catch (e) {
        if (!(e instanceof AppError)) logger.error({ err: e, source_id: sourceId, index }, 'batch item failed');
        const problem = toProblem(e);
        results[index] = { index, status: problem.status, error: (await problem.json()) as Record<string, unknown> };
      }
    };
    items.forEach((item, index) => {
      const key = (item as { idempotency_key?: unknown } | null)?.idempotency_key;
      const k = typeof key === 'string' ? key : `\u0000${index}`;
      byKey.set(k, (byKey.get(k) ?? Promise.resolve()).then(() => one(index, item)));
    });
    await Promise.all(byKey.values());
    return results;
  }

  return app;
}
