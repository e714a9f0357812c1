import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.js';
import { readLimitedBytes } from './body.js';
import { validationError } from './problem.js';

/** Parses a value with a zod schema; validation_failed with field errors otherwise. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, prefix);
  return r.data;
}

/** Parses the query string; bad_request for a repeated parameter, validation_failed otherwise. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const all = c.req.queries();
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) {
    if (v.length > 1) throw new AppError('bad_request', `query parameter "${k}" is repeated`);
    flat[k] = v[0];
  }
  return parseWith(schema, flat, 'query');
}

/** Parses a path parameter; validation_failed if it is not a safe id. */
export function parseParam<S extends z.ZodType>(c: Context, name: string, schema: S): z.output<S> {
  return parseWith(schema, c.req.param(name), `path.${name}`);
}

/** Reads a JSON body of at most `limit` bytes; payload_too_large, bad_request (not JSON), validation_failed. */
export async function parseJsonBody<S extends z.ZodType>(c: Context, schema: S, limit: number): Promise<z.output<S>> {
  return parseWith(schema, parseJson(await readLimitedBytes(c.req.raw, limit)));
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
