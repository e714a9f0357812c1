import type { Readable } from 'node:stream';
import type { Reader } from '../access.js';
import type { Deps } from '../deps.js';
import { AppError, notFound } from '../errors.js';
import { getAsset, isDerivedFromSensitive, type AssetRow } from './repo.js';

/** An asset's metadata and a way to read its bytes (decrypted in an encrypted store), whole or a range. */
export interface AssetContent {
  asset: AssetRow;
  stream: (range?: { start: number; end: number }) => Readable;
}

/** Reads of content-addressed assets, and who may read their bytes. No HTTP here. */
export class AssetService {
  constructor(private deps: Pick<Deps, 'db' | 'blobs'>) {}

  /** An asset's metadata; not_found if missing (whatever the form of the id). */
  get(assetId: string): AssetRow {
    const row = getAsset(this.deps.db, assetId);
    if (!row) throw notFound(`asset "${assetId}"`);
    return row;
  }

  /**
   * An asset's bytes for `reader`: the read-only token may not read content of sensitive sources,
   * nor anything derived from it (previews, OCR text, run journals); forbidden then. not_found if missing.
   */
  content(assetId: string, reader: Reader): AssetContent {
    const asset = this.get(assetId);
    if (reader !== 'admin' && isDerivedFromSensitive(this.deps.db, asset.asset_id)) {
      throw new AppError('forbidden', 'content of sensitive sources needs the admin token');
    }
    return { asset, stream: (range) => this.deps.blobs.stream(asset.sha256, range) };
  }
}
