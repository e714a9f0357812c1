import { readFile } from 'node:fs/promises';
import type { Deps } from '../deps.js';
import { redactionForSubject } from '../privacy/policy.js';
import { redact } from '../privacy/redact.js';
import { assertDecodable } from './image-size.js';
import { OCR_LANGUAGE, type OcrPool } from './ocr.js';
import { planFor } from './plan.js';
import { imagePreview, waveformPreview } from './preview.js';
import type { DerivationRow } from './repo.js';
import type { DerivationBackend } from './schemas.js';
import { resolveSubject, type ResolvedSubject } from './subjects.js';
import type { Transcriber } from './transcribe.js';
import { isSilent, parseWav } from './wav.js';

/** What a computation produced: an asset the subject already has, or new bytes. */
export type Outcome =
  | { kind: 'reuse'; assetId: string }
  | { kind: 'produced'; bytes: Buffer; mediaType: string; backend: DerivationBackend | null };

export interface DerivationEngines {
  ocr: OcrPool;
  transcriber: Transcriber;
}

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

const text = (s: string, backend: DerivationBackend | null): Outcome => ({
  kind: 'produced',
  bytes: Buffer.from(s.replace(/\s+$/, ''), 'utf8'),
  mediaType: TEXT_MEDIA_TYPE,
  backend,
});

/**
 * Computes one derivation's result from its subject as stored now, outside any transaction;
 * throws an Error (a BackendFailure once a backend was involved) whose message becomes the
 * record's `error`.
 */
export async function computeDerivation(
  ctx: { deps: Deps; engines: DerivationEngines; signal: AbortSignal },
  row: DerivationRow,
): Promise<Outcome> {
  const { db, config, blobs } = ctx.deps;
  const subject = resolveSubject(db, JSON.parse(row.subject));
  const plan = planFor(row.profile, subject);
  if (plan.kind === 'reuse') return { kind: 'reuse', assetId: plan.assetId };
  let bytes: Buffer;
  try {
    bytes = await readFile(blobs.pathOf(subject.asset.sha256));
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
      let recognized: string;
      try {
        recognized = await ctx.engines.ocr.recognize(bytes);
      } catch (e) {
        throw new BackendFailure(`OCR failed: ${messageOf(e)}`, OCR_BACKEND);
      }
      return redacted(text(recognized, OCR_BACKEND));
    }
    case 'transcribe':
      return redacted(await transcribe(ctx.engines.transcriber, row, subject, bytes, ctx.signal));
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
): Promise<Outcome> {
  // Digital silence has no words: no need to ship it anywhere.
  if (subject.mediaType === 'audio/wav' && silentWav(bytes)) return text('', null);
  if (row.backend_identity !== transcriber.identity) {
    throw new Error('the transcription backend changed since this derivation was requested; request it again');
  }
  const reason = transcriber.unavailableReason;
  if (reason) throw new Error(reason);
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
