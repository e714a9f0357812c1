import { expect } from 'vitest';
import type { DerivationView } from '../../src/derivations/schemas.js';
import type { ObservationView } from '../../src/observations/schemas.js';
import type { TestDaemon } from './daemon.js';
import { uploadBody } from './media.js';

type Json = Record<string, unknown>;
/** A derivation view, or a problem body (`code`, `detail`) for a refused request. */
export type DeriveBody = DerivationView & { code?: string; detail?: string };

/** Uploads bytes as an observation and returns its view. */
export async function upload(
  d: TestDaemon,
  sourceId: string,
  token: string,
  bytes: Buffer,
  key: string,
  mediaType = 'image/png',
  extra: Json = {},
): Promise<ObservationView> {
  const body = uploadBody(bytes, key, extra, mediaType);
  body.upload.file_name = `file.${mediaType.split('/')[1]}`;
  const r = await d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token, json: body });
  expect(r.status, await r.clone().text()).toBe(201);
  return (await r.json()) as ObservationView;
}

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

/** Polls `fn` until it returns a truthy value (or fails after `ms`). */
export async function eventually<T>(fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The sha256 of an asset id (`ast_<sha256>`). */
export const shaOf = (assetId: string | null) => (assetId ?? '').slice(4);
