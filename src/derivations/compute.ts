import type { Deps } from '../deps.js';
import { redactionForSubject } from '../privacy/policy.js';
import { redact } from '../privacy/redact.js';
import { externalProcessingDeniedBy } from '../sources/repo.js';
import { assertDecodable } from './image-size.js';
import { OCR_LANGUAGE, type OcrPool } from './ocr.js';
import { planFor } from './plan.js';
import { getObservationRow } from '../observations/repo.js';
import { getSourceRow } from '../sources/repo.js';
import { imagePreview, waveformPreview } from './preview.js';
import type { DerivationRow } from './repo.js';
import type { DerivationBackend } from './schemas.js';
import type { ScreenText, TextFrom } from './screen-text.js';
import { resolveSubject, type ResolvedSubject } from './subjects.js';
import type { Transcriber } from './transcribe.js';
import { isSilent, parseWav } from './wav.js';

/** What a computation produced: an asset the subject already has, or new bytes. */
export type Outcome =
  | { kind: 'reuse'; assetId: string }
  | { kind: 'produced'; bytes: Buffer; mediaType: string; backend: DerivationBackend | null; textFrom?: TextFrom };

export interface DerivationEngines {
  ocr: OcrPool;
  transcriber: Transcriber;
  /** Incremental text of screen capture streams; absent when `derivations.screen_ocr.incremental` is off. */
  screen?: ScreenText;
}

/** How one job runs: `full` asks for whole-frame OCR (force_refresh); `park` tells the queue the job is only waiting. */
export interface ComputeContext {
  deps: Deps;
  engines: DerivationEngines;
  signal: AbortSignal;
  full?: boolean;
  park?: () => void;
}

/** The subject's source does not allow its data to go to the external backend this derivation needs. */
export class ExternalProcessingWithheld extends Error {}

/** A failure that happened after a backend was called: the record names the backend. */
export class BackendFailure extends Error {
  constructor(
    message: string,
    readonly backend: DerivationBackend | null,
  ) {
    super(message);
  }
}

const TEXT_MEDIA_TYPE = 'text/plain; charset=utf-8';
const OCR_BACKEND: DerivationBackend = { kind: 'tesseract', model: OCR_LANGUAGE };

/** The one place canonical text is produced (OCR, reused screen text and transcripts alike). */
const text = (s: string, backend: DerivationBackend | null): Extract<Outcome, { kind: 'produced' }> => ({
  kind: 'produced',
  bytes: Buffer.from(s.replace(/\s+$/, ''), 'utf8'),
  mediaType: TEXT_MEDIA_TYPE,
  backend,
});

/**
 * The stream a screen capture observation belongs to, as the screen text tracker's lane: text
 * is shared only between frames of one (source, stream) pair. Undefined for other subjects.
 */
function screenLane(ctx: ComputeContext, subject: ResolvedSubject): string | undefined {
  if (!ctx.engines.screen || !subject.observationId) return undefined;
  const obs = getObservationRow(ctx.deps.db, subject.observationId);
  if (obs?.kind !== 'screen_snapshot') return undefined;
  // The source's creation time too: a source deleted and created again under its id is another source.
  const source = getSourceRow(ctx.deps.db, obs.source_id);
  if (!source) return undefined;
  return JSON.stringify([obs.source_id, source.created_at_ms, obs.stream_id]);
}

/**
 * Computes one derivation's result from its subject as stored now, outside any transaction;
 * throws an Error (a BackendFailure once a backend was involved) whose message becomes the
 * record's `error`.
 */
export async function computeDerivation(ctx: ComputeContext, row: DerivationRow): Promise<Outcome> {
  const { db, config, blobs } = ctx.deps;
  const subject = resolveSubject(db, JSON.parse(row.subject));
  const plan = planFor(row.profile, subject);
  if (plan.kind === 'reuse') return { kind: 'reuse', assetId: plan.assetId };
  let bytes: Buffer;
  try {
    bytes = await blobs.read(subject.asset.sha256);
  } catch {
    throw new Error(`the content of ${subject.key} is no longer stored`);
  }
  // Canonical text is redacted before it is stored: nothing downstream (index, runs, API) sees the PII.
  const redacted = (o: Outcome): Outcome => {
    if (o.kind !== 'produced') return o;
    const types = redactionForSubject(db, config, subject);
    return types.length ? { ...o, bytes: Buffer.from(redact(o.bytes.toString('utf8'), types), 'utf8') } : o;
  };
  switch (plan.kind) {
    case 'ocr': {
      assertDecodable(bytes, config.derivations.max_image_pixels);
      const lane = screenLane(ctx, subject);
      let recognized: Outcome;
      try {
        if (lane && ctx.engines.screen) {
          const frame = { lane, observationId: subject.observationId!, sha256: subject.asset.sha256, bytes };
          const t = ctx.full ? await ctx.engines.screen.wholeText(bytes) : await ctx.engines.screen.textOf(frame, ctx.park);
          recognized = { ...text(t.text, OCR_BACKEND), textFrom: t.from };
        } else {
          recognized = text(await ctx.engines.ocr.recognize(bytes), OCR_BACKEND);
        }
      } catch (e) {
        throw new BackendFailure(`OCR failed: ${messageOf(e)}`, OCR_BACKEND);
      }
      return redacted(recognized);
    }
    case 'transcribe':
      return redacted(
        await transcribe(ctx.engines.transcriber, row, subject, bytes, ctx.signal, externalProcessingDeniedBy(db, subject.asset.asset_id)),
      );
    case 'image_preview': {
      const p = await imagePreview(bytes, config.derivations.max_image_pixels);
      return { kind: 'produced', bytes: p.bytes, mediaType: p.mediaType, backend: null };
    }
    case 'waveform': {
      const p = await waveformPreview(bytes, subject.mediaType);
      return { kind: 'produced', bytes: p.bytes, mediaType: p.mediaType, backend: null };
    }
  }
}

async function transcribe(
  transcriber: Transcriber,
  row: DerivationRow,
  subject: ResolvedSubject,
  bytes: Buffer,
  signal: AbortSignal,
  deniedBy: string | undefined,
): Promise<Outcome> {
  // Digital silence has no words: no need to ship it anywhere.
  if (subject.mediaType === 'audio/wav' && silentWav(bytes)) return text('', null);
  if (row.backend_identity !== transcriber.identity) {
    throw new Error('the transcription backend changed since this derivation was requested; request it again');
  }
  const reason = transcriber.unavailableReason;
  if (reason) throw new Error(reason);
  if (deniedBy !== undefined) {
    throw new ExternalProcessingWithheld(
      `withheld from the transcription backend: source "${deniedBy}" does not allow external processing (set allow_external_processing to true to allow it, then retry with retry_failed=true)`,
    );
  }
  try {
    return text(await transcriber.transcribe(bytes, subject.mediaType, signal), transcriber.backend);
  } catch (e) {
    throw new BackendFailure(messageOf(e), transcriber.backend);
  }
}

function silentWav(bytes: Buffer): boolean {
  try {
    return isSilent(parseWav(bytes));
  } catch {
    return false; // not decodable here: let the backend judge it
  }
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
