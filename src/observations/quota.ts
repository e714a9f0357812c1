import { AppError, notFound } from '../errors.js';
import type { SourceWriteRow } from '../sources/repo.js';

/** Whether one more observation of `bytes` fits the source's active quota. */
export function fitsQuota(source: SourceWriteRow, bytes: number): boolean {
  return (
    source.active_observation_count + 1 <= source.max_active_observations && source.active_byte_length + bytes <= source.max_active_bytes
  );
}

/** Refuses an upload a `reject`-policy source has no room for (quota_exceeded); not_found if the source is gone. */
export function assertQuotaRoom(source: SourceWriteRow | undefined, sourceId: string, bytes: number): asserts source is SourceWriteRow {
  if (!source) throw notFound(`observation source "${sourceId}"`);
  if (source.quota_policy === 'reject' && !fitsQuota(source, bytes)) {
    throw new AppError(
      'quota_exceeded',
      `source "${sourceId}" is at its quota (${source.active_observation_count}/${source.max_active_observations} observations, ${source.active_byte_length}/${source.max_active_bytes} bytes)`,
    );
  }
}
