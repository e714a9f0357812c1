import { createHash } from 'node:crypto';
import type { UploadFields } from './schemas.js';

/** JSON with object keys sorted at every depth, so equal values always serialise equally. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/**
 * The request fingerprint: every field of the upload with the content represented by its hash,
 * so the JSON and multipart shapes of one upload fingerprint alike.
 */
export function requestFingerprint(f: UploadFields, contentSha256: string): string {
  const body = canonicalJson({
    file_name: f.file_name,
    media_type: f.media_type,
    content_sha256: contentSha256,
    idempotency_key: f.idempotency_key,
    captured_at_ms: f.captured_at_ms ?? null,
    stream_id: f.stream_id ?? null,
    seq_no: f.seq_no ?? null,
    canonical_text: f.canonical_text ?? null,
    metadata: f.metadata ?? null,
    latitude: f.latitude ?? null,
    longitude: f.longitude ?? null,
    // Only when set, so fingerprints of uploads without it stay what they were.
    origin_url: f.origin_url ?? undefined,
  });
  return sha256Hex(body);
}

/** The hex SHA-256 of a string (the audit trail keeps idempotency keys only as this). */
export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
