import { Hono, type Context } from 'hono';
import { AppError } from '../../errors.js';
import { sourceIdSchema } from '../../ids.js';
import { decodeBase64Strict } from '../../observations/media.js';
import { jsonUploadSchema, multipartObservationSchema, type JsonUpload } from '../../observations/schemas.js';
import type { IngestResult } from '../../observations/service.js';
import type { SourceRow } from '../../sources/repo.js';
import type { StagedBlob } from '../../assets/blob-store.js';
import type { AppEnv } from '../auth.js';
import { bearerToken } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { declaredLength, readLimitedBytes, readMultipartUpload, reserveJsonBody, type MinRate } from '../body.js';
import { parseJson, parseParam, parseWith } from '../validate.js';

/** Size limits of the upload shapes, derived from the raw-media limit. */
export function uploadLimits(config: RouteDeps['config']) {
  const { max_raw_bytes, max_canonical_text_bytes, max_metadata_bytes } = config.limits;
  const fields = 2 * (max_canonical_text_bytes + max_metadata_bytes) + 64 * 1024;
  return {
    json: Math.ceil(max_raw_bytes / 3) * 4 + fields,
    multipart: max_raw_bytes + fields,
    field: fields,
  };
}

/** `POST /v1/observation-sources/{id}/observations`: upload-token routes for capture agents. */
export function uploadRoutes({ services, config, jsonBudget }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const limits = uploadLimits(config);
  const { observations } = services;

  app.post('/:source_id/observations', async (c) => {
    const sourceId = parseParam(c, 'source_id', sourceIdSchema);
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    const multipart = type.startsWith('multipart/form-data');
    if (!multipart && !isJson(type)) {
      // Authenticate first: an unauthenticated caller learns nothing about accepted shapes.
      observations.admit(sourceId, bearerToken(c.req.header('authorization')), undefined, Infinity);
      const e = new AppError('unsupported_media_type', 'send application/json or multipart/form-data');
      observations.recordRejection(sourceId, e);
      throw e;
    }
    const limit = multipart ? limits.multipart : limits.json;
    const source = observations.admit(sourceId, bearerToken(c.req.header('authorization')), declaredLength(c.req.raw), limit);
    const rejected = (e: unknown): never => {
      observations.recordRejection(sourceId, e);
      throw e;
    };
    let result: IngestResult;
    if (multipart) {
      const staged = await readMultipart(c, services, limits).catch(rejected);
      result = await observations.ingest(source, staged.fields, staged.blob);
    } else {
      const release = await reserveJsonBody(c.req.raw, limits.json, jsonBudget);
      try {
        const json = await readJsonUpload(c.req.raw, limits.json, jsonBodyRate(config)).catch(rejected);
        result = await ingestJsonUpload(services, source, json);
      } finally {
        release();
      }
    }
    const { observation, replayed } = result;
    c.header('location', `/v1/observations/${observation.observation_id}`);
    if (replayed) c.header('idempotent-replayed', 'true');
    return c.json(observation, replayed ? 200 : 201);
  });

  return app;
}

async function readJsonUpload(req: Request, limit: number, rate: MinRate): Promise<JsonUpload> {
  return parseWith(jsonUploadSchema, parseJson(await readLimitedBytes(req, limit, rate)));
}

/** The pace a JSON body that holds the memory budget must keep. */
export function jsonBodyRate(config: RouteDeps['config']): MinRate {
  return { bytesPerSecond: config.limits.json_body_min_bytes_per_s, graceMs: config.limits.json_body_rate_grace_ms };
}

/** True for a JSON media type (`application/json` or `application/*+json`). */
export function isJson(type: string) {
  return type.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(type);
}

/**
 * Stores one JSON upload body (the single route and each batch item): base64 content is decoded
 * and staged, a signed upload's `upload_id` uses the bytes already PUT. A refusal before
 * `ingest` (bad base64, oversized content) is recorded in the audit trail like ingest's own.
 */
export async function ingestJsonUpload(services: RouteDeps['services'], source: SourceRow, body: JsonUpload): Promise<IngestResult> {
  const { upload, ...rest } = body;
  if (upload.upload_id !== undefined) return services.uploads.ingest(source, upload.upload_id, rest);
  let blob: StagedBlob;
  try {
    // The schema guarantees the three inline fields whenever upload_id is absent.
    const bytes = decodeBase64Strict(upload.content_base64!, 'upload.content_base64');
    const maxRaw = services.config.limits.max_raw_bytes;
    if (bytes.length > maxRaw) throw new AppError('payload_too_large', `upload content exceeds the limit of ${maxRaw} bytes`);
    blob = await services.blobs.stage(bytes);
  } catch (e) {
    services.observations.recordRejection(source.source_id, e);
    throw e;
  }
  return services.observations.ingest(source, { ...rest, file_name: upload.file_name!, media_type: upload.media_type! }, blob);
}

async function readMultipart(c: Context, services: RouteDeps['services'], limits: ReturnType<typeof uploadLimits>) {
  const part = await readMultipartUpload(c.req.raw, services.blobs, {
    maxFileBytes: services.config.limits.max_raw_bytes,
    maxFieldBytes: limits.field,
    maxTotalBytes: limits.multipart,
  });
  try {
    if (part.observation === undefined) throw new AppError('bad_request', 'multipart upload needs an "observation" JSON part');
    const obs = parseWith(multipartObservationSchema, parseJson(Buffer.from(part.observation, 'utf8')), 'observation');
    const { upload, ...rest } = obs;
    const file_name = upload?.file_name ?? part.fileName;
    const media_type = upload?.media_type ?? (part.mimeType !== 'application/octet-stream' ? part.mimeType : undefined);
    if (!file_name || !media_type) {
      throw new AppError('validation_failed', 'file name and media type are required', {
        errors: [
          ...(!file_name ? [{ path: 'observation.upload.file_name', message: 'required (or a filename on the file part)' }] : []),
          ...(!media_type ? [{ path: 'observation.upload.media_type', message: 'required (or a Content-Type on the file part)' }] : []),
        ],
      });
    }
    return { fields: { ...rest, file_name, media_type }, blob: part.staged };
  } catch (e) {
    services.blobs.discard(part.staged);
    throw e;
  }
}

