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

/** The prefixes of the ids observd issues. */
export type IdPrefix = 'src' | 'obs' | 'der' | 'run' | 'upl' | 'evt' | 'aud';

/** Creates a generator of sortable prefixed ids (`obs_01J…`); monotonic within one millisecond. */
export function idFactory(now: () => number) {
  const ulid = monotonicFactory(pooledPrng());
  return (prefix: IdPrefix) => `${prefix}_${ulid(now())}`;
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

/** The shape of an id observd issued with `prefix`: the prefix, `_` and a ULID (26 Crockford base-32 characters). */
const issuedId = (prefix: IdPrefix) => new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`);

/** An upload id as `POST /v1/upload-urls` issues it (`upl_` and a ULID). */
export const uploadIdSchema = z.string().regex(issuedId('upl'), 'must be an upload id (upl_ followed by a ULID)');

/** An event id as the outbox numbers events: a sequence number (`last_event_id`, `Last-Event-ID`). */
export const EVENT_ID = /^\d{1,15}$/;
export const eventIdSchema = z.string().regex(EVENT_ID, 'must be an event id (a sequence number)');

/**
 * What an id in a URL path may look like to be looked up at all (observation, derivation, asset,
 * run and source ids alike): anything else is simply unknown, never a 400.
 */
export const LOOKUP_ID = /^[A-Za-z0-9._:~-]{1,256}$/;
