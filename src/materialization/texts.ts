import { getAsset } from '../assets/repo.js';
import type { DerivationService } from '../derivations/service.js';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import type { ObservationRow } from '../observations/repo.js';
import type { ObservationText } from './compose.js';

/** An observation's text: the uploader's, else derived now (OCR, transcription when configured), else why there is none. */
export async function observationText(deps: Deps, derivations: DerivationService, o: ObservationRow): Promise<ObservationText> {
  const unavailable = (note: string): ObservationText => ({ text: null, origin: 'unavailable', assetId: null, note });
  if (o.canonical_text_asset_id) {
    const text = await readText(deps, o.canonical_text_asset_id);
    if (text !== undefined) return { text, origin: 'uploader', assetId: o.canonical_text_asset_id, note: null };
    return unavailable('the uploaded text is no longer stored');
  }
  const audio = o.media_type.startsWith('audio/');
  const none = audio ? 'no transcript is available' : 'no text is available';
  const { base_url, model } = deps.config.transcription;
  if (audio && !(base_url && model)) return unavailable(`${none}: no transcription backend is configured`);
  try {
    const { view, settled } = await derivations.request(
      { profile: 'canonical_text', subject: { type: 'observation', observation_id: o.observation_id } },
      // A paused queue would only run out the wait: take what is there now.
      { wait: !deps.config.derivations.paused },
    );
    if (view.status === 'completed' && view.result_asset_id) {
      const text = await readText(deps, view.result_asset_id);
      if (text !== undefined) return { text, origin: 'derived', assetId: view.result_asset_id, note: null };
    }
    if (!settled) return unavailable(`${none} yet: it is still being derived (derivation ${view.derivation_id})`);
    return unavailable(`${none}: ${view.error ?? 'the derived text is no longer stored'}`);
  } catch (e) {
    // A purge meanwhile is caught again, as gone, when the run is recorded.
    if (e instanceof AppError && e.code !== 'unsupported_derivation') throw e;
    return unavailable(`${none}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The text of a stored asset; undefined when it is gone (or unreadable). */
async function readText(deps: Deps, assetId: string): Promise<string | undefined> {
  const asset = getAsset(deps.db, assetId);
  if (!asset) return undefined;
  try {
    return await deps.blobs.readText(asset.sha256);
  } catch {
    return undefined;
  }
}

/** The text of an observation kept out of a run that leaves the machine. */
export function withheldText(sourceId: string, submitter: string): ObservationText {
  return {
    text: null,
    origin: 'withheld',
    assetId: null,
    note: `withheld: source "${sourceId}" does not allow external processing, and this run goes to the ${submitter} submitter`,
  };
}
