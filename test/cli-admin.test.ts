import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli, spawnDaemon, type ChildDaemon } from './helpers/child.js';
import { sha256 } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';

let dir: string;
let dataDir: string;
let daemon: ChildDaemon;
const token = 'cli-admin-upload-token-1';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'observd-cli-admin-'));
  dataDir = join(dir, 'data');
  writeFileSync(join(dir, 'token'), `${token}\n`);
  daemon = await spawnDaemon(dataDir);
});
afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('observd sources / upload / backup', () => {
  it('creates and lists sources beside a running daemon, uploads a file to it, and backs everything up', async () => {
    const created = await runCli([
      'sources',
      'create',
      '--data-dir',
      dataDir,
      '--id',
      'cli-cam',
      '--kind',
      'screen_snapshot',
      '--token-file',
      join(dir, 'token'),
    ]);
    expect(created.code).toBe(0);
    const view = JSON.parse(created.stdout);
    expect(view).toMatchObject({ created: true, source_id: 'cli-cam', kind: 'screen_snapshot', upload_token_version: 1 });
    expect(created.stdout).not.toContain(token);

    const generated = await runCli(['sources', 'create', '--data-dir', dataDir, '--id', 'cli-mic', '--kind', 'microphone_segment']);
    expect(JSON.parse(generated.stdout).upload_token).toMatch(/^obt_/);

    const listed = await runCli(['sources', 'list', '--data-dir', dataDir, '--query', 'cli-c']);
    expect(jsonLines(listed.stdout).map((s) => s.source_id)).toEqual(['cli-cam']);
    // The daemon sees what the CLI wrote.
    expect((await (await fetch(`${daemon.url}/v1/observation-sources/cli-cam`)).json()).display_name).toBe('cli-cam');

    const png = makePng(6, 6, 77);
    writeFileSync(join(dir, 'frame.png'), png);
    const up = await runCli([
      'upload',
      '--url',
      daemon.url,
      '--source',
      'cli-cam',
      '--token-file',
      join(dir, 'token'),
      '--stream',
      's1',
      '--key',
      'k1',
      join(dir, 'frame.png'),
    ]);
    expect(up.code).toBe(0);
    const obs = JSON.parse(up.stdout);
    expect(obs).toMatchObject({ source_id: 'cli-cam', stream_id: 's1', media_type: 'image/png', byte_length: png.length });
    expect(obs.sha256).toBe(sha256(png));

    const refused = await runCli([
      'upload',
      '--url',
      daemon.url,
      '--source',
      'cli-mic',
      '--token-file',
      join(dir, 'token'),
      join(dir, 'frame.png'),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('unauthorized');

    const dest = join(dir, 'backup');
    const backup = await runCli(['backup', '--data-dir', dataDir, dest]);
    expect(backup.code).toBe(0);
    expect(JSON.parse(backup.stdout)).toMatchObject({ blobs_copied: 1, blobs_missing: 0 });
    const copy = new Database(join(dest, 'observd.db'), { readonly: true });
    expect(copy.prepare(`SELECT observation_id FROM observations`).pluck().all()).toEqual([obs.observation_id]);
    expect(copy.pragma('integrity_check', { simple: true })).toBe('ok');
    copy.close();
    const blob = join(dest, 'blobs', obs.sha256.slice(0, 2), obs.sha256.slice(2, 4), obs.sha256);
    expect(existsSync(blob) && readFileSync(blob).equals(png)).toBe(true);
    expect((await runCli(['backup', '--data-dir', dataDir, dest])).code).toBe(1);
  });

  it('explains its usage', async () => {
    expect((await runCli(['sources'])).code).toBe(2);
    expect((await runCli(['upload'])).code).toBe(2);
    expect((await runCli(['backup'])).code).toBe(2);
  });
});
