import type { ZodError } from 'zod';
import { AppError, diskFull, isDiskFull, statusOf, titleOf, type ErrorCode, type FieldProblem } from '../errors.js';

/** The problem+json body of an error code: type, title, status, detail and code. */
export function problemBody(code: ErrorCode, detail: string): Record<string, unknown> {
  return { type: `https://observd.dev/problems/${code}`, title: titleOf(code), status: statusOf(code), detail, code };
}

/** Builds an `application/problem+json` response for an error code. */
export function problemResponse(
  code: ErrorCode,
  detail: string,
  errors?: FieldProblem[],
  headers: Record<string, string> = {},
  domain?: string,
): Response {
  const status = statusOf(code);
  const body = problemBody(code, detail);
  if (domain) body.domain = domain;
  if (errors?.length) body.errors = errors;
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
}

/** The response for any thrown value: AppErrors keep their code, a full disk is 507; anything else is a bare 500. `domain` as Kheish sets it. */
export function toProblem(err: unknown, domain?: string): Response {
  if (!(err instanceof AppError) && isDiskFull(err)) err = diskFull();
  if (err instanceof AppError) {
    const headers: Record<string, string> = {};
    if (err.retryAfterSeconds !== undefined) headers['retry-after'] = String(err.retryAfterSeconds);
    // No `Connection: close` on payload_too_large: closing right after answering, with the unread
    // body still arriving, makes the kernel reset the connection and the client often loses the
    // 413. @hono/node-server drains what is left (bounded: 64 MiB / 500 ms) and then closes.
    return problemResponse(err.code, err.message, err.errors, headers, domain);
  }
  return problemResponse('internal', 'an internal error occurred', undefined, {}, domain);
}

/** Turns zod issues into a validation_failed AppError with field paths. */
export function validationError(err: ZodError, prefix = ''): AppError {
  const errors = err.issues.map((i) => ({
    path: [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(body)',
    message: i.message,
  }));
  return new AppError('validation_failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
}
