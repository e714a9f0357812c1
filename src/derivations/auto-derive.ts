import type { Db } from '../db/open.js';
import type { Deps } from '../deps.js';
import type { Logger } from '../logger.js';
import type { ObservationView } from '../observations/schemas.js';
import { getSourceRow } from '../sources/repo.js';
import type { DerivationProfile } from './schemas.js';

/** What auto_derive needs of a new observation. */
export type Uploaded = Pick<ObservationView, 'observation_id' | 'source_id' | 'processing_status'>;

/**
 * Records the source's current `auto_derive` profiles for a new observation through `derive`
 * (the upload hook). Never throws: the upload has committed already. A derivation that cannot
 * be created marks the observation's processing_status failed; with nothing to derive it is
 * completed.
 */
export function autoDerive(
  deps: Deps,
  logger: Pick<Logger, 'error'> | undefined,
  observation: Uploaded,
  derive: (profile: DerivationProfile, observationId: string) => void,
): void {
  if (observation.processing_status === null) return;
  const id = observation.observation_id;
  const setStatus = (s: 'completed' | 'failed') =>
    deps.db.prepare(`UPDATE observations SET processing_status = ? WHERE observation_id = ? AND processing_status IS NOT NULL`).run(s, id);
  try {
    const source = getSourceRow(deps.db, observation.source_id);
    const profiles = source ? (JSON.parse(source.auto_derive) as DerivationProfile[]) : [];
    if (profiles.length === 0) setStatus('completed');
    for (const profile of profiles) {
      try {
        derive(profile, id);
      } catch (err) {
        logger?.error({ err, observation_id: id, profile }, 'auto_derive could not start');
        setStatus('failed');
      }
    }
  } catch (err) {
    logger?.error({ err, observation_id: id }, 'auto_derive failed');
  }
}

/** Observations whose upload committed but whose auto_derive derivations were never recorded (a crash between the two). */
export function listUnrecordedAutoDerive(db: Db): Uploaded[] {
  return db
    .prepare(
      `SELECT observation_id, source_id, processing_status FROM observations o
       WHERE processing_status IN ('pending', 'processing') AND retention_state = 'active'
         AND NOT EXISTS (SELECT 1 FROM derivations d WHERE d.subject_observation_id = o.observation_id AND d.auto_derive = 1)`,
    )
    .all() as Uploaded[];
}
