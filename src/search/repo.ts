import { stmt, type Db } from '../db/open.js';

/**
 * Puts (or replaces) an observation's canonical text in the search index, inside the caller's
 * transaction; an observation that is not active (purged, deleted) is not indexed, and blank text
 * leaves nothing in the index.
 */
export function indexText(db: Db, observationId: string, text: string): void {
  if (!/[\p{L}\p{N}]/u.test(text)) {
    stmt(db, `DELETE FROM search_documents WHERE observation_id = ?`).run(observationId);
    return;
  }
  stmt(
    db,
    `INSERT INTO search_documents (observation_id, body)
     SELECT @id, @text WHERE EXISTS (SELECT 1 FROM observations WHERE observation_id = @id AND retention_state = 'active')
     ON CONFLICT (observation_id) DO UPDATE SET body = excluded.body WHERE body <> excluded.body`,
  ).run({ id: observationId, text });
}

/**
 * Drops the text observd computed (OCR, transcript) for an observation from the index when that
 * text is gone (its derivation failed on a recomputation); uploader text stays.
 */
export function unindexComputedText(db: Db, observationId: string): void {
  stmt(
    db,
    `DELETE FROM search_documents WHERE observation_id = @id
       AND EXISTS (SELECT 1 FROM observations WHERE observation_id = @id AND canonical_text_asset_id IS NULL)`,
  ).run({ id: observationId });
}
