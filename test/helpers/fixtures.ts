import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import type { ObservationView } from '../../src/observations/schemas.js';
import type { TestDaemon } from './daemon.js';
import { uploadBody } from './media.js';

type Json = Record<string, unknown>;

/** The hex sha256 of some bytes (or a string's UTF-8). */
export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Returns a maker of fresh temp dirs named `<prefix>…`; every dir it made is removed after the file's tests. */
export function tempDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
}

/**
 * Every file under `dir`, depth first in directory order (none if `dir` is missing): as a full
 * path (`path`), a path relative to `dir` (`relative`, e.g. `ab/cd/<sha256>` under blobs/) or a
 * bare file name (`name`).
 */
export function filesUnder(dir: string, as: 'path' | 'relative' | 'name' = 'path'): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? join(rel, name) : name;
      if (statSync(join(dir, r)).isDirectory()) walk(r);
      else out.push(as === 'path' ? join(dir, r) : as === 'relative' ? r : name);
    }
  };
  if (existsSync(dir)) walk('');
  return out;
}

/** The files under `dir` whose bytes contain any of `markers`, each as `path: marker`. */
export function grepDir(dir: string, markers: string[]): string[] {
  const hits: string[] = [];
  for (const f of filesUnder(dir)) {
    const bytes = readFileSync(f);
    for (const m of markers) if (bytes.includes(m)) hits.push(`${f}: ${m}`);
  }
  return hits;
}

/** The body of a source named `id` (its display name too) with this upload token: a `screen_snapshot` unless `extra` says otherwise. */
export function sourceBody(id: string, uploadToken: string, extra: Json = {}): Json {
  return { source_id: id, display_name: id, kind: 'screen_snapshot', upload_token: uploadToken, ...extra };
}

/** Creates a source (as admin, or with the bearer `token`), asserts 201, and returns its view. */
export async function createSourceView(d: TestDaemon, body: Json, token?: string): Promise<Record<string, any>> {
  const r = await d.req('/v1/observation-sources', { method: 'POST', json: body, token });
  expect(r.status, `${JSON.stringify(body)}: ${await r.clone().text()}`).toBe(201);
  return r.json();
}

/**
 * Creates a source (as admin, or with the bearer `token`), asserts 201, and returns its upload
 * token: the body's, or the one the daemon generated.
 */
export async function createSource(d: TestDaemon, body: Json, token?: string): Promise<string> {
  const view = await createSourceView(d, body, token);
  return (body.upload_token as string | undefined) ?? view.upload_token;
}

/** Uploads bytes as an observation named `frame.<subtype>` (`uploadBody`'s `frame.png` for a PNG), asserts 201, and returns its view. */
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
  body.upload.file_name = `frame.${mediaType.split('/')[1]}`;
  const r = await d.req(`/v1/observation-sources/${sourceId}/observations`, { method: 'POST', token, json: body });
  expect(r.status, await r.clone().text()).toBe(201);
  return (await r.json()) as ObservationView;
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

/** One page of a `page=true` listing (the ListPage envelope). */
export interface ListPage<T> {
  items: T[];
  pagination: { limit: number; has_more: boolean; next_cursor?: string; order: string; total_count?: number };
}

/**
 * Every page of the listing `path` (with its query, without `page`/`cursor`) on the daemon at
 * `baseUrl`, following `pagination.next_cursor` with `page=true` to the end; asserts each answer
 * is 200, and fails after `maxPages` (a cursor that never ends).
 */
export async function allPages<T = Record<string, any>>(
  baseUrl: string,
  path: string,
  token?: string,
  maxPages = 1000,
): Promise<Array<ListPage<T>>> {
  const pages: Array<ListPage<T>> = [];
  const sep = path.includes('?') ? '&' : '?';
  let cursor: string | undefined;
  do {
    expect(pages.length, `${path}: pagination did not end`).toBeLessThan(maxPages);
    const res = await fetch(`${baseUrl}${path}${sep}page=true${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const page = (await res.json()) as ListPage<T>;
    pages.push(page);
    cursor = page.pagination.next_cursor;
  } while (cursor);
  return pages;
}

/** What `kheish capture provision --batch-id B --agent-id … --daemon-url U` sends (`build_provision_request`). */
export function provisionBody(batch: string, agentIds: string[], extra: Json = {}) {
  return {
    batch_id: batch,
    daemon_base_url: 'http://127.0.0.1:4000',
    os_profile: 'macos',
    agents: agentIds.map((machine_id) => ({ machine_id })),
    sources: { screen: true, camera: false, system_audio: false, microphone: false },
    interval_ms: 5000,
    retention_seconds: 604800,
    max_active_observations: 256,
    max_active_bytes: 134217728,
    token_ttl_ms: 604800000,
    heartbeat_interval_ms: 30000,
    heartbeat_grace_ms: 120000,
    ...extra,
  };
}

/** Where the blob store keeps the bytes of `sha`: `<dataDir>/blobs/ab/cd/<sha>`. */
export const blobPath = (dataDir: string, sha: string): string => join(dataDir, 'blobs', sha.slice(0, 2), sha.slice(2, 4), sha);
