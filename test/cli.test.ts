import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnDaemon, type ChildDaemon } from './helpers/child.js';
import { startDaemon, testClock } from './helpers/daemon.js';
import { tempDirs } from './helpers/fixtures.js';
import { makePng, uploadBody } from './helpers/media.js';

const STACK = /^\s+at .+[:(]/m;

const tempDir = tempDirs('observd-cli-');

const MIGRATIONS = readdirSync(fileURLToPath(new URL('../src/db/migrations/', import.meta.url)))
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => f.replace(/\.sql$/, ''));

describe('observd migrate', () => {
  it('applies every migration once, creates the database, and applies nothing the second time', async () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const first = await runCli(['migrate', '--data-dir', dataDir]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ applied: MIGRATIONS, schema_version: MIGRATIONS.length });
    expect(MIGRATIONS.length).toBeGreaterThan(0);
    expect(existsSync(join(dataDir, 'observd.db'))).toBe(true);
    const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all();
      expect(tables).toEqual(expect.arrayContaining(['sources', 'assets', 'observations', 'audit_events']));
    } finally {
      db.close();
    }

    const second = await runCli(['migrate', '--data-dir', dataDir]);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ applied: [], schema_version: MIGRATIONS.length });
  });

  it('takes the data dir from OBSERVD_DATA_DIR too', async () => {
    const dataDir = join(tempDir(), 'from-env');
    const r = await runCli(['migrate'], { env: { OBSERVD_DATA_DIR: dataDir } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).applied).toEqual(MIGRATIONS);
    expect(existsSync(join(dataDir, 'observd.db'))).toBe(true);
  });
});

