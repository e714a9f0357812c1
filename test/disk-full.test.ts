import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnDaemon, type ChildDaemon } from './helpers/child.js';
import { eventually } from './helpers/derivations.js';
import { startFakeOpenAI, type FakeOpenAI } from './helpers/fake-openai.js';
import { makePng, makeWav, uploadBody } from './helpers/media.js';

type Json = Record<string, any>;

/** A 32 MiB tmpfs of our own, so "the disk is full" is real and harms nothing else; undefined where mounting is impossible. */
function mountSmallDisk(): { dir: string; unmount: () => void } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'observd-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const disk = mountSmallDisk();
if (!disk) console.warn('disk-full.test.ts skipped: cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)');

/** Writes a filler file until the filesystem refuses another byte. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return path;
}

describe.runIf(disk)('a full disk (a real tmpfs, free-space floor 0, a child-process daemon)', () => {
  let d: ChildDaemon;
  let token = '';
  let obsId = '';
  let signedUrl = '';
  let filler = '';
  let fake: FakeOpenAI;
  let transcriptId = '';
  // A loopback image server (allow-listed) for the URL import.
  let images: Server;
  let imageUrl = '';
  const dataDir = disk ? join(disk.dir, 'data') : '';

  const call = (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
    const { json, token: t, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (t) headers.set('authorization', `Bearer ${t}`);
    if (json !== undefined) headers.set('content-type', 'application/json');
    // A hung request fails the test instead of waiting for the daemon's request timeout.
    return fetch(d.url + path, {
      ...rest,
      headers,
      body: json !== undefined ? JSON.stringify(json) : rest.body,
      signal: AbortSignal.timeout(10_000),
    });
  };
  const multipart = (key: string, seed: number) => {
    const form = new FormData();
    form.set('observation', JSON.stringify({ idempotency_key: key }));
    form.set('file', new Blob([new Uint8Array(makePng(3, 3, seed))], { type: 'image/png' }), 'frame.png');
    return call('/v1/observation-sources/cam/observations', { method: 'POST', token, body: form });
  };
  const materialize = () =>
    call('/v1/observation-materializations', {
      method: 'POST',
      json: {
        target_session_id: 's',
        selection: { type: 'observation_ids', observation_ids: [obsId] },
        raw_asset_policy: 'never',
        request: { content: 'x' },
      },
    });
  const expect507 = async (res: Response, what: string) => {
    const text = await res.text();
    expect({ what, status: res.status, text }).toMatchObject({ status: 507 });
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(text)).toMatchObject({ status: 507, code: 'insufficient_storage' });
  };

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    fake.reply = { text: 'words from the fake backend' };
    const configDir = mkdtempSync(join(tmpdir(), 'observd-full-config-'));
    const configFile = join(configDir, 'config.toml');
    const png = makePng(64, 64, 9);
    images = createServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length }).end(png));
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    imageUrl = `http://127.0.0.1:${(images.address() as { port: number }).port}/frame.png`;
    writeFileSync(
      configFile,
      `[transcription]\nbase_url = "${fake.baseUrl}"\nmodel = "whisper-1"\nmax_retries = 0\n` +
        `[uploads.url_fetch]\nenabled = true\nallow_http = true\nallow_hosts = ["127.0.0.1"]\n`,
    );
    d = await spawnDaemon(dataDir, { args: ['--config', configFile] });
    const src = (await (
      await call('/v1/observation-sources', { method: 'POST', json: { source_id: 'cam', display_name: 'cam', kind: 'screen_snapshot' } })
    ).json()) as Json;
    token = src.upload_token;
    const up = await call('/v1/observation-sources/cam/observations', {
      method: 'POST',
      token,
      json: uploadBody(makePng(2, 2, 1), 'before', { canonical_text: 'hello' }),
    });
    expect(up.status).toBe(201);
    obsId = ((await up.json()) as Json).observation_id;
    const minted = await call('/v1/observation-sources/cam/upload-urls', {
      method: 'POST',
      token,
      json: { media_type: 'image/png', file_name: 'a.png' },
    });
    expect(minted.status).toBe(201);
    signedUrl = ((await minted.json()) as Json).upload_url;

    // A transcription in flight at the backend when the disk fills: its result cannot be stored.
    const mic = (await (
      await call('/v1/observation-sources', {
        method: 'POST',
        json: { source_id: 'mic', display_name: 'mic', kind: 'microphone_segment', allow_external_processing: true },
      })
    ).json()) as Json;
    const seg = await call('/v1/observation-sources/mic/observations', {
      method: 'POST',
      token: mic.upload_token,
      json: uploadBody(makeWav(0.3), 'seg', {}, 'audio/wav'),
    });
    expect(seg.status).toBe(201);
    fake.hold();
    const der = await call('/v1/derivations?wait=false', {
      method: 'POST',
      json: { profile: 'canonical_text', subject: { type: 'observation', observation_id: ((await seg.json()) as Json).observation_id } },
    });
    expect(der.status).toBe(202);
    transcriptId = ((await der.json()) as Json).derivation_id;
    await fake.waitForCalls(1);

    // Every later write must grow a file: move the WAL into the database and truncate it.
    const db = new Database(join(dataDir, 'observd.db'));
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    filler = fill(disk!.dir);
    fake.release();
  });

  afterAll(async () => {
    await d?.kill();
    await fake?.close();
    await new Promise((r) => (images ? images.close(r) : r(undefined)));
    disk?.unmount();
  });

  it('turns every write into 507 insufficient_storage, never a crash, a 500 or a hung request', async () => {
    await expect507(
      await call('/v1/observation-sources/cam/observations', { method: 'POST', token, json: uploadBody(makePng(4, 4, 2), 'json-full') }),
      'JSON upload',
    );
    await expect507(await multipart('multipart-full', 3), 'multipart upload');
    const fromUrl = { idempotency_key: 'url-full', upload: { url: imageUrl } };
    await expect507(await call('/v1/observation-sources/cam/observations', { method: 'POST', token, json: fromUrl }), 'URL import');
    const batch = await call('/v1/observation-sources/cam/observations/batch', {
      method: 'POST',
      token,
      json: { items: [uploadBody(makePng(4, 4, 4), 'batch-1'), uploadBody(makePng(4, 4, 5), 'batch-2')] },
    });
    if (batch.status === 200) {
      const { results } = (await batch.json()) as { results: Json[] };
      for (const r of results) expect(r).toMatchObject({ status: 507, error: { code: 'insufficient_storage' } });
    } else await expect507(batch, 'batch upload');
    await expect507(
      await call(signedUrl.replace(/^https?:\/\/[^/]+/, ''), { method: 'PUT', body: new Uint8Array(makePng(4, 4, 6)) }),
      'signed upload PUT',
    );
    await expect507(
      await call('/v1/observation-sources/cam/upload-urls', {
        method: 'POST',
        token,
        json: { media_type: 'image/png', file_name: 'b.png' },
      }),
      'minting an upload URL',
    );
    await expect507(
      await call('/v1/observation-sources', { method: 'POST', json: { source_id: 'new', display_name: 'n', kind: 'screen_snapshot' } }),
      'source create',
    );
    await expect507(await call('/v1/observation-sources/cam', { method: 'PATCH', json: { display_name: 'renamed' } }), 'source patch');
    await expect507(await call('/v1/observation-sources/cam/rotate-token', { method: 'POST', json: {} }), 'token rotation');
    await expect507(await materialize(), 'materialization (run)');
    await expect507(
      await call('/v1/derivations?wait=false', {
        method: 'POST',
        json: { profile: 'visual_preview', subject: { type: 'observation', observation_id: obsId } },
      }),
      'derivation',
    );

    // Wrong tokens: each refusal is audited after the answer (a deferred write) — it must not crash the daemon.
    for (let i = 0; i < 5; i++) {
      const r = await call('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: 'not-the-token-000000',
        json: uploadBody(makePng(2, 2, 7), `bad-${i}`),
      });
      expect(r.status).toBe(401);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(d.proc.exitCode).toBeNull();
    expect((await call('/livez')).status).toBe(200);
    // Reads keep working on a full disk.
    expect((await call(`/v1/observations/${obsId}`)).status).toBe(200);
    // The transcription that could not store its result waits to be retried; it is not failed.
    await new Promise((r) => setTimeout(r, 300));
    const pending = (await (await call(`/v1/derivations/${transcriptId}`)).json()) as Json;
    expect(pending.status).toBe('processing');
    const bad = d.logs().filter((l) => (l.level as number) >= 50);
    expect(bad, JSON.stringify(bad)).toEqual([]);
    expect(d.stderr()).not.toMatch(/uncaught|SQLITE_FULL|ENOSPC/i);
  });

  it('recovers on its own once space is freed', async () => {
    unlinkSync(filler);
    const up = await call('/v1/observation-sources/cam/observations', {
      method: 'POST',
      token,
      json: uploadBody(makePng(4, 4, 2), 'json-after'),
    });
    expect(up.status).toBe(201);
    expect((await multipart('multipart-after', 3)).status).toBe(201);
    const fromUrl = { idempotency_key: 'url-after', upload: { url: imageUrl } };
    expect((await call('/v1/observation-sources/cam/observations', { method: 'POST', token, json: fromUrl })).status).toBe(201);
    const put = await call(signedUrl.replace(/^https?:\/\/[^/]+/, ''), { method: 'PUT', body: new Uint8Array(makePng(4, 4, 6)) });
    expect(put.status).toBe(200);
    expect(
      (await call('/v1/observation-sources', { method: 'POST', json: { source_id: 'new', display_name: 'n', kind: 'screen_snapshot' } }))
        .status,
    ).toBe(201);
    expect((await materialize()).status).toBe(202);
    const der = await call('/v1/derivations', {
      method: 'POST',
      json: { profile: 'visual_preview', subject: { type: 'observation', observation_id: obsId } },
    });
    expect(der.status).toBe(200);
    expect(((await der.json()) as Json).status).toBe('completed');
    // The postponed transcription is retried on its own and completes.
    await eventually(async () => ((await (await call(`/v1/derivations/${transcriptId}`)).json()) as Json).status === 'completed', 20_000);
    expect(d.proc.exitCode).toBeNull();
  });
});
