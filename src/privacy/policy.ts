import type { Config } from '../config/schema.js';
import { type Db, stmt } from '../db/open.js';
import { REDACTION_TYPES, type RedactionType } from './types.js';

/** The PII detectors for a source's canonical text: its own `redact` list, or the config's `privacy.redact` when unset. */
export function redactionFor(config: Config, source: { redact: string | null } | undefined): RedactionType[] {
  const own = source?.redact;
  return normalize(own === null || own === undefined ? config.privacy.redact : (JSON.parse(own) as RedactionType[]));
}

/**
 * The detectors for text derived from an asset, whichever observations hold it: the union over
 * every source with an observation of that asset (content addressing shares bytes across
 * sources, so the strictest wins), or the config default when no observation holds it.
 */
export function redactionForAsset(db: Db, config: Config, assetId: string): RedactionType[] {
  const rows = stmt(
    db,
    `SELECT DISTINCT s.redact FROM observations o JOIN sources s ON s.source_id = o.source_id
     WHERE o.asset_id = ? OR o.canonical_text_asset_id = ?`,
  )
    .pluck()
    .all(assetId, assetId) as Array<string | null>;
  if (rows.length === 0) return normalize(config.privacy.redact);
  return normalize(rows.flatMap((r) => redactionFor(config, { redact: r })));
}

/** Deduplicated, in the canonical order (so cache keys do not depend on how a list was written). */
function normalize(types: readonly RedactionType[]): RedactionType[] {
  return REDACTION_TYPES.filter((t) => types.includes(t));
}

/** The detectors for an observation's canonical text (its source's setting); the config default if it is gone. */
export function redactionForObservation(db: Db, config: Config, observationId: string): RedactionType[] {
  const source = stmt(db, `SELECT s.redact FROM observations o JOIN sources s ON s.source_id = o.source_id WHERE o.observation_id = ?`).get(
    observationId,
  ) as { redact: string | null } | undefined;
  return redactionFor(config, source);
}

/** The detectors for text derived from a subject: its observation's source, else every source holding its asset. */
export function redactionForSubject(
  db: Db,
  config: Config,
  subject: { observationId: string | null; asset: { asset_id: string } },
): RedactionType[] {
  return subject.observationId
    ? redactionForObservation(db, config, subject.observationId)
    : redactionForAsset(db, config, subject.asset.asset_id);
}
