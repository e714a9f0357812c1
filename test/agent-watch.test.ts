import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createClient, type ObservationView } from '../src/client/index.js';
import { BIN, childEnv, runCli, spawnDaemon, type ChildDaemon } from './helpers/child.js';
import { makePng } from './helpers/media.js';

const SOURCE = 'macos-watch-box-screen';
const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};
let daemon: ChildDaemon;
let port: number;
let dataDir: string;
let watchDir: string;
let credentials: string;

/** A port free right now (the daemon must come back on the same one after a restart). */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** The agent as a child process, with its JSON log lines and a way to wait for one. */
function startAgent(
  args = ['agent', 'watch', watchDir, '--source', SOURCE, '--credentials', credentials, '--scan-interval-ms', '100'],
  cwd?: string,
) {
  const proc: ChildProcess = spawn(process.execPath, [BIN, ...args], {
    env: childEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd,
  });
  const events: Array<Record<string, any>> = [];
  const waiters = new Set<() => void>();
  let partial = '';
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const l of lines) if (l.trim()) events.push(JSON.parse(l));
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  const until = (pred: (evs: typeof events) => boolean, what: string, ms = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!pred(events)) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`agent: no ${what} within ${ms} ms; events: ${JSON.stringify(events.slice(-10))}; stderr: ${stderr}`));
      }, ms);
      waiters.add(check);
      check();
    });
  const uploaded = () => events.filter((e) => e.event === 'uploaded');
  return { proc, events, exited, until, uploaded };
}

const png = (seed: number) => makePng(3, 3, seed);
const observations = async () => {
  const out: ObservationView[] = [];
  for await (const o of createClient({ baseUrl: daemon.url }).listObservations({ source_id: SOURCE })) out.push(o);
  return out;
};

