import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The shell blocks of the "Using it" section, in order. */
function usageBlocks(): string[] {
  const section = readme.split('## Using it')[1].split('\n## ')[0];
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
}

/** The README's URL import names an https image host; a loopback server (allow-listed) stands in for it. */
const IMAGE_HOST = 'https://images.example.com';
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==', 'base64');
let images: Server;
let imageHost: string;

let d: TestDaemon;
let cwd: string;
beforeAll(async () => {
  images = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(PNG));
  await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
  imageHost = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
  d = await startDaemon({ uploads: { url_fetch: { enabled: true, allow_http: true, allow_hosts: ['127.0.0.1'] } } });
  cwd = mkdtempSync(join(tmpdir(), 'observd-readme-'));
});
afterAll(async () => {
  await d.close();
  await new Promise((r) => images.close(r));
  rmSync(cwd, { recursive: true, force: true });
});

describe('README', () => {
  it('has curl examples, and every one works as written against a real daemon', async () => {
    const blocks = usageBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    const host = new URL(d.url).host;
    for (const block of blocks) {
      const script = `set -euo pipefail\n${block.replaceAll('127.0.0.1:4000', host).replaceAll(IMAGE_HOST, imageHost)}`;
      // Rejects (failing the test) when any curl fails: every command uses --fail-with-body.
      await promisify(execFile)('bash', ['-c', script], { cwd });
    }
    // The walk-through ends by deleting the source it created.
    expect((await d.req('/v1/observation-sources/screen-main')).status).toBe(404);
    const audit = await (await d.req('/v1/observation-audit?source_id=screen-main&limit=100')).json();
    const events = audit.map((e: { event: string }) => e.event);
    expect(events).toEqual(
      expect.arrayContaining(['source_created', 'upload_succeeded', 'source_updated', 'source_token_rotated', 'source_deleted']),
    );
    expect(events.filter((e: string) => e === 'upload_succeeded')).toHaveLength(5);
  });

  it('config.example.toml documents exactly the defaults', () => {
    const fromExample = loadConfig({ config: new URL('../config.example.toml', import.meta.url).pathname }, {});
    expect(fromExample).toEqual(parseConfig({}));
  });
});
