/** The stable error codes of observd; each maps to exactly one HTTP status in `statusOf`. */
export type ErrorCode =
  | 'bad_request'
  | 'validation_failed'
  | 'media_mismatch'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'idempotency_in_flight'
  | 'request_timeout'
  | 'gone'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'idempotency_conflict'
  | 'misdirected_request'
  | 'rate_limited'
  | 'headers_too_large'
  | 'quota_exceeded'
  | 'insufficient_storage'
  | 'unsupported_derivation'
  | 'empty_selection'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation_failed: 400,
  media_mismatch: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  idempotency_in_flight: 409,
  request_timeout: 408,
  gone: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  idempotency_conflict: 422,
  misdirected_request: 421,
  rate_limited: 429,
  headers_too_large: 431,
  quota_exceeded: 507,
  insufficient_storage: 507,
  unsupported_derivation: 400,
  empty_selection: 422,
  internal: 500,
};

const TITLES: Record<ErrorCode, string> = {
  bad_request: 'Bad request',
  validation_failed: 'Validation failed',
  media_mismatch: 'Media type does not match content',
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  conflict: 'Conflict',
  idempotency_in_flight: 'Idempotent request still in flight',
  request_timeout: 'Request body too slow',
  gone: 'Gone',
  payload_too_large: 'Payload too large',
  unsupported_media_type: 'Unsupported media type',
  idempotency_conflict: 'Idempotency key reused with a different request',
  misdirected_request: 'Misdirected request',
  rate_limited: 'Rate limited',
  headers_too_large: 'Request header fields too large',
  quota_exceeded: 'Quota exceeded',
  insufficient_storage: 'Insufficient storage',
  unsupported_derivation: 'Unsupported derivation',
  empty_selection: 'Nothing selected',
  internal: 'Internal error',
};

export interface FieldProblem {
  path: string;
  message: string;
}

/** The one error type of the domain; adapters map `code` to their own vocabulary. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly errors?: FieldProblem[];
  /** Seconds a client should wait before retrying (rate limits). */
  readonly retryAfterSeconds?: number;
  /** A finer reason than the code, in Kheish's vocabulary (`invalid_base64`, `revoked_token`, …), for the audit trail. */
  readonly reason?: string;

  constructor(code: ErrorCode, detail: string, opts: { errors?: FieldProblem[]; retryAfterSeconds?: number; reason?: string } = {}) {
    super(detail);
    this.code = code;
    this.errors = opts.errors;
    this.retryAfterSeconds = opts.retryAfterSeconds;
    this.reason = opts.reason;
  }
}

/** HTTP status for an error code. */
export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Human title for an error code. */
export function titleOf(code: ErrorCode): string {
  return TITLES[code];
}

/** Shorthand for the most common error: not_found naming what is missing. */
export const notFound = (what: string) => new AppError('not_found', `${what} not found`);

const DISK_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT']);

/** True when `e` (or an error it wraps as `cause`) says the disk, or the user's quota on it, is full. */
export function isDiskFull(e: unknown): boolean {
  let x = e;
  for (let depth = 0; x !== null && typeof x === 'object' && depth < 5; depth++) {
    if (x instanceof AppError) return x.code === 'insufficient_storage';
    if (DISK_FULL_CODES.has(String((x as { code?: unknown }).code))) return true;
    x = (x as { cause?: unknown }).cause;
  }
  return false;
}

/** The client-facing form of a full disk (SQLITE_FULL, ENOSPC): insufficient_storage, 507. */
export const diskFull = () =>
  new AppError('insufficient_storage', 'the disk holding the data directory is full; nothing was stored — retry once space is freed');

/** How long background work that hit a full disk waits before it tries again. */
export const DISK_FULL_RETRY_MS = 5_000;
