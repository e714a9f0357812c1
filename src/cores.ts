import { availableParallelism } from 'node:os';

/**
 * A worker-thread count setting: a number as given, or `auto` for one per core but one (the
 * event loop keeps a core), at least 1 and at most `max`.
 */
export function workerCount(setting: number | 'auto', max: number, cores = availableParallelism()): number {
  return setting === 'auto' ? Math.max(1, Math.min(max, cores - 1)) : setting;
}
