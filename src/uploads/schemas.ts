import { z } from 'zod';

/** The answer to `POST .../upload-urls`. */
export const uploadUrlSchema = z.object({
  upload_id: z.string(),
  upload_url: z.string(),
  expires_at_ms: z.number().int(),
});

/** The query string of an upload URL (all four are covered by the signature). */
export const uploadUrlQuerySchema = z.object({
  source_id: z.string(),
  media_type: z.string(),
  expires_at_ms: z.string(),
  signature: z.string(),
});

/** The answer to a successful `PUT` of an upload's bytes. */
export const receivedUploadSchema = z.object({
  upload_id: z.string(),
  media_type: z.string(),
  sha256: z.string(),
  byte_length: z.number().int(),
  expires_at_ms: z.number().int(),
});