describe('observd usage', () => {
  it.each([['--help'], ['-h'], ['help']])('%s prints the usage and exits 0', async (flag) => {
    const r = await runCli([flag]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: observd/);
    for (const cmd of ['serve', 'migrate', 'sweep']) expect(r.stdout).toContain(cmd);
    expect(r.stderr).toBe('');
  });

  it('exits 2 on an unknown command, naming it', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain('usage: observd');
    expect(r.stdout).toBe('');
  });

  it('exits 2 on an unknown flag, without a stack trace', async () => {
    const r = await runCli(['migrate', '--data-dri', tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--data-dri');
    expect(r.stderr).not.toMatch(STACK);
  });

  it('exits 2 for `sweep` without --once', async () => {
    const r = await runCli(['sweep', '--data-dir', tempDir()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--once');
  });
});

describe('observd sweep --once', () => {
  it('purges expired observations, erases their blobs and prints the report as JSON', async () => {
    const dataDir = tempDir();
    // Uploads received an hour ago by a source keeping them a minute: expired now.
    const clock = testClock(Date.now() - 3_600_000);
    const d = await startDaemon({}, { dataDir, now: clock });
    const src = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: { source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot', retention_seconds: 60 },
    });
    const { upload_token } = (await src.json()) as { upload_token: string };
    const pngs = [makePng(8, 8, 1), makePng(9, 9, 2)];
    for (const [i, png] of pngs.entries()) {
      const up = await d.req('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: upload_token,
        json: uploadBody(png, `k${i}`),
      });
      expect(up.status).toBe(201);
    }
    await d.close();

    const r = await runCli(['sweep', '--once', '--data-dir', dataDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const bytes = pngs[0].length + pngs[1].length;
    const report = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({ purged: 2, bytes, blobs_erased: 2, batches: 1 });
    const { history, events, ...sweep } = report;
    expect(events).toEqual({ events: 0, deliveries: 0 });
    for (const v of Object.values(sweep)) expect(typeof v).toBe('number');
    // Nothing is old enough to forget yet.
    expect(history).toEqual({ purged_rows_deleted: 0, audit_events_deleted: 0, blobs_erased: 0 });

    const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
    try {
      expect(db.prepare(`SELECT retention_state FROM observations`).pluck().all()).toEqual(['purged', 'purged']);
      expect(db.prepare(`SELECT active_observation_count, active_byte_length FROM sources`).get()).toEqual({
        active_observation_count: 0,
        active_byte_length: 0,
      });
      expect(db.prepare(`SELECT COUNT(*) FROM assets`).pluck().get()).toBe(0);
    } finally {
      db.close();
    }
    const blobs = readdirSync(join(dataDir, 'blobs'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    expect(blobs).toEqual([]);

    const again = await runCli(['sweep', '--once', '--data-dir', dataDir]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ purged: 0, bytes: 0, blobs_erased: 0, batches: 0 });
  });
});

describe('observd jobs', () => {
  it('lists the daemon jobs, runs one by name against the data directory, and refuses daemon-only and unknown ones', async () => {
    const dataDir = tempDir();
    // One upload received an hour ago by a source keeping it a minute: expired now.
    const d = await startDaemon({}, { dataDir, now: testClock(Date.now() - 3_600_000) });
    const src = await d.req('/v1/observation-sources', {
      method: 'POST',
      json: { source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot', retention_seconds: 60 },
    });
    const { upload_token } = (await src.json()) as { upload_token: string };
    const png = makePng(8, 8, 1);
    const up = await d.req('/v1/observation-sources/cam/observations', { method: 'POST', token: upload_token, json: uploadBody(png, 'k') });
    expect(up.status).toBe(201);
    await d.close();

    const list = await runCli(['jobs', 'list', '--data-dir', dataDir]);
    expect(list.stderr).toBe('');
    expect(list.code).toBe(0);
    const jobs = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { name: string; interval_ms: number; daemon_only: boolean });
    expect(jobs.map((j) => j.name)).toEqual(
      expect.arrayContaining(['retention.sweep', 'retention.history', 'uploads.cleanup', 'events.prune', 'capture.heartbeat_deadlines']),
    );
    expect(jobs.find((j) => j.name === 'uploads.cleanup')?.daemon_only).toBe(true);
    expect(jobs.find((j) => j.name === 'retention.sweep')).toMatchObject({ daemon_only: false, interval_ms: expect.any(Number) });

    const run = await runCli(['jobs', 'run', 'retention.sweep', '--data-dir', dataDir]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ job: 'retention.sweep', result: { purged: 1, bytes: png.length, blobs_erased: 1 } });
    const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
    try {
      expect(db.prepare(`SELECT retention_state FROM observations`).pluck().all()).toEqual(['purged']);
    } finally {
      db.close();
    }

    const daemonOnly = await runCli(['jobs', 'run', 'uploads.cleanup', '--data-dir', dataDir]);
    expect(daemonOnly.code).toBe(2);
    expect(daemonOnly.stderr).toContain('runs only inside the daemon');
    const unknown = await runCli(['jobs', 'run', 'nope', '--data-dir', dataDir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no job named "nope"');
    const bare = await runCli(['jobs', '--data-dir', dataDir]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('usage: observd jobs');
  });
});

describe('observd sweep --once beside a running daemon', () => {
  it('does not pull an in-flight upload’s temp file from under the daemon', async () => {
    const dataDir = tempDir();
    const d = await spawnDaemon(dataDir);
    try {
      const created = await fetch(`${d.url}/v1/observation-sources`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot' }),
      });
      const { upload_token } = (await created.json()) as { upload_token: string };
      const png = makePng(32, 32, 3);
      const boundary = 'sweepbeside';
      const head = Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="observation"\r\n\r\n{"idempotency_key":"beside"}\r\n` +
          `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="f.png"\r\nContent-Type: image/png\r\n\r\n`,
      );
      const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
      const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request(
          `${d.url}/v1/observation-sources/cam/observations`,
          {
            method: 'POST',
            headers: {
              authorization: `Bearer ${upload_token}`,
              'content-type': `multipart/form-data; boundary=${boundary}`,
              'transfer-encoding': 'chunked',
            },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8').on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, text }));
          },
        );
        req.on('error', reject);
        req.write(Buffer.concat([head, png.subarray(0, 100)]));
        void (async () => {
          // The file part is being staged: run a sweep now, then finish the body.
          for (let i = 0; i < 100 && readdirSync(join(dataDir, 'tmp')).length === 0; i++) await sleep(20);
          const r = await runCli(['sweep', '--once', '--data-dir', dataDir]);
          expect(r.code).toBe(0);
          expect(JSON.parse(r.stdout)).toMatchObject({ purged: 0 });
          req.end(Buffer.concat([png.subarray(100), tail]));
        })().catch(reject);
      });
      const { status, text } = await response;
      expect(status, text).toBe(201);
      expect(JSON.parse(text).byte_length).toBe(png.length);
    } finally {
      expect(await d.stop()).toEqual({ code: 0, signal: null });
    }
  });
});

/** A keep-alive agent that never drops idle sockets by itself, like a long-lived client. */
const keepAlive = () => new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });

function get(url: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('observd serve: shutdown', () => {
  let d: ChildDaemon | undefined;
  afterAll(async () => {
    await d?.kill();
  });

  it('on SIGTERM lets an in-flight slow upload finish with 201, refuses new connections, then exits 0', async () => {
    const dataDir = tempDir();
    d = await spawnDaemon(dataDir);
    const agent = keepAlive();
    const created = await fetch(`${d.url}/v1/observation-sources`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source_id: 'cam', display_name: 'Cam', kind: 'screen_snapshot' }),
    });
    const { upload_token } = (await created.json()) as { upload_token: string };
    const png = makePng(64, 64, 7);
    const body = Buffer.from(JSON.stringify(uploadBody(png, 'slow')));
    const pieces = 12;
    const size = Math.ceil(body.length / pieces);

    let responseAt = 0;
    let exitAt = 0;
    const exited = d.exited.then((e) => ((exitAt = performance.now()), e));
    const response = new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
      const req = request(
        `${d!.url}/v1/observation-sources/cam/observations`,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${upload_token}`, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c) => (text += c));
          res.on('end', () => {
            responseAt = performance.now();
            resolve({ res, text });
          });
        },
      );
      req.on('error', reject);
      void (async () => {
        req.write(body.subarray(0, size));
        await sleep(300);
        d!.proc.kill('SIGTERM');
        for (let i = 1; i < pieces; i++) {
          await sleep(100);
          req.write(body.subarray(i * size, (i + 1) * size));
        }
        req.end();
      })();
    });

    // While the upload is still dribbling, the listener is already closed.
    let refused = false;
    for (let i = 0; i < 40 && !refused; i++) {
      await sleep(50);
      refused = await refusesConnections(d.port);
    }
    expect(refused).toBe(true);
    expect(responseAt).toBe(0);

    const { res, text } = await response;
    expect(res.statusCode).toBe(201);
    expect(res.headers.connection).toBe('close');
    const obs = JSON.parse(text) as { observation_id: string; sha256: string; byte_length: number };
    expect(obs.byte_length).toBe(png.length);

    // The connection stays open on the client side (keep-alive); the daemon must still exit.
    const exit = await Promise.race([exited, sleep(4_000).then(() => 'still running' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(exitAt).toBeGreaterThanOrEqual(responseAt);
    expect(d.stderr()).toBe('');
    const msgs = d.logs().map((l) => l.msg);
    expect(msgs).toContain('shutting down');
    expect(msgs[msgs.length - 1]).toBe('observd stopped');
    agent.destroy();

    // SQLite was closed cleanly (WAL checkpointed away) and the upload is in it.
    expect(existsSync(join(dataDir, 'observd.db-wal'))).toBe(false);
    const db = new Database(join(dataDir, 'observd.db'), { readonly: true });
    try {
      expect(db.prepare(`SELECT observation_id FROM observations`).pluck().all()).toEqual([obs.observation_id]);
    } finally {
      db.close();
    }
    expect(readdirSync(join(dataDir, 'tmp'))).toEqual([]);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('exits 0 promptly on %s when idle, even with an idle keep-alive client', async (signal) => {
    const dataDir = tempDir();
    d = await spawnDaemon(dataDir);
    const agent = keepAlive();
    expect(await get(`${d.url}/livez`, agent)).toEqual({ status: 200, body: '{"status":"ok"}' });
    d.proc.kill(signal);
    const exit = await Promise.race([d.exited, sleep(4_000).then(() => 'still running' as const)]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(d.logs().map((l) => l.msg)).toContain('observd stopped');
    expect(existsSync(join(dataDir, 'observd.db-wal'))).toBe(false);
    agent.destroy();
  });
});

describe('observd serve: configuration errors', () => {
  let busy: Server;
  let busyPort = 0;
  beforeAll(async () => {
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    busyPort = (busy.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => busy.close(() => r())));

  type Case = { name: string; toml?: string; args?: (dir: string) => string[]; env?: Record<string, string>; expect: RegExp[] };
  const cases: Case[] = [
    { name: 'a negative limit', toml: '[limits]\nmax_raw_bytes = -5\n', expect: [/invalid configuration/, /limits\.max_raw_bytes/] },
    { name: 'a wrongly typed value', toml: 'bind = 4000\n', expect: [/invalid configuration/, /bind/] },
    { name: 'an unknown key', toml: 'colour = "red"\n', expect: [/invalid configuration/, /colour/] },
    { name: 'an unknown log level', toml: 'log_level = "loud"\n', expect: [/invalid configuration/, /log_level/] },
    { name: 'broken TOML', toml: 'bind = "127.0.0.1:0\n', expect: [/observd:/] },
    { name: 'a missing --config file', args: (dir) => ['--config', join(dir, 'nope.toml')], expect: [/config file not found/] },
    { name: 'a non-number env value', env: { OBSERVD_MAX_RAW_BYTES: 'lots' }, expect: [/limits\.max_raw_bytes/] },
    { name: 'a malformed bind', args: () => ['--bind', 'localhost'], expect: [/bind must be host:port/] },
    { name: 'a public bind without an admin token', args: () => ['--bind', '0.0.0.0:0'], expect: [/refusing to listen/] },
    {
      name: 'a too-short admin token file',
      args: (dir) => (writeFileSync(join(dir, 'admin.token'), 'short\n'), ['--admin-token-file', join(dir, 'admin.token')]),
      expect: [/at least 16 characters/],
    },
    { name: 'a missing admin token file', args: (dir) => ['--admin-token-file', join(dir, 'absent.token')], expect: [/absent\.token/] },
    { name: 'a port in use', args: () => ['--bind', `127.0.0.1:${busyPort}`], expect: [/EADDRINUSE|in use/] },
  ];

  it.each(cases)('$name: exits 1 with a readable message and no stack trace', async (c) => {
    const dir = tempDir();
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir);
    if (c.toml !== undefined) writeFileSync(join(dir, 'config.toml'), c.toml);
    const r = await runCli(['serve', '--data-dir', dataDir, ...(c.args?.(dir) ?? [])], { cwd: dir, env: c.env, timeoutMs: 10_000 });
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^observd: /);
    for (const re of c.expect) expect(r.stderr).toMatch(re);
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stdout).not.toContain('observd listening');
  });
});
