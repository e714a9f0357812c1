import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.js';
import { LOOKUP_ID } from '../ids.js';
import type { AppEnv } from './auth.js';
import { readLimitedBytes, requestOf, type BodySource } from './body.js';
import { isJsonType } from './browser-guard.js';
import { validationError } from './problem.js';

/** Parses a value with a zod schema; validation_failed with field errors otherwise. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, prefix);
  return r.data;
}

/**
 * Parses the query string; bad_request for a repeated parameter (unless listed in `repeatable`,
 * whose values reach the schema as an array when repeated), validation_failed otherwise.
 */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S, repeatable: readonly string[] = []): z.output<S> {
  const all = c.req.queries();
  const flat: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(all)) {
    if (v.length > 1 && !repeatable.includes(k)) throw new AppError('bad_request', `query parameter "${k}" is repeated`);
    flat[k] = v.length > 1 ? v : v[0];
  }
  return parseWith(schema, flat, 'query');
}

/** Parses a path parameter; validation_failed if it is not a safe id. */
export function parseParam<S extends z.ZodType>(c: Context, name: string, schema: S): z.output<S> {
  return parseWith(schema, c.req.param(name), `path.${name}`);
}

/**
 * Reads a JSON body of at most `limit` bytes at the request's minimum rate; unsupported_media_type
 * for another content type, payload_too_large, request_timeout (too slow), bad_request (not JSON),
 * validation_failed.
 */
export async function parseJsonBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S, limit: number): Promise<z.output<S>> {
  requireJsonType(c.req.raw);
  return parseWith(schema, parseJson(await readLimitedBytes(c, limit)));
}

/** unsupported_media_type unless the request declares a JSON body (or declares no type and has none). */
export function requireJsonType(req: Request): void {
  const type = (req.headers.get('content-type') ?? '').toLowerCase();
  if (type !== '' && !isJsonType(type)) throw new AppError('unsupported_media_type', 'send the body as application/json');
}

/** A JSON body that may be absent or empty (`{}` is assumed then), at the request's minimum rate; unsupported_media_type for another type, bad_request when it is not JSON. */
export async function readOptionalJsonBody(from: BodySource, limit: number): Promise<unknown> {
  requireJsonType(requestOf(from));
  const bytes = await readLimitedBytes(from, limit);
  return bytes.length === 0 ? {} : parseJson(bytes);
}

/** Deepest nesting of arrays/objects a JSON body may have (deeper would overflow recursive serialisers). */
export const MAX_JSON_DEPTH = 64;

/** JSON.parse that answers bad_request, also for nesting deeper than `MAX_JSON_DEPTH`. */
export function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) throw new AppError('bad_request', 'request body is empty; a JSON object is required');
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new AppError('bad_request', 'request body is not valid JSON');
  }
  if (jsonDepth(value) > MAX_JSON_DEPTH) throw new AppError('bad_request', `JSON is nested deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}

/** Nesting depth of a parsed JSON value, computed without recursion. */
function jsonDepth(root: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/**
 * An id from the path, to look up as an opaque string: one of a form observd never issues (or
 * too long, or with odd characters) is not_found, never a 400 — and is never used for a path on disk.
 */
export function pathId(c: Context, name: string, what = name.replace(/_id$/, '')): string {
  const id = c.req.param(name) ?? '';
  if (!LOOKUP_ID.test(id)) throw new AppError('not_found', `${what} "${id.slice(0, 64)}" not found`);
  return id;
}
