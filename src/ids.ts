import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import { z } from 'zod';

/**
 * A cryptographic PRNG for ulid that draws from a pooled buffer: one `randomFillSync` per 4 KiB
 * instead of one per random character.
 */
function pooledPrng(): () => number {
  const pool = Buffer.alloc(4096);
  let at = pool.length;
  return () => {
    if (at >= pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    return pool[at++] / 256;
  };
}

/** Creates a generator of sortable prefixed ids (`obs_01J…`); monotonic within one millisecond. */
export function idFactory(now: () => number) {
  const ulid = monotonicFactory(pooledPrng());
  return (prefix: 'src' | 'obs' | 'der' | 'run' | 'upl' | 'evt' | 'aud') => `${prefix}_${ulid(now())}`;
}
export type NewId = ReturnType<typeof idFactory>;

const SAFE = /^[A-Za-z0-9._-]{1,128}$/;
const SAFE_STREAM = /^[A-Za-z0-9._:-]{1,128}$/;
const notDots = (s: string) => s !== '.' && s !== '..';

/** A path-safe source id: 1–128 of [A-Za-z0-9._-], never `.` or `..`. */
export const sourceIdSchema = z
  .string()
  .regex(SAFE, 'must be 1-128 characters of [A-Za-z0-9._-]')
  .refine(notDots, 'must not be "." or ".."');

/** A path-safe stream id: like a source id, `:` also allowed. */
export const streamIdSchema = z
  .string()
  .regex(SAFE_STREAM, 'must be 1-128 characters of [A-Za-z0-9._:-]')
  .refine(notDots, 'must not be "." or ".."');
