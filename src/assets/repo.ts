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

/** Deletes the derivations matching `column = ?` for each value; returns the result assets they held. */
function dropWhere(db: Db, condition: string, values: Iterable<string>): string[] {
  const drop = db.prepare(`DELETE FROM derivations WHERE ${condition} RETURNING result_asset_id`).pluck();
  const results: string[] = [];
  for (const v of values) for (const r of drop.all(v) as Array<string | null>) if (r) results.push(r);
  return results;
}

/**
 * `releaseAssets` for erasures that take derivations with them, inside the caller's
 * transaction: drops the derivations of `observationIds`, then releases `assetIds` and those
 * derivations' results, and drops (and releases) derivations whose subject asset was freed,
 * until nothing more goes. Returns the hashes of blobs to erase after commit. It lives with the
 * assets (as `HOLDERS` does) because a derivation row is bound to its assets the way a foreign
 * key with ON DELETE CASCADE would be: every domain that erases content (sources, observations,
 * retention, runs) calls it without depending on the derivations domain.
 */
export function releaseWithDerivations(db: Db, observationIds: Iterable<string>, assetIds: Iterable<string>): string[] {
  let pending = [...assetIds, ...dropWhere(db, 'subject_observation_id = ?', observationIds)];
  const freed: string[] = [];
  while (pending.length) {
    const shas = releaseAssets(db, pending);
    freed.push(...shas);
    pending = dropWhere(db, `subject_type = 'asset' AND subject_asset_id = ?`, shas.map(assetIdOf));
  }
  return freed;
}

/**
 * True when the asset, or anything it was derived from (transitively), belongs to an
 * observation of a sensitive source, or is the journal text of a run that
 * involved one. An asset's lineage across the tables that hold it (see `HOLDERS`), read by
 * `AssetService.content` to decide who may read the bytes.
 */
export function isDerivedFromSensitive(db: Db, assetId: string): boolean {
  return (
    stmt(
      db,
      `WITH RECURSIVE lineage(id) AS (
           SELECT ? UNION SELECT d.subject_asset_id FROM derivations d JOIN lineage l ON d.result_asset_id = l.id
         )
         SELECT 1 FROM lineage l JOIN observations o ON o.asset_id = l.id OR o.canonical_text_asset_id = l.id
         WHERE o.sensitivity = 'sensitive'
         UNION ALL
         SELECT 1 FROM lineage l JOIN session_inputs si ON si.text_asset_id = l.id JOIN runs r ON r.run_id = si.run_id
         WHERE r.sensitivity = 'sensitive'
         LIMIT 1`,
    ).get(assetId) !== undefined
  );
}

/**
 * Erases published blobs whose write never committed: those no row claims and no other write in
 * flight has pinned. Used after a failed publish or commit.
 */
export function discardUnclaimed(db: Db, blobs: BlobStore, shas: Iterable<string>): void {
  for (const sha of shas) if (!blobs.isPinned(sha) && !getAsset(db, assetIdOf(sha))) blobs.removeSync(sha);
}
