import type { BlobStore } from './blob-store.js';
import { stmt, type Db } from '../db/open.js';

export interface AssetRow {
  asset_id: string;
  sha256: string;
  media_type: string;
  byte_length: number;
  created_at_ms: number;
}

/** The content address of some bytes, as an asset id. */
export function assetIdOf(sha256: string): string {
  return `ast_${sha256}`;
}

/** Records an asset row for published bytes; a row for the same bytes is kept as it is. */
export function ensureAsset(db: Db, sha256: string, mediaType: string, byteLength: number, now: number): string {
  const id = assetIdOf(sha256);
  stmt(db, `INSERT OR IGNORE INTO assets (asset_id, sha256, media_type, byte_length, created_at_ms) VALUES (?, ?, ?, ?, ?)`).run(
    id,
    sha256,
    mediaType,
    byteLength,
    now,
  );
  return id;
}

/** Reads one asset row; undefined if missing. */
export function getAsset(db: Db, assetId: string): AssetRow | undefined {
  return stmt(db, `SELECT * FROM assets WHERE asset_id = ?`).get(assetId) as AssetRow | undefined;
}

/**
 * The one list of things that keep a blob alive. Each query takes the asset id once per `?`.
 * Later domains (derivations, runs) add their holders here, not beside it.
 */
const HOLDERS = [
  `SELECT 1 FROM observations WHERE asset_id = ? AND blobs_held = 1`,
  `SELECT 1 FROM observations WHERE canonical_text_asset_id = ? AND blobs_held = 1`,
  // A derivation holds the result it made; a reused subject asset stays its subject's to hold.
  `SELECT 1 FROM derivations WHERE result_asset_id = ? AND reused_subject_asset = 0`,
  // A queued or running run holds the raw assets it will hand over (rows go when it finishes).
  `SELECT 1 FROM run_assets WHERE asset_id = ?`,
  // A session's input journal holds each input's text.
  `SELECT 1 FROM session_inputs WHERE text_asset_id = ?`,
];

/** True when anything still needs this asset's bytes. */
export function isAssetHeld(db: Db, assetId: string): boolean {
  return HOLDERS.some((sql) => stmt(db, `${sql} LIMIT 1`).get(assetId) !== undefined);
}

/**
 * Deletes the rows of the given assets that nothing holds any more, inside the caller's
 * transaction, and returns their hashes: the caller erases those blobs after commit.
 */
export function releaseAssets(db: Db, assetIds: Iterable<string>): string[] {
  const freed: string[] = [];
  for (const id of new Set(assetIds)) {
    if (isAssetHeld(db, id)) continue;
    const row = stmt(db, `DELETE FROM assets WHERE asset_id = ? RETURNING sha256`).get(id) as { sha256: string } | undefined;
    if (row) freed.push(row.sha256);
  }
  return freed;
}

/**
 * Erases published blobs whose write never committed: those no row claims and no other write in
 * flight has pinned. Used after a failed publish or commit.
 */
export function discardUnclaimed(db: Db, blobs: BlobStore, shas: Iterable<string>): void {
  for (const sha of shas) if (!blobs.isPinned(sha) && !getAsset(db, assetIdOf(sha))) blobs.removeSync(sha);
}
