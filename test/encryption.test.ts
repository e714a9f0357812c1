import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../src/assets/blob-store.js';
import { BlobEncryptor, CHUNK, decryptBuffer, encryptBuffer } from '../src/crypto/blob-cipher.js';
import { deriveKeys } from '../src/crypto/keys.js';
import { runCli } from './helpers/child.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, filesUnder, grepDir, sha256 } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { byIds, getRun, materialize } from './helpers/runs.js';

const scratch = mkdtempSync(join(tmpdir(), 'observd-enc-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function keyFile(name: string): string {
  const p = join(scratch, name);
  writeFileSync(p, randomBytes(32));
  return p;
}

function freshDir(name: string): string {
  const p = join(scratch, name);
  rmSync(p, { recursive: true, force: true });
  return p;
}

interface Planted {
  observation_id: string;
  asset_id: string;
  bytes: Buffer;
  markers: string[];
  text: string;
  token: string;
  run_id: string;
}

/** Uploads media (larger than one cipher chunk) and text carrying unique markers, and queues a run of it. */
async function plant(d: TestDaemon, tag: string): Promise<Planted> {
  const token = await createSource(d, { source_id: `cam-${tag}`, display_name: 'Cam', kind: 'screen_snapshot', sensitivity: 'internal' });
  const id = `${tag}${randomBytes(5).toString('hex')}`;
  const markers = [`BYTESMARK${id}`, `FILEMARK${id}`, `METAMARK${id}`, `KEYMARK${id}`, `STREAMMARK${id}`, `TEXTMARK${id}`];
  // Several cipher chunks, with the marker straddling a chunk boundary and at the end.
  const filler = Buffer.alloc(3 * CHUNK, 0x41);
  const bytes = Buffer.concat([makePng(2, 2), filler.subarray(0, CHUNK - 20), Buffer.from(markers[0]), filler, Buffer.from(markers[0])]);
  const text = `the screen shows ${markers[5]}`;
  const r = await d.req(`/v1/observation-sources/cam-${tag}/observations`, {
    method: 'POST',
    token,
    json: {
      upload: { file_name: `${markers[1]}.png`, media_type: 'image/png', content_base64: bytes.toString('base64') },
      idempotency_key: markers[3],
      stream_id: markers[4],
      metadata: { note: markers[2] },
      canonical_text: text,
    },
  });
  expect(r.status, await r.clone().text()).toBe(201);
  const o = await r.json();
  const run = await materialize(d, byIds([o.observation_id], { raw_asset_policy: 'always' }));
  expect(run.status).toBe(202);
  await d.daemon.services.materializations.flushJournal();
  return { observation_id: o.observation_id, asset_id: o.asset_id, bytes, markers, text, token, run_id: run.body.run_id };
}

/** Reads a planted observation back through the API: metadata, media bytes and text. */
async function expectReadable(d: TestDaemon, p: Planted) {
  const o = await (await d.req(`/v1/observations/${p.observation_id}`)).json();
  expect(o.file_name).toBe(`${p.markers[1]}.png`);
  expect(o.metadata).toEqual({ note: p.markers[2] });
  const media = await d.req(`/v1/assets/${p.asset_id}/content`);
  expect(media.status).toBe(200);
  expect(Buffer.from(await media.arrayBuffer()).equals(p.bytes)).toBe(true);
  const text = await d.req(`/v1/assets/${o.canonical_text_asset_id}/content`);
  expect(await text.text()).toBe(p.text);
}

describe('blob cipher', () => {
  it('round-trips every size around chunk boundaries and refuses any altered, truncated or reordered file', () => {
    const key = randomBytes(32);
    for (const n of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 7]) {
      const plain = randomBytes(n);
      const sealed = encryptBuffer(key, plain);
      expect(decryptBuffer(key, sealed).equals(plain)).toBe(true);
    }
    const sealed = encryptBuffer(key, randomBytes(2 * CHUNK + 5));
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 40] ^= 1;
    expect(() => decryptBuffer(key, flipped)).toThrow();
    // Dropping the last chunk leaves a file whose new last chunk was not sealed as last.
    expect(() => decryptBuffer(key, sealed.subarray(0, 16 + 2 * (CHUNK + 16)))).toThrow();
    expect(() => decryptBuffer(randomBytes(32), sealed)).toThrow();
  });

  it('seals the same plaintext whether it arrives in one push of many chunks or in odd-sized pieces', () => {
    const key = randomBytes(32);
    const plain = randomBytes(5 * CHUNK + 321);
    const whole = new BlobEncryptor(key);
    const once = Buffer.concat([whole.push(plain), whole.end()]);
    const pieces = new BlobEncryptor(key);
    const parts: Buffer[] = [];
    for (let off = 0, step = 1; off < plain.length; off += step, step = (step * 7 + 13) % (2 * CHUNK + 1) || 1) {
      parts.push(pieces.push(plain.subarray(off, off + step)));
    }
    parts.push(pieces.end());
    const piecewise = Buffer.concat(parts);
    expect(once.length).toBe(piecewise.length);
    expect(decryptBuffer(key, once).equals(plain)).toBe(true);
    expect(decryptBuffer(key, piecewise).equals(plain)).toBe(true);
  });
});