beforeAll(async () => {
  port = await freePort();
  dataDir = tmp('observd-watch-data-');
  watchDir = tmp('observd-watch-dir-');
  const credsDir = tmp('observd-watch-creds-');
  daemon = await spawnDaemon(dataDir, { args: ['--bind', `127.0.0.1:${port}`] });
  const r = await runCli([
    'agents',
    'provision',
    '--url',
    daemon.url,
    '--batch-id',
    'watch',
    '--agent-id',
    'Watch Box',
    '--heartbeat-interval-ms',
    '300',
    '--out-dir',
    credsDir,
  ]);
  expect(r.code, r.stderr).toBe(0);
  // Printed without secrets; the credentials are in the 0600 file only.
  expect(r.stdout).not.toMatch(/khc_[0-9a-f]{64}/);
  expect(JSON.parse(r.stdout).agents[0].machine_id).toBe('watch-box');
  credentials = join(credsDir, 'watch-box.capture.toml');
});
afterAll(async () => {
  await daemon?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

it('uploads new and changed files with their mtime, survives a daemon restart, never uploads twice, stops on revoke', async () => {
  writeFileSync(join(watchDir, 'before.png'), png(1));
  writeFileSync(join(watchDir, 'notes.txt'), 'not media');
  let agent = startAgent();
  await agent.until((e) => e.some((x) => x.event === 'uploaded' && x.file === 'before.png'), 'first upload');

  // Files appearing while it runs: one renamed into place, one with a known mtime.
  writeFileSync(join(watchDir, '.partial.tmp'), png(2));
  renameSync(join(watchDir, '.partial.tmp'), join(watchDir, 'renamed.png'));
  const shot = join(watchDir, 'shot.png');
  writeFileSync(shot, png(3));
  const mtime = new Date(Date.UTC(2026, 5, 1, 8, 30, 0));
  utimesSync(shot, mtime, mtime);
  await agent.until((e) => e.filter((x) => x.event === 'uploaded').length >= 3, 'three uploads');
  await agent.until((e) => e.some((x) => x.event === 'heartbeat'), 'a heartbeat');
  let obs = await observations();
  expect(obs).toHaveLength(3);
  expect(obs.find((o) => o.file_name === 'shot.png')?.captured_at_ms).toBe(mtime.getTime());
  const view = await (await fetch(`${daemon.url}/v1/capture-agents/watch-box`)).json();
  expect(view).toMatchObject({ heartbeat_state: 'healthy', last_heartbeat_observed_source_ids: [SOURCE] });
  expect(view.last_heartbeat_agent_version).toMatch(/^observd-watch\//);

  // A changed file is a new observation; an untouched one is not sent again.
  writeFileSync(join(watchDir, 'before.png'), png(4));
  await agent.until((e) => e.filter((x) => x.event === 'uploaded').length >= 4, 'the changed file');

  // The daemon goes away: files queue up, and are uploaded once it is back on the same port.
  await daemon.stop();
  writeFileSync(join(watchDir, 'offline-1.png'), png(5));
  writeFileSync(join(watchDir, 'offline-2.png'), png(6));
  await agent.until((e) => e.some((x) => x.event === 'upload_failed'), 'a failed upload');
  daemon = await spawnDaemon(dataDir, { args: ['--bind', `127.0.0.1:${port}`] });
  await agent.until((e) => e.filter((x) => x.event === 'uploaded').length >= 6, 'the queued files', 60_000);
  expect(await observations()).toHaveLength(6);

  // SIGTERM: a clean exit; a restarted agent remembers what was acknowledged.
  agent.proc.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
  expect(agent.events.at(-1)).toMatchObject({ event: 'stopped', reason: 'stopped', queued: 0 });
  agent = startAgent();
  writeFileSync(join(watchDir, 'after-restart.png'), png(7));
  await agent.until((e) => e.some((x) => x.event === 'uploaded'), 'an upload after restart');
  expect(agent.uploaded().map((e) => e.file)).toEqual(['after-restart.png']);
  obs = await observations();
  expect(obs).toHaveLength(7);
  expect(new Set(obs.map((o) => o.idempotency_key)).size).toBe(7);

  // Revoked: the next heartbeat or upload is refused; the agent exits 4 and the uploads stay.
  const revoke = await fetch(`${daemon.url}/v1/capture-agents/watch-box/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'retired' }),
  });
  expect(revoke.status).toBe(200);
  writeFileSync(join(watchDir, 'after-revoke.png'), png(8));
  expect(await agent.exited).toBe(4);
  expect(agent.events.some((e) => e.event === 'credential_refused')).toBe(true);
  expect(await observations()).toHaveLength(7);
}, 180_000);

it('runs as the README says: provision, then watch, in two commands', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split('## Capture agents')[1].split('\n## ')[0];
  const [provision, watch] = /```sh\n([\s\S]*?)```/.exec(section)![1].trim().split('\n');
  expect(watch).toMatch(/^bin\/observd agent watch ~\/Screenshots /);
  const cwd = tmp('observd-readme-agent-');
  const shots = tmp('observd-readme-shots-');
  // On the running daemon's data directory, with its address as the configured bind.
  const argv = (cmd: string) =>
    cmd
      .replace(/^bin\/observd /, '')
      .replace('~/Screenshots', shots)
      .split(' ');
  const env = { OBSERVD_DATA_DIR: dataDir, OBSERVD_BIND: `127.0.0.1:${port}` };
  const r = await runCli(argv(provision), { cwd, env });
  expect(r.code, r.stderr).toBe(0);
  writeFileSync(join(shots, 'readme.png'), png(42));
  const agent = startAgent(argv(watch), cwd);
  await agent.until((e) => e.some((x) => x.event === 'uploaded' && x.file === 'readme.png'), 'the README upload');
  await agent.until((e) => e.some((x) => x.event === 'heartbeat'), 'a heartbeat');
  agent.proc.kill('SIGTERM');
  expect(await agent.exited).toBe(0);
}, 120_000);
