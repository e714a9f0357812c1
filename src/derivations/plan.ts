import { AppError } from '../errors.js';
import type { DerivationProfile } from './schemas.js';
import type { ResolvedSubject } from './subjects.js';

/** How a derivation is made for one subject. */
export type Plan =
  /** The result is an asset the subject already has (uploader text, or a text asset itself). */
  { kind: 'reuse'; assetId: string } | { kind: 'ocr' } | { kind: 'transcribe' } | { kind: 'image_preview' } | { kind: 'waveform' };

export const IMAGE_TYPES = ['image/png', 'image/jpeg'];
/** What the transcription backend is sent; observd can also hold assets of these types. */
export const TRANSCRIBABLE_TYPES = ['audio/wav', 'audio/webm', 'audio/mpeg', 'audio/mp4', 'audio/m4a', 'audio/ogg'];
export const TEXT_TYPES = ['text/plain'];

/** Decides how `profile` is derived from the subject; unsupported_derivation for a pair observd cannot make. */
export function planFor(profile: DerivationProfile, s: ResolvedSubject): Plan {
  const t = s.mediaType;
  if (profile === 'canonical_text') {
    if (s.uploaderTextAssetId) return { kind: 'reuse', assetId: s.uploaderTextAssetId };
    if (TEXT_TYPES.includes(t)) return { kind: 'reuse', assetId: s.asset.asset_id };
    if (IMAGE_TYPES.includes(t)) return { kind: 'ocr' };
    if (TRANSCRIBABLE_TYPES.includes(t)) return { kind: 'transcribe' };
  } else {
    if (IMAGE_TYPES.includes(t)) return { kind: 'image_preview' };
    if (t.startsWith('audio/')) return { kind: 'waveform' };
  }
  throw new AppError('unsupported_derivation', `${profile} cannot be derived from ${t} content`);
}