describe('encrypted blob store', () => {
  it('streams whole blobs and byte ranges across chunk boundaries, decrypting only what is asked', async () => {
    const dir = freshDir('blobstore');
    const store = new BlobStore(dir, deriveKeys(randomBytes(32)));
    const plain = randomBytes(3 * CHUNK + 123);
    const staged = await store.stage(plain);
    store.publishSync(staged);
    const sha = sha256(plain);
    expect(staged.sha256).toBe(sha);
    const collect = async (r: AsyncIterable<Buffer>) => {
      const parts: Buffer[] = [];
      for await (const c of r) parts.push(c);
      return Buffer.concat(parts);
    };
    expect((await collect(store.stream(sha))).equals(plain)).toBe(true);
    for (const [start, end] of [
      [0, 0],
      [CHUNK - 3, CHUNK + 3],
      [CHUNK, 2 * CHUNK - 1],
      [2 * CHUNK + 5, plain.length - 1],
      [10, plain.length + 100],
    ]) {
      expect((await collect(store.stream(sha, { start, end }))).equals(plain.subarray(start, end + 1))).toBe(true);
    }
    // The stored file is sealed and named by an HMAC, not by the hash.
    expect(store.pathOf(sha)).not.toContain(sha);
    expect(readFileSync(store.pathOf(sha)).includes(plain.subarray(0, 64))).toBe(false);
  });
});

