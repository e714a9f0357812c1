import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3-multiple-ciphers';
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnDaemon, type ChildDaemon } from './helpers/child.js';
import { startDaemon } from './helpers/daemon.js';
import { allPages, blobPath, filesUnder, sha256, tempDirs } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';

const tempDir = tempDirs('observd-crash-');

/** One upload as the client saw it. */
interface Sent {
  key: string;
  sha: string;
  bytes: number;
  text?: string;
  status?: number;
  observationId?: string;
  cut?: boolean;
}

function multipartBody(png: Buffer, observation: Record<string, unknown>) {
  const boundary = `----observd${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="observation"\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(observation)}\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="frame.png"\r\nContent-Type: image/png\r\n\r\n`,
    ),
    png,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A body sent in 64 KiB pieces with short pauses, so a kill very likely lands mid-stream. */
function dribbled(buf: Buffer): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    async pull(controller) {
      if (off >= buf.length) return controller.close();
      if (off > 0) await sleep(4);
      controller.enqueue(buf.subarray(off, off + 65536));
      off += 65536;
    },
  });
}

/**
 * Keeps `workers` concurrent uploads going against `d` (JSON and multipart, whole and streamed,
 * some with canonical text, some repeating earlier bytes under a new key) until `stop()` says so.
 */
function uploadLoad(d: ChildDaemon, token: string, round: number, workers: number) {
  const sent: Sent[] = [];
  let stopped = false;
  let inFlight = 0;
  const pngs: Buffer[] = [];
  const worker = async (w: number) => {
    for (let i = 0; !stopped; i++) {
      const reuse = i % 5 === 4 && pngs.length > 0;
      const png = reuse
        ? pngs[(w * 7 + i) % pngs.length]
        : makePng(300 + ((w * 37 + i * 11) % 160), 300 + ((i * 53) % 120), round * 1_000_000 + w * 10_000 + i);
      if (!reuse) pngs.push(png);
      const key = `r${round}-w${w}-i${i}`;
      const text = i % 3 === 0 ? `caption for ${key}` : undefined;
      const s: Sent = { key, sha: sha256(png), bytes: png.length, text };
      sent.push(s);
      const mode = (w + i) % 4;
      const streamed = mode % 2 === 1;
      let body: Buffer;
      let contentType: string;
      if (mode < 2) {
        body = Buffer.from(JSON.stringify(uploadBody(png, key, text ? { canonical_text: text } : {})));
        contentType = 'application/json';
      } else {
        ({ body, contentType } = multipartBody(png, { idempotency_key: key, ...(text ? { canonical_text: text } : {}) }));
      }
      inFlight++;
      try {
        const res = await fetch(`${d.url}/v1/observation-sources/cam/observations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': contentType },
          body: streamed ? dribbled(body) : body,
          ...(streamed ? { duplex: 'half' } : {}),
        } as RequestInit);
        s.status = res.status;
        const view = (await res.json()) as { observation_id?: string };
        s.observationId = view.observation_id;
      } catch {
        s.cut = true;
        if (s.status === undefined) return; // the daemon is gone: stop this worker
      } finally {
        inFlight--;
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w)));
  return {
    sent,
    inFlight: () => inFlight,
    ok: () => sent.filter((s) => s.status !== undefined && s.status >= 200 && s.status < 300).length,
    stop: () => {
      stopped = true;
      return done;
    },
  };
}

interface ObservationView {
  observation_id: string;
  asset_id: string;
  idempotency_key: string;
  sha256: string;
  byte_length: number;
  canonical_text_asset_id: string | null;
  retention_state: string;
}

async function listAll(d: ChildDaemon): Promise<ObservationView[]> {
  const pages = await allPages<ObservationView>(d.url, '/v1/observations?source_id=cam&limit=1000&include_purged=true');
  return pages.flatMap((p) => p.items);
}

/** What must hold through the API after a restart: every acknowledged upload is there, with its bytes. */
async function verifyViaApi(d: ChildDaemon, acked: Sent[], allSent: Map<string, Sent>) {
  const listed = await listAll(d);
  const byKey = new Map(listed.map((o) => [o.idempotency_key, o]));
  expect(byKey.size).toBe(listed.length);
  for (const s of acked) {
    const o = byKey.get(s.key);
    expect(o, `acknowledged upload ${s.key} is listed`).toBeDefined();
    expect(o!.observation_id).toBe(s.observationId ?? o!.observation_id);
    expect(o!.sha256).toBe(s.sha);
    expect(o!.byte_length).toBe(s.bytes);
    expect(o!.retention_state).toBe('active');
  }
  for (const o of listed) {
    // Only uploads we sent, and whatever was listed (acknowledged or not) is complete on disk.
    const s = allSent.get(o.idempotency_key);
    expect(s, `listed observation ${o.idempotency_key} was sent by the test`).toBeDefined();
    expect(o.sha256).toBe(s!.sha);
    const file = blobPath(d.dataDir, o.sha256);
    expect(existsSync(file), `blob of ${o.idempotency_key}`).toBe(true);
    expect(sha256(readFileSync(file))).toBe(o.sha256);
    expect(!!o.canonical_text_asset_id).toBe(!!s!.text);
    if (o.canonical_text_asset_id) {
      const textSha = o.canonical_text_asset_id.replace(/^ast_/, '');
      const text = readFileSync(blobPath(d.dataDir, textSha));
      expect(sha256(text)).toBe(textSha);
      expect(text.toString('utf8')).toBe(s!.text);
    }
  }
  expect(filesUnder(join(d.dataDir, 'tmp'), 'relative')).toEqual([]);
  return listed;
}

/** What must hold in the stopped data directory: no orphans either way, exact counters, a sound database. */
function verifyStoppedStore(dataDir: string) {
  expect(filesUnder(join(dataDir, 'tmp'), 'relative')).toEqual([]);
  const db = new Database(join(dataDir, 'observd.db'), { readonly: true, fileMustExist: true });
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const assetShas = (db.prepare(`SELECT sha256 FROM assets ORDER BY sha256`).pluck().all() as string[]).sort();
    const blobFiles = filesUnder(join(dataDir, 'blobs'), 'relative')
      .map((p) => {
        const parts = p.split('/');
        expect(parts).toHaveLength(3);
        expect(parts[0]).toBe(parts[2].slice(0, 2));
        expect(parts[1]).toBe(parts[2].slice(2, 4));
        return parts[2];
      })
      .sort();
    expect(blobFiles).toEqual(assetShas);
    const dangling = db
      .prepare(
        `SELECT o.observation_id FROM observations o
         WHERE o.blobs_held = 1 AND (NOT EXISTS (SELECT 1 FROM assets a WHERE a.asset_id = o.asset_id)
           OR (o.canonical_text_asset_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.asset_id = o.canonical_text_asset_id)))`,
      )
      .all();
    expect(dangling).toEqual([]);
    const counters = db
      .prepare(
        `SELECT s.source_id, s.active_observation_count AS count, s.active_byte_length AS bytes,
           (SELECT COUNT(*) FROM observations o WHERE o.source_id = s.source_id AND o.retention_state = 'active') AS real_count,
           (SELECT COALESCE(SUM(byte_length), 0) FROM observations o WHERE o.source_id = s.source_id AND o.retention_state = 'active') AS real_bytes
         FROM sources s`,
      )
      .all() as Array<{ source_id: string; count: number; bytes: number; real_count: number; real_bytes: number }>;
    expect(counters.length).toBeGreaterThan(0);
    for (const c of counters) {
      expect({ id: c.source_id, count: c.count, bytes: c.bytes }).toEqual({ id: c.source_id, count: c.real_count, bytes: c.real_bytes });
    }
    return (db.prepare(`SELECT COUNT(*) FROM observations`).pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
}

describe('crash safety', () => {
  beforeAll(() => {
    // Warm the PNG encoder so the first round's timing looks like the others.
    makePng(8, 8, 1);
  });

  it('keeps every acknowledged upload, and nothing half-written, across 3 SIGKILLs mid-upload', async () => {
    const dataDir = tempDir();
    const allSent = new Map<string, Sent>();
    const acked: Sent[] = [];
    let token = '';
    let cut = 0;
    let stored = 0;
    let leftovers = 0;
    for (let round = 0; round < 3; round++) {
      let d = await spawnDaemon(dataDir);
      if (round === 0) {
        const res = await fetch(`${d.url}/v1/observation-sources`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot', max_active_observations: 100_000 }),
        });
        expect(res.status).toBe(201);
        token = ((await res.json()) as { upload_token: string }).upload_token;
      } else {
        const listed = await verifyViaApi(d, acked, allSent);
        expect(listed.length).toBeGreaterThanOrEqual(acked.length);
        expect(await d.stop()).toEqual({ code: 0, signal: null });
        expect(verifyStoppedStore(dataDir)).toBe(listed.length);
        d = await spawnDaemon(dataDir);
      }
      const load = uploadLoad(d, token, round, 6);
      // Kill at a random moment once this round has acknowledged a few uploads.
      const deadline = Date.now() + 10_000;
      while (load.ok() < 3 && Date.now() < deadline) await sleep(5);
      expect(load.ok()).toBeGreaterThanOrEqual(3);
      await sleep(Math.floor(Math.random() * 400));
      expect(load.inFlight()).toBeGreaterThan(0);
      const exit = await d.kill();
      expect(exit.signal).toBe('SIGKILL');
      await load.stop();
      leftovers += filesUnder(join(dataDir, 'tmp'), 'relative').length;
      for (const s of load.sent) {
        allSent.set(s.key, s);
        if (s.status !== undefined) {
          expect([200, 201]).toContain(s.status);
          acked.push(s);
        }
        if (s.cut && s.status === undefined) cut++;
      }
    }
    // Uploads were really cut mid-flight, leaving temp files for the restart to clean (the test is not vacuous).
    console.log(`crash rounds: ${acked.length} acknowledged, ${cut} cut, ${leftovers} temp files left by the kills`);
    expect(cut).toBeGreaterThan(0);
    expect(leftovers).toBeGreaterThan(0);
    expect(acked.length).toBeGreaterThanOrEqual(9);

    const d = await spawnDaemon(dataDir);
    const listed = await verifyViaApi(d, acked, allSent);
    stored = listed.length;
    // The restarted daemon still takes uploads.
    const fresh = await fetch(`${d.url}/v1/observation-sources/cam/observations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(uploadBody(makePng(20, 20, 999), 'after-crashes')),
    });
    expect(fresh.status).toBe(201);
    stored++;
    expect(await d.stop()).toEqual({ code: 0, signal: null });
    expect(verifyStoppedStore(dataDir)).toBe(stored);
  }, 60_000);
});

