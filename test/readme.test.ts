import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

let d: TestDaemon;
let cwd: string;
beforeAll(async () => {
  d = await startDaemon();
  cwd = mkdtempSync(join(tmpdir(), 'observd-readme-'));
});
afterAll(async () => {
  await d.close();
  rmSync(cwd, { recursive: true, force: true });
});

describe('README', () => {
  it('has curl examples, and every one works as written against a real daemon', async () => {
    const blocks = usageBlocks();
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    const host = new URL(d.url).host;
    for (const block of blocks) {
      const script = `set -euo pipefail\n${block.replaceAll('127.0.0.1:4000', host)}`;
      // Rejects (failing the test) when any curl fails: every command uses --fail-with-body.
      await promisify(execFile)('bash', ['-c', script], { cwd });
    }
    // The walk-through ends by deleting the source it created.
    expect((await d.req('/v1/observation-sources/screen-main')).status).toBe(404);
    const audit = await (await d.req('/v1/observation-audit?source_id=screen-main&limit=100')).json();
    const events = audit.map((e: { event: string }) => e.event);
    expect(events).toEqual(expect.arrayContaining(['source_created', 'upload_succeeded', 'source_updated', 'source_token_rotated', 'source_deleted']));
    expect(events.filter((e: string) => e === 'upload_succeeded')).toHaveLength(4);
  });

  it('config.example.toml documents exactly the defaults', () => {
    const fromExample = loadConfig({ config: new URL('../config.example.toml', import.meta.url).pathname }, {});
    expect(fromExample).toEqual(parseConfig({}));
  });
});
