import type { Db } from '../db/open.js';
import type { SourceRow, SourceWriteRow } from '../sources/repo.js';
import type { ObservationView } from './schemas.js';

/** What a quota eviction did: hashes of blobs to erase after commit, and how many rows it erased. */
export interface Eviction {
  freed: string[];
  erased: number;
}

/**
 * What observations ask of the domains built on them (search, retention, derivations), wired by
 * `openStore`: each of those reads observations, so an import back would make a cycle (see
 * docs/architecture.md, "Dependencies between domains"). All but `afterCreate` are required, so
 * no store can be built that uploads without indexing, or deletes without erasing what mentions
 * the observation.
 */
export interface ObservationHooks {
  /** Runs after an upload committed (never inside its transaction). */
  afterCreate?: (observation: ObservationView, source: SourceRow) => void;
  /** Indexes an upload's (redacted) canonical text for search, inside the upload's transaction. */
  indexText: (db: Db, observationId: string, text: string) => void;
  /**
   * Under `evict_oldest`, purges the source's oldest active observations until one more of
   * `bytes` fits, inside the upload's transaction.
   */
  evictFor: (source: SourceWriteRow, bytes: number, now: number) => Eviction;
  /**
   * Scrubs what other tables keep of observations being deleted, inside the delete's transaction;
   * returns the asset ids that were held for them, for the delete to release.
   */
  eraseMentions: (observationIds: string[]) => string[];
}
