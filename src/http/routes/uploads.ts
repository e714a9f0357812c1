import { Hono, type Context } from 'hono';
import { AppError } from '../../errors.js';
import { sourceIdSchema } from '../../ids.js';
import { decodeBase64Strict } from '../../observations/media.js';
import { jsonUploadSchema, multipartObservationSchema, type UploadFields } from '../../observations/schemas.js';
import type { StagedBlob } from '../../assets/blob-store.js';
import type { AppEnv } from '../auth.js';
import { bearerToken } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { declaredLength, readLimitedBytes, readMultipartUpload } from '../body.js';
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
export function uploadRoutes({ services, config }: RouteDeps) {
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
      throw new AppError('unsupported_media_type', 'send application/json or multipart/form-data');
    }
    const limit = multipart ? limits.multipart : limits.json;
    const source = observations.admit(sourceId, bearerToken(c.req.header('authorization')), declaredLength(c.req.raw), limit);
    let staged: { fields: UploadFields; blob: StagedBlob };
    try {
      staged = multipart ? await readMultipart(c, services, limits) : await readJson(c, services, limits.json);
    } catch (e) {
      observations.recordRejection(sourceId, e);
      throw e;
    }
    const { observation, replayed } = await observations.ingest(source, staged.fields, staged.blob);
    c.header('location', `/v1/observations/${observation.observation_id}`);
    if (replayed) c.header('idempotent-replayed', 'true');
    return c.json(observation, replayed ? 200 : 201);
  });

  return app;
}

function isJson(type: string) {
  return type.startsWith('application/json') || /^application\/[a-z0-9.+-]*\+json/.test(type);
}

async function readJson(c: Context, services: RouteDeps['services'], limit: number) {
  const body = parseWith(jsonUploadSchema, parseJson(await readLimitedBytes(c.req.raw, limit)));
  const bytes = decodeBase64Strict(body.upload.content_base64, 'upload.content_base64');
  const { upload, ...rest } = body;
  const blob = await services.blobs.stage(bytes);
  return { fields: { ...rest, file_name: upload.file_name, media_type: upload.media_type }, blob };
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

