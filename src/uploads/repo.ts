import { stmt, type Db } from '../db/open.js';

/** A signed upload as stored. */
export interface UploadRow {
  upload_id: string;
  source_id: string;
  media_type: string;
  file_name: string;
  state: 'pending' | 'received' | 'used' | 'expired';
  expires_at_ms: number;
  created_at_ms: number;
  received_at_ms: number | null;
  sha256: string | null;
  byte_length: number | null;
  observation_id: string | null;
}

/** Reads an upload row; undefined if missing. */
export function getUploadRow(db: Db, uploadId: string): UploadRow | undefined {
  return stmt(db, `SELECT * FROM uploads WHERE upload_id = ?`).get(uploadId) as UploadRow | undefined;
}

/** Records a newly minted upload (state `pending`). */
export function insertUpload(
  db: Db,
  row: Pick<UploadRow, 'upload_id' | 'source_id' | 'media_type' | 'file_name' | 'expires_at_ms' | 'created_at_ms'>,
): void {
  stmt(
    db,
    `INSERT INTO uploads (upload_id, source_id, media_type, file_name, state, expires_at_ms, created_at_ms)
     VALUES (@upload_id, @source_id, @media_type, @file_name, 'pending', @expires_at_ms, @created_at_ms)`,
  ).run(row);
}

/** Marks a pending upload's bytes received; false when it was no longer pending. */
export function markReceived(db: Db, uploadId: string, sha256: string, byteLength: number, now: number): boolean {
  return (
    stmt(
      db,
      `UPDATE uploads SET state = 'received', sha256 = ?, byte_length = ?, received_at_ms = ? WHERE upload_id = ? AND state = 'pending'`,
    ).run(sha256, byteLength, now, uploadId).changes === 1
  );
}

/** Marks a received upload used by an observation; false when it was not in `received` state. */
export function markUsed(db: Db, uploadId: string, observationId: string): boolean {
  return (
    stmt(db, `UPDATE uploads SET state = 'used', observation_id = ? WHERE upload_id = ? AND state = 'received'`).run(
      observationId,
      uploadId,
    ).changes === 1
  );
}

/** Ids of unused uploads that expired at or before `now`. */
export function expiredUnused(db: Db, now: number, limit: number): string[] {
  return stmt(db, `SELECT upload_id FROM uploads WHERE state IN ('pending', 'received') AND expires_at_ms <= ? LIMIT ?`)
    .pluck()
    .all(now, limit) as string[];
}

/** Marks uploads expired. */
export function markExpired(db: Db, uploadIds: readonly string[]): void {
  const update = stmt(db, `UPDATE uploads SET state = 'expired' WHERE upload_id = ? AND state IN ('pending', 'received')`);
  for (const id of uploadIds) update.run(id);
}

/** Deletes tombstones (used or expired uploads) that expired before `before`; returns how many. */
export function deleteTombstones(db: Db, before: number): number {
  return stmt(db, `DELETE FROM uploads WHERE state IN ('used', 'expired') AND expires_at_ms < ?`).run(before).changes;
}

/** Ids of uploads whose bytes should be on disk. */
export function receivedIds(db: Db): Set<string> {
  return new Set(stmt(db, `SELECT upload_id FROM uploads WHERE state = 'received'`).pluck().all() as string[]);
}