describe('startup cleanup', () => {
  it('removes stray temp files and orphan blobs, and keeps every referenced blob', async () => {
    const dataDir = tempDir();
    let d = await startDaemon({}, { dataDir });
    const created = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: { source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot' },
    });
    const { upload_token } = (await created.json()) as { upload_token: string };
    const png = makePng(16, 16, 42);
    const up = await d.req('/v1/observation-sources/cam/observations', {
      method: 'POST',
      token: upload_token,
      json: uploadBody(png, 'kept', { canonical_text: 'kept text' }),
    });
    expect(up.status).toBe(201);
    const obs = (await up.json()) as ObservationView;
    await d.close();

    const orphanBytes = randomBytes(1000);
    const orphan = blobPath(dataDir, sha256(orphanBytes));
    mkdirSync(join(orphan, '..'), { recursive: true });
    writeFileSync(orphan, orphanBytes);
    // An orphan sharing the directory of a kept blob.
    const sibling = join(blobPath(dataDir, obs.sha256), '..', obs.sha256.slice(0, 4) + 'f'.repeat(60));
    writeFileSync(sibling, 'x');
    writeFileSync(join(dataDir, 'tmp', `${Date.now()}-deadbeefdeadbeef.tmp`), randomBytes(5000));
    mkdirSync(join(dataDir, 'tmp', 'half-a-dir'));
    writeFileSync(join(dataDir, 'tmp', 'half-a-dir', 'x'), 'x');
    expect(filesUnder(join(dataDir, 'blobs'), 'relative')).toHaveLength(4);

    d = await startDaemon({}, { dataDir });
    try {
      expect(existsSync(orphan)).toBe(false);
      expect(existsSync(sibling)).toBe(false);
      expect(readdirSync(join(dataDir, 'tmp'))).toEqual([]);
      const textSha = obs.canonical_text_asset_id!.replace(/^ast_/, '');
      expect(
        filesUnder(join(dataDir, 'blobs'), 'relative')
          .map((p) => p.split('/')[2])
          .sort(),
      ).toEqual([obs.sha256, textSha].sort());
      const log = d.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'removed stray temp files and orphan blobs');
      expect(log).toMatchObject({ temps: 2, orphans: 2 });
      const content = await d.req(`/v1/assets/${obs.asset_id}/content`);
      expect(Buffer.from(await content.arrayBuffer()).equals(png)).toBe(true);
    } finally {
      await d.close();
    }
  });

  it('starts even when foreign files sit in the blob tree, and removes them', async () => {
    const dataDir = tempDir();
    let d = await startDaemon({}, { dataDir });
    await d.close();
    const blobs = join(dataDir, 'blobs');
    mkdirSync(join(blobs, 'ab', 'cd', 'not-a-blob-dir'), { recursive: true });
    writeFileSync(join(blobs, 'ab', 'cd', 'not-a-blob-dir', 'f'), 'x');
    writeFileSync(join(blobs, 'ab', 'stray-file'), 'x');
    writeFileSync(join(blobs, 'stray-top-file'), 'x');
    d = await startDaemon({}, { dataDir });
    try {
      expect((await d.req('/readyz')).status).toBe(200);
      expect(filesUnder(blobs, 'relative')).toEqual([]);
    } finally {
      await d.close();
    }
  });
});
