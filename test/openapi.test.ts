import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/schema.js';
import { openStore } from '../src/daemon.js';
import { createApp } from '../src/http/app.js';
import { createMetrics } from '../src/http/metrics.js';
import { createLogger } from '../src/logger.js';

/** /openapi.json is generated from the mounted routes: each is documented, and nothing else is. */
let dir: string;
let store: ReturnType<typeof openStore>;
let app: ReturnType<typeof createApp>;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'observd-openapi-'));
  const config = parseConfig({ bind: '127.0.0.1:0', data_dir: dir, retention: { min_free_bytes: 0 } });
  const logger = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));
  store = openStore(config, { logger });
  app = createApp({ services: store.services, logger, metrics: createMetrics(), version: 'test', ready: () => true });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every (method, path) the app routes, in OpenAPI's path syntax; middleware (`*`, ALL) left out. */
function mounted(): string[] {
  const out = new Set<string>();
  for (const r of app.routes) {
    if (r.path.endsWith('*')) continue;
    out.add(`${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
  }
  return [...out].sort();
}

describe('/openapi.json', () => {
  it('documents every mounted route, and documents only mounted routes', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`))
      .sort();
    expect(mounted().length).toBeGreaterThan(25);
    expect(documented).toEqual(mounted());
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { summary?: string; responses?: object }>>)) {
      for (const [m, op] of Object.entries(ops)) {
        expect(op.summary, `${m} ${path}`).toEqual(expect.any(String));
        expect(op.responses, `${m} ${path}`).toBeDefined();
      }
    }
  });

  it('describes the real wire: list routes answer arrays or ListPage, uploads take a body without media_type', async () => {
    const doc = await (await app.request('/openapi.json')).json();
    const list = doc.paths['/v1/observations'].get.responses['200'].content['application/json'].schema;
    expect(JSON.stringify(list)).toContain('"type":"array"');
    expect(JSON.stringify(list)).toContain('next_cursor');
    const params = doc.paths['/v1/observations'].get.parameters.map((p: { name: string }) => p.name);
    expect(params).toEqual(
      expect.arrayContaining(['source_id', 'stream_id', 'after_ms', 'before_ms', 'include_purged', 'limit', 'page', 'cursor']),
    );
    const upload = doc.paths['/v1/observation-sources/{source_id}/observations'].post.requestBody.content['application/json'].schema;
    expect(upload.properties.upload.required ?? []).not.toContain('media_type');
    const source = doc.paths['/v1/observation-sources'].post.requestBody.content['application/json'].schema;
    expect(Object.keys(source.properties)).toEqual(
      expect.arrayContaining(['ingest_rate_limit_window_ms', 'ingest_rate_limit_burst', 'purge_raw_on_retention']),
    );
    expect(doc.paths['/v1/runtime'].get).toBeDefined();
    expect(doc.paths['/v1/runs/{run_id}'].get.parameters[0]).toMatchObject({ name: 'run_id', in: 'path' });
  });

  it('/docs is a page that needs nothing from the internet', async () => {
    const html = await (await app.request('/docs')).text();
    expect(html).toContain('/openapi.json');
    expect(html).not.toMatch(/https?:\/\/(?!observd)/);
  });
});
