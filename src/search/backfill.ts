import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import { indexText } from './repo.js';

/** How many observations one backfill step looks at. */
export const BACKFILL_BATCH = 500;

/**
 * One step of indexing the canonical text a store held before it had a search index (migration
 * 011): the next `batch` observations after the stored cursor, uploader text or the completed
 * canonical_text derivation, read (and in an encrypted store decrypted) from their blobs. Resolves
 * with how many were indexed, and whether the walk is over (then the cursor row is gone and
 * later calls do nothing).
 */
export async function backfillSearchIndex(
  deps: Pick<Deps, 'db' | 'blobs'>,
  batch = BACKFILL_BATCH,
): Promise<{ indexed: number; done: boolean }> {
  const { db, blobs } = deps;
  const cursor = stmt(db, `SELECT after_observation_id FROM search_backfill WHERE id = 1`).pluck().get() as string | undefined;
  if (cursor === undefined) return { indexed: 0, done: true };
  const rows = stmt(
    db,
    `SELECT t.observation_id, a.sha256 FROM (
       SELECT o.observation_id,
         coalesce(o.canonical_text_asset_id, (SELECT d.result_asset_id FROM derivations d
           WHERE d.subject_observation_id = o.observation_id AND d.profile = 'canonical_text' AND d.status = 'completed'
             AND d.result_asset_id IS NOT NULL ORDER BY d.updated_at_ms DESC LIMIT 1)) AS text_asset_id
       FROM observations o WHERE o.observation_id > ? ORDER BY o.observation_id LIMIT ?
     ) t LEFT JOIN assets a ON a.asset_id = t.text_asset_id
     ORDER BY t.observation_id`,
  ).all(cursor, batch) as Array<{ observation_id: string; sha256: string | null }>;
  const texts: Array<[string, string]> = [];
  for (const r of rows) {
    if (!r.sha256) continue;
    try {
      texts.push([r.observation_id, await blobs.readText(r.sha256)]);
    } catch {
      // Erased meanwhile: nothing to index.
    }
  }
  const done = rows.length < batch;
  db.transaction(() => {
    const has = stmt(db, `SELECT 1 FROM search_documents WHERE observation_id = ?`).pluck();
    // indexText skips observations that are no longer active; text indexed since (by an upload
    // or a derivation) is newer than what the blob held at the read, so it is kept.
    for (const [id, text] of texts) if (!has.get(id)) indexText(db, id, text);
    if (done) stmt(db, `DELETE FROM search_backfill WHERE id = 1`).run();
    else stmt(db, `UPDATE search_backfill SET after_observation_id = ? WHERE id = 1`).run(rows[rows.length - 1].observation_id);
  })();
  return { indexed: texts.length, done };
}
