import { expect } from 'vitest';
import type { DerivationView } from '../../src/derivations/schemas.js';
import type { TestDaemon } from './daemon.js';

// upload and eventually live in fixtures.ts; re-exported for the tests that import them from here.
export { eventually, upload } from './fixtures.js';

type Json = Record<string, unknown>;
/** A derivation view, or a problem body (`code`, `detail`) for a refused request. */
export type DeriveBody = DerivationView & { code?: string; detail?: string };

/** POSTs a derivation; returns the status and the parsed body. */
export async function derive(
  d: TestDaemon,
  profile: string,
  subject: Json,
  query = '',
  token?: string,
): Promise<{ status: number; body: DeriveBody }> {
  const r = await d.req(`/v1/derivations${query}`, { method: 'POST', json: { profile, subject }, token });
  return { status: r.status, body: (await r.json()) as DeriveBody };
}

/** Fetches an asset's bytes (admin, or the given token). */
export async function content(d: TestDaemon, assetId: string | null, token?: string): Promise<Buffer> {
  expect(assetId).toMatch(/^ast_/);
  const r = await d.req(`/v1/assets/${assetId}/content`, { token });
  expect(r.status).toBe(200);
  return Buffer.from(await r.arrayBuffer());
}

/** The sha256 of an asset id (`ast_<sha256>`). */
export const shaOf = (assetId: string | null) => (assetId ?? '').slice(4);
