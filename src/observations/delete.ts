import { recordAudit } from '../audit/repo.js';
import { stmt } from '../db/open.js';
import { commitThenErase, type Deps } from '../deps.js';
import { releaseWithDerivations } from '../assets/repo.js';
import { notFound } from '../errors.js';
import { adjustCounters } from '../sources/repo.js';
import type { ObservationHooks } from './hooks.js';
import { getObservationRow } from './repo.js';

/** Erases an observation now, and every blob nothing else references; not_found if missing. */
export function deleteObservation(deps: Deps, hooks: Pick<ObservationHooks, 'eraseMentions'>, id: string): void {
  const { db, newId } = deps;
  commitThenErase(deps, () => {
    const row = getObservationRow(db, id);
    if (!row) throw notFound(`observation "${id}"`);
    stmt(db, `DELETE FROM observations WHERE observation_id = ?`).run(id);
    if (row.retention_state === 'active') adjustCounters(db, row.source_id, -1, -row.byte_length);
    const runAssets = hooks.eraseMentions([id]);
    const freed = releaseWithDerivations(
      db,
      [id],
      [row.asset_id, ...(row.canonical_text_asset_id ? [row.canonical_text_asset_id] : []), ...runAssets],
    );
    recordAudit(db, newId, deps.now(), 'observation_deleted', {
      source_id: row.source_id,
      observation_id: id,
      detail: { blobs_erased: freed.length, byte_length: row.byte_length },
    });
    deps.events.append('observation.deleted', row.source_id, { observation_id: id, source_id: row.source_id });
    return { result: undefined, freed, erased: true };
  });
}
