import { join } from 'node:path';

/** Where signed uploads wait in a data directory, one file per upload id, until used or expired. */
export function uploadsDirOf(dataDir: string): string {
  return join(dataDir, 'uploads');
}

/** The file holding a signed upload's bytes (sealed in an encrypted store). */
export function uploadPathOf(dataDir: string, uploadId: string): string {
  return join(uploadsDirOf(dataDir), uploadId);
}
