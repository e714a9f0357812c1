import type { BlobStore } from './assets/blob-store.js';
import type { Clock } from './clock.js';
import type { Config } from './config/schema.js';
import { checkpointTruncate, type Db, type WalSync } from './db/open.js';
import type { Outbox } from './events/outbox.js';
import type { NewId } from './ids.js';

/** What every domain service needs; built once in `createDaemon` (or a test) and passed down. */
export interface Deps {
  db: Db;
  now: Clock;
  newId: NewId;
  blobs: BlobStore;
  config: Config;
  /** The transactional event outbox (append inside the transaction that makes the change). */
  events: Outbox;
  /** Makes commits durable against power loss (see `WalSync`). */
  wal: WalSync;
}

/**
 * Runs `work` in one transaction, then erases the blobs it freed: side effects only after the
 * commit is durable, so a power cut can never bring back a row whose blob is already gone.
 * When `work` says it `erased` content (rows deleted or scrubbed), the log is checkpointed and
 * truncated too, so no old copy of that content survives in it (`secure_delete` zeroes the
 * database pages themselves).
 */
export function commitThenErase<T>(deps: Deps, work: () => { result: T; freed: string[]; erased?: boolean }): T {
  const { result, freed, erased } = deps.db.transaction(work)();
  if (freed.length) {
    deps.wal.syncNow();
    for (const sha of freed) deps.blobs.removeSync(sha);
  }
  if (erased) checkpointTruncate(deps.db);
  return result;
}