describe('encryption at rest', () => {
  it('an encrypted store holds no plaintext: markers in media, text, metadata, names are nowhere; blob names reveal no hashes; dedup works', async () => {
    const key = keyFile('k1');
    const dir = freshDir('enc1');
    const d = await startDaemon({ data_dir: dir, encryption: { key_file: key } }, { dataDir: dir });
    let p!: Planted;
    try {
      p = await plant(d, 'enc');
      await expectReadable(d, p);
      // Dedup: the same bytes uploaded again add no blob file.
      const before = filesUnder(join(dir, 'blobs')).length;
      const dup = await d.req('/v1/observation-sources/cam-enc/observations', {
        method: 'POST',
        token: p.token,
        json: {
          upload: { file_name: 'dup.png', media_type: 'image/png', content_base64: p.bytes.toString('base64') },
          idempotency_key: 'dup',
        },
      });
      expect(dup.status, await dup.clone().text()).toBe(201);
      expect((await dup.json()).asset_id).toBe(p.asset_id);
      const blob = await d.daemon.services.blobs.read(p.asset_id.slice(4));
      expect(blob.equals(p.bytes)).toBe(true);

      expect(filesUnder(join(dir, 'blobs')).length).toBe(before);

      // Multipart (streamed through an encrypting temp file) and signed uploads (sealed while
      // waiting in uploads/, magic-checked by decrypting their head) carry markers too.
      const mp = Buffer.concat([makePng(5, 5), Buffer.from(p.markers[0].replace('BYTES', 'MPART'))]);
      const form = new FormData();
      form.set('file', new Blob([new Uint8Array(mp)], { type: 'image/png' }), 'mp.png');
      form.set('observation', JSON.stringify({ idempotency_key: 'multipart' }));
      const mres = await d.req('/v1/observation-sources/cam-enc/observations', { method: 'POST', token: p.token, body: form });
      expect(mres.status, await mres.clone().text()).toBe(201);
      const mobs = await mres.json();
      expect(Buffer.from(await (await d.req(`/v1/assets/${mobs.asset_id}/content`)).arrayBuffer()).equals(mp)).toBe(true);
      const su = Buffer.concat([makePng(6, 6), Buffer.from(p.markers[0].replace('BYTES', 'SIGNED'))]);
      const minted = await (
        await d.req('/v1/observation-sources/cam-enc/upload-urls', {
          method: 'POST',
          token: p.token,
          json: { media_type: 'image/png', file_name: 'su.png' },
        })
      ).json();
      expect(
        (await fetch(minted.upload_url, { method: 'PUT', body: new Uint8Array(su), headers: { 'content-type': 'image/png' } })).status,
      ).toBeLessThan(300);
      expect(grepDir(join(dir, 'uploads'), [p.markers[0].replace('BYTES', 'SIGNED')])).toEqual([]);
      const sres = await d.req('/v1/observation-sources/cam-enc/observations', {
        method: 'POST',
        token: p.token,
        json: { upload: { upload_id: minted.upload_id }, idempotency_key: 'signed' },
      });
      expect(sres.status, await sres.clone().text()).toBe(201);
      const sobs = await sres.json();
      expect(Buffer.from(await (await d.req(`/v1/assets/${sobs.asset_id}/content`)).arrayBuffer()).equals(su)).toBe(true);
      p.markers.push(p.markers[0].replace('BYTES', 'MPART'), p.markers[0].replace('BYTES', 'SIGNED'));
    } finally {
      await d.close();
    }
    expect(grepDir(dir, p.markers)).toEqual([]);
    // The sha256 of the media (its asset id) appears as no file name.
    const sha = sha256(p.bytes);
    expect(filesUnder(dir).some((f) => f.includes(sha))).toBe(false);
    expect(existsSync(join(dir, 'encryption.json'))).toBe(true);

    // Wrong key and no key: a clear failure at start, and the store is untouched.
    await expect(startDaemon({ data_dir: dir, encryption: { key_file: keyFile('wrong') } }, { dataDir: dir })).rejects.toThrow(/wrong key/);
    await expect(startDaemon({ data_dir: dir }, { dataDir: dir })).rejects.toThrow(/is encrypted: configure its key/);
    // Even without its marker the database is recognised as encrypted, and only the right key opens it.
    rmSync(join(dir, 'encryption.json'));
    await expect(startDaemon({ data_dir: dir }, { dataDir: dir })).rejects.toThrow(/is encrypted: configure its key/);
    await expect(startDaemon({ data_dir: dir, encryption: { key_file: keyFile('wrong2') } }, { dataDir: dir })).rejects.toThrow(
      /wrong key/,
    );
    const again = await startDaemon({ data_dir: dir, encryption: { key_file: key } }, { dataDir: dir });
    try {
      await expectReadable(again, p);
    } finally {
      await again.close();
    }
  });

  it('a key for a plain store is refused at start, telling to run observd encrypt; encrypt refuses a store in use', async () => {
    const dir = freshDir('plainkey');
    const d = await startDaemon({ data_dir: dir }, { dataDir: dir });
    await plant(d, 'pk');
    const busy = await runCli(['encrypt', '--data-dir', dir], {
      env: { OBSERVD_ENCRYPTION_KEY_FILE: keyFile('k2busy') },
      timeoutMs: 60_000,
    });
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/in use: stop observd first/);
    expect(existsSync(join(dir, '.convert'))).toBe(false);
    await d.close();
    await expect(startDaemon({ data_dir: dir, encryption: { key_file: keyFile('k2') } }, { dataDir: dir })).rejects.toThrow(
      /observd encrypt/,
    );
  });

  it('observd encrypt then observd rekey keep the data readable through the API, and leave no plaintext', async () => {
    const dir = freshDir('convert');
    const k1 = keyFile('c1');
    const k2 = keyFile('c2');
    const d = await startDaemon({ data_dir: dir }, { dataDir: dir });
    const p = await plant(d, 'cv');
    await d.close();
    expect(grepDir(dir, p.markers).length).toBeGreaterThan(0);

    const enc = await runCli(['encrypt', '--data-dir', dir], { env: { OBSERVD_ENCRYPTION_KEY_FILE: k1 }, timeoutMs: 60_000 });
    expect(enc.code, enc.stderr).toBe(0);
    expect(grepDir(dir, p.markers)).toEqual([]);
    const e1 = await startDaemon({ data_dir: dir, encryption: { key_file: k1 } }, { dataDir: dir });
    try {
      await expectReadable(e1, p);
      expect((await getRun(e1, p.run_id)).body.input).not.toBeNull();
    } finally {
      await e1.close();
    }

    const rk = await runCli(['rekey', '--data-dir', dir, '--new-key-file', k2], {
      env: { OBSERVD_ENCRYPTION_KEY_FILE: k1 },
      timeoutMs: 60_000,
    });
    expect(rk.code, rk.stderr).toBe(0);
    expect(grepDir(dir, p.markers)).toEqual([]);
    await expect(startDaemon({ data_dir: dir, encryption: { key_file: k1 } }, { dataDir: dir })).rejects.toThrow(/wrong key/);
    const e2 = await startDaemon({ data_dir: dir, encryption: { key_file: k2 } }, { dataDir: dir });
    try {
      await expectReadable(e2, p);
    } finally {
      await e2.close();
    }
    expect(readdirSync(dir)).not.toContain('.convert');
    // The other commands open the store with its key too, and refuse it without.
    const mig = await runCli(['migrate', '--data-dir', dir], { env: { OBSERVD_ENCRYPTION_KEY_FILE: k2 } });
    expect(mig.code, mig.stderr).toBe(0);
    const noKey = await runCli(['migrate', '--data-dir', dir]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/is encrypted: configure its key/);

    // A backup of an encrypted store is encrypted too, and opens with the same key.
    const dest = freshDir('convert-backup');
    const bk = await runCli(['backup', '--data-dir', dir, dest], { env: { OBSERVD_ENCRYPTION_KEY_FILE: k2 }, timeoutMs: 60_000 });
    expect(bk.code, bk.stderr).toBe(0);
    expect(grepDir(dest, p.markers)).toEqual([]);
    const b2 = await startDaemon({ data_dir: dest, encryption: { key_file: k2 } }, { dataDir: dest });
    try {
      await expectReadable(b2, p);
    } finally {
      await b2.close();
    }
  });

  // Before READY the old store is untouched; from READY on the switch rolls forward.
  const points = ['database-copied', 'blobs-copied', 'ready', 'db-switched', 'blobs-switched', 'uploads-switched', 'marker-written'];
  it.each(points)('observd encrypt killed at %s leaves a usable store, and encrypt completes it', async (point) => {
    const dir = freshDir(`crash-${point}`);
    const key = keyFile(`key-${point}`);
    const d = await startDaemon({ data_dir: dir }, { dataDir: dir });
    const p = await plant(d, 'cr');
    await d.close();
    const killed = await runCli(['encrypt', '--data-dir', dir], {
      env: { OBSERVD_ENCRYPTION_KEY_FILE: key, OBSERVD_TEST_CRASH_AT: point },
      timeoutMs: 60_000,
    });
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const before = points.indexOf(point) < points.indexOf('ready');
    // The store opens as it was (plain) or as it became (encrypted); never half of each.
    const s = await startDaemon({ data_dir: dir, ...(before ? {} : { encryption: { key_file: key } }) }, { dataDir: dir });
    try {
      await expectReadable(s, p);
    } finally {
      await s.close();
    }
    if (before) {
      const done = await runCli(['encrypt', '--data-dir', dir], { env: { OBSERVD_ENCRYPTION_KEY_FILE: key }, timeoutMs: 60_000 });
      expect(done.code, done.stderr).toBe(0);
    }
    expect(grepDir(dir, p.markers)).toEqual([]);
    const e = await startDaemon({ data_dir: dir, encryption: { key_file: key } }, { dataDir: dir });
    try {
      await expectReadable(e, p);
    } finally {
      await e.close();
    }
  });
});
