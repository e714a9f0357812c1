import { Hono, type Context } from 'hono';
import { describeRoute } from 'hono-openapi';
import type { StagedBlob } from '../../assets/blob-store.js';
import { AppError } from '../../errors.js';
import { decodeBase64Strict } from '../../observations/media.js';
import { jsonUploadSchema, multipartObservationSchema, observationViewSchema, type JsonUpload } from '../../observations/schemas.js';
import type { IngestResult } from '../../observations/service.js';
import type { SourceRow } from '../../sources/repo.js';
import type { AppEnv } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { readLimitedBytes } from '../body.js';
import { readMultipartUpload } from '../multipart.js';
import { doc } from '../openapi.js';
import { uploadAdmission } from '../upload-admission.js';
import { parseJson, parseWith } from '../validate.js';

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

/**
 * `POST /v1/observation-sources/{id}/observations`: direct observation uploads (JSON with base64
 * content, or multipart with a file part) for capture agents, behind `uploadAdmission`.
 */
export function observationUploadRoutes({ services, config, jsonBudget }: RouteDeps) {
  const app = new Hono<AppEnv>();
  const limits = uploadLimits(config);
  const { observations } = services;

  app.post(
    '/:source_id/observations',
    describeRoute(
      doc({
        summary:
          'Upload an observation (JSON with base64, upload.upload_id of a signed upload or upload.url for observd to fetch when uploads.url_fetch is enabled; or multipart with a file part). Without upload.media_type the type is inferred from the bytes and checked against the file name',
        auth: 'upload',
        body: jsonUploadSchema,
        multipart: multipartObservationSchema,
        response: observationViewSchema,
        status: 201,
      }),
    ),
    uploadAdmission({
      observations,
      accepts: ['json', 'multipart'],
      maxBytes: { json: limits.json, multipart: limits.multipart },
      jsonBudget,
    }),
    async (c) => {
      const { source, kind } = c.get('upload')!;
      let result: IngestResult;
      if (kind === 'multipart') {
        const staged = await readMultipart(c, services, limits);
        result = await observations.ingest(source, staged.fields, staged.blob);
      } else {
        const bytes = await readLimitedBytes(c, limits.json);
        const { body, content } = parseJsonUpload(bytes);
        result = await ingestJsonUpload(services, source, body, content);
      }
      const { observation, replayed } = result;
      c.header('location', `/v1/observations/${observation.observation_id}`);
      if (replayed) c.header('idempotent-replayed', 'true');
      return c.json(observation, replayed ? 200 : 201);
    },
  );

  return app;
}

const CONTENT_KEY = Buffer.from('"content_base64"');
const BACKSLASH = 0x5c;
const QUOTE = 0x22;

/**
 * Parses and validates a JSON upload body. The common shape, one `"content_base64":"…"` with
 * nothing escaped, is parsed without its base64: the envelope around it is parsed and validated
 * alone, and the base64 is taken from the bytes (a flat one-byte string, no JSON string scan, no
 * second copy) and decoded once, strictly (`content`). Anything else (escapes, the key twice or
 * spelt with spaces, a body that does not validate, content that is not strict base64) goes
 * through the plain `JSON.parse` of the whole body, so its errors are exactly that path's own.
 */
export function parseJsonUpload(bytes: Buffer): { body: JsonUpload; content?: Buffer } {
  return parseJsonUploadFast(bytes) ?? { body: parseWith(jsonUploadSchema, parseJson(bytes)) };
}

function parseJsonUploadFast(bytes: Buffer): { body: JsonUpload; content: Buffer } | undefined {
  const key = bytes.indexOf(CONTENT_KEY);
  if (key <= 0 || bytes.lastIndexOf(CONTENT_KEY) !== key || bytes[key - 1] === BACKSLASH) return undefined;
  const start = key + CONTENT_KEY.length + 2;
  if (bytes[start - 2] !== 0x3a /* : */ || bytes[start - 1] !== QUOTE) return undefined;
  const end = bytes.indexOf(QUOTE, start);
  if (end < 0) return undefined;
  // No escapes in the value, and no \u escape anywhere (a key could be spelt with one).
  const slash = bytes.indexOf(BACKSLASH, start);
  if ((slash >= 0 && slash < end) || bytes.indexOf('\\u') >= 0) return undefined;
  let envelope: unknown;
  try {
    envelope = parseJson(Buffer.concat([bytes.subarray(0, start), bytes.subarray(end)]));
  } catch {
    return undefined;
  }
  const r = jsonUploadSchema.safeParse(envelope);
  if (!r.success || r.data.upload.content_base64 !== '') return undefined;
  const base64 = bytes.toString('latin1', start, end);
  r.data.upload.content_base64 = base64;
  try {
    return { body: r.data, content: decodeBase64Strict(base64, 'upload.content_base64') };
  } catch {
    return undefined;
  }
}

/**
 * Stores one JSON upload body (the single route and each batch item): base64 content is decoded
 * and staged, a signed upload's `upload_id` uses the bytes already PUT, a `url` is fetched.
 */
export async function ingestJsonUpload(
  services: RouteDeps['services'],
  source: SourceRow,
  body: JsonUpload,
  /** The content already decoded from `upload.content_base64` (see `parseJsonUpload`). */
  content?: Buffer,
): Promise<IngestResult> {
  const { upload, ...rest } = body;
  if (upload.upload_id !== undefined) return services.signedUploads.ingest(source, upload.upload_id, rest);
  if (upload.url !== undefined) return services.urlImports.ingest(source, { ...upload, url: upload.url }, rest);
  // The schema guarantees file_name and content whenever upload_id is absent.
  const bytes = content ?? decodeBase64Strict(upload.content_base64!, 'upload.content_base64');
  const maxRaw = services.config.limits.max_raw_bytes;
  if (bytes.length > maxRaw) throw new AppError('payload_too_large', `upload content exceeds the limit of ${maxRaw} bytes`);
  const blob: StagedBlob = await services.blobs.stage(bytes);
  return services.observations.ingest(source, { ...rest, file_name: upload.file_name!, media_type: upload.media_type }, blob);
}

async function readMultipart(c: Context, services: RouteDeps['services'], limits: ReturnType<typeof uploadLimits>) {
  const part = await readMultipartUpload(c, services.blobs, {
    maxFileBytes: services.config.limits.max_raw_bytes,
    maxFieldBytes: limits.field,
    maxTotalBytes: limits.multipart,
  });
  try {
    if (part.observation === undefined) throw new AppError('bad_request', 'multipart upload needs an "observation" JSON part');
    const obs = parseWith(multipartObservationSchema, parseJson(Buffer.from(part.observation, 'utf8')), 'observation');
    const { upload, ...rest } = obs;
    const file_name = upload?.file_name ?? part.fileName;
    // No type on the part (or a generic one): inferred from the bytes, like a JSON upload without one.
    const media_type = upload?.media_type ?? (part.mimeType && part.mimeType !== 'application/octet-stream' ? part.mimeType : undefined);
    if (!file_name) {
      throw new AppError('validation_failed', 'a file name is required', {
        errors: [{ path: 'observation.upload.file_name', message: 'required (or a filename on the file part)' }],
      });
    }
    return { fields: { ...rest, file_name, media_type }, blob: part.staged };
  } catch (e) {
    services.blobs.discard(part.staged);
    throw e;
  }
}
