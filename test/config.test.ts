import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopback, loadConfig, parseBind } from '../src/config/load.js';
import { parseConfig } from '../src/config/schema.js';
import { createDaemon } from '../src/daemon.js';

const ROOT = resolve(import.meta.dirname, '..');
const ADMIN = 'config-admin-token-0123456789';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'observd-config-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes a file into the test's temp dir and returns its path. */
function file(content: string, name = `f${n++}`): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

/** The message of what `fn` throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a throw');
}

describe('parseConfig', () => {
  it('fills every default, including the nested sections', () => {
    const c = parseConfig({});
    expect(c).toMatchObject({ bind: '127.0.0.1:4000', data_dir: './data', log_level: 'info' });
    expect(c.admin_token).toBeUndefined();
    expect(c.limits).toMatchObject({
      max_raw_bytes: 20 * 1024 * 1024,
      max_metadata_bytes: 16384,
      max_canonical_text_bytes: 1024 * 1024,
      max_admin_body_bytes: 256 * 1024,
    });
    expect(c.server).toEqual({ headers_timeout_ms: 10_000, request_timeout_ms: 120_000, shutdown_grace_ms: 10_000, read_workers: 'auto' });
    expect(c.retention).toEqual({
      sweep_interval_ms: 5_000,
      sweep_batch_size: 100,
      min_free_bytes: 1024 * 1024 * 1024,
      history_ms: 30 * 24 * 3600 * 1000,
    });
    // A partial section keeps the other defaults of that section.
    expect(parseConfig({ limits: { max_raw_bytes: 10 } }).limits).toMatchObject({ max_raw_bytes: 10, max_metadata_bytes: 16384 });
  });

  it('refuses unknown keys, bad types and short tokens without echoing the token', () => {
    expect(thrown(() => parseConfig({ bnid: 'x' }))).toMatch(/invalid configuration[\s\S]*bnid/);
    expect(thrown(() => parseConfig({ limits: { max_raw_bytes: -1 } }))).toContain('limits.max_raw_bytes');
    expect(thrown(() => parseConfig({ log_level: 'loud' }))).toContain('log_level');
    const msg = thrown(() => parseConfig({ admin_token: 'tiny-secret' }));
    expect(msg).toContain('admin_token');
    expect(msg).not.toContain('tiny-secret');
  });
});

describe('loadConfig layering: TOML < OBSERVD_* env < flags', () => {
  const toml = () =>
    file(
      [
        'bind = "127.0.0.1:5000"',
        'data_dir = "/from/toml"',
        'log_level = "warn"',
        '[limits]',
        'max_raw_bytes = 1000',
        '[retention]',
        'sweep_interval_ms = 100',
      ].join('\n'),
      `config-${n++}.toml`,
    );

  it('reads the TOML file and keeps the defaults it does not name', () => {
    const c = loadConfig({ config: toml() }, {});
    expect(c).toMatchObject({ bind: '127.0.0.1:5000', data_dir: '/from/toml', log_level: 'warn' });
    expect(c.limits).toMatchObject({ max_raw_bytes: 1000, max_metadata_bytes: 16384 });
    expect(c.retention).toMatchObject({ sweep_interval_ms: 100, sweep_batch_size: 100 });
  });

  it('lets env override the file, and flags override both', () => {
    const path = toml();
    const env = {
      OBSERVD_BIND: '127.0.0.1:6000',
      OBSERVD_MAX_RAW_BYTES: '2000',
      OBSERVD_LOG_LEVEL: 'debug',
      OBSERVD_SWEEP_INTERVAL_MS: '250',
    };
    const fromEnv = loadConfig({ config: path }, env);
    expect(fromEnv).toMatchObject({ bind: '127.0.0.1:6000', data_dir: '/from/toml', log_level: 'debug' });
    expect(fromEnv.limits.max_raw_bytes).toBe(2000);
    expect(fromEnv.retention.sweep_interval_ms).toBe(250);
    const fromFlags = loadConfig({ config: path, bind: '127.0.0.1:7000', data_dir: '/from/flag', log_level: 'error' }, env);
    expect(fromFlags).toMatchObject({ bind: '127.0.0.1:7000', data_dir: '/from/flag', log_level: 'error' });
    expect(fromFlags.limits.max_raw_bytes).toBe(2000);
    // An empty env value is treated as unset.
    expect(loadConfig({ config: path }, { OBSERVD_BIND: '' }).bind).toBe('127.0.0.1:5000');
  });

  it('finds the file through OBSERVD_CONFIG; --config wins over it; a named missing file is an error', () => {
    const a = file('data_dir = "/a"', 'a.toml');
    const b = file('data_dir = "/b"', 'b.toml');
    expect(loadConfig({}, { OBSERVD_CONFIG: a }).data_dir).toBe('/a');
    expect(loadConfig({ config: b }, { OBSERVD_CONFIG: a }).data_dir).toBe('/b');
    expect(thrown(() => loadConfig({ config: join(dir, 'missing.toml') }, {}))).toContain('config file not found');
    expect(thrown(() => loadConfig({}, { OBSERVD_CONFIG: join(dir, 'missing.toml') }))).toContain('config file not found');
  });

  it('refuses bad values from each layer', () => {
    expect(thrown(() => loadConfig({ config: file('colour = "red"', 'bad.toml') }, {}))).toContain('colour');
    expect(thrown(() => loadConfig({ config: file('bind = [', 'broken.toml') }, {}))).toMatch(/^Invalid TOML document: unfinished array/);
    expect(thrown(() => loadConfig({ config: toml() }, { OBSERVD_MAX_RAW_BYTES: 'lots' }))).toContain('limits.max_raw_bytes');
    expect(thrown(() => loadConfig({ config: toml(), log_level: 'shouty' }, {}))).toContain('log_level');
  });

  it('reads token files, trimming whitespace and the trailing newline', () => {
    const adminFile = file(`  ${ADMIN}\n\n`);
    const readerFile = file('reader-token-from-file-0001\r\n');
    const c = loadConfig({ config: file(`admin_token_file = "${adminFile}"`, 'tok.toml') }, { OBSERVD_READONLY_TOKEN_FILE: readerFile });
    expect(c.admin_token).toBe(ADMIN);
    expect(c.readonly_token).toBe('reader-token-from-file-0001');
    const viaFlags = loadConfig({ config: toml(), admin_token_file: adminFile, readonly_token_file: readerFile }, {});
    expect(viaFlags.admin_token).toBe(ADMIN);
    expect(viaFlags.readonly_token).toBe('reader-token-from-file-0001');
  });

  it('rejects a token file holding fewer than 16 characters, without echoing it', () => {
    const short = file('short-secret\n');
    const msg = thrown(() => loadConfig({ config: toml(), admin_token_file: short }, {}));
    expect(msg).toContain('at least 16');
    expect(msg).not.toContain('short-secret');
    expect(thrown(() => loadConfig({ config: toml() }, { OBSERVD_READONLY_TOKEN_FILE: short }))).toContain('at least 16');
    // Whitespace does not count towards the length.
    expect(thrown(() => loadConfig({ config: toml(), admin_token_file: file('   abc   \n'.padEnd(30, ' ')) }, {}))).toContain(
      'at least 16',
    );
    expect(thrown(() => loadConfig({ config: toml(), admin_token_file: join(dir, 'no-such-token') }, {}))).toMatch(
      /^ENOENT: no such file or directory, open '.*no-such-token'$/,
    );
    expect(thrown(() => loadConfig({ config: toml() }, { OBSERVD_ADMIN_TOKEN: 'short-secret' }))).not.toContain('short-secret');
  });

  it('a token given at a later layer wins, whether as a value or as a file', () => {
    const fileToken = 'admin-token-from-a-file-0001';
    const tokenFile = file(fileToken);
    const envToken = 'admin-token-from-env-000001';
    // TOML names a file, env gives a value: env wins.
    const tomlFile = file(`admin_token_file = "${tokenFile}"\nreadonly_token_file = "${tokenFile}"`, 'f.toml');
    const c1 = loadConfig({ config: tomlFile }, { OBSERVD_ADMIN_TOKEN: envToken, OBSERVD_READONLY_TOKEN: 'reader-token-from-env-0001' });
    expect(c1.admin_token).toBe(envToken);
    expect(c1.readonly_token).toBe('reader-token-from-env-0001');
    // TOML gives a value, env names a file: the file wins.
    const tomlValue = file('admin_token = "admin-token-from-toml-00001"', 'v.toml');
    expect(loadConfig({ config: tomlValue }, { OBSERVD_ADMIN_TOKEN_FILE: tokenFile }).admin_token).toBe(fileToken);
    expect(loadConfig({ config: tomlValue }, {}).admin_token).toBe('admin-token-from-toml-00001');
    // Env gives a value, a flag names a file: the flag wins.
    expect(loadConfig({ config: tomlValue, admin_token_file: tokenFile }, { OBSERVD_ADMIN_TOKEN: envToken }).admin_token).toBe(fileToken);
  });
});

describe('parseBind and isLoopback', () => {
  it.each([
    ['127.0.0.1:4000', '127.0.0.1', 4000],
    ['0.0.0.0:0', '0.0.0.0', 0],
    ['localhost:65535', 'localhost', 65535],
    ['[::1]:8080', '::1', 8080],
    ['[::]:1', '::', 1],
    ['example.com:443', 'example.com', 443],
  ])('parses %s', (bind, host, port) => {
    expect(parseBind(bind)).toEqual({ host, port });
  });

  it.each(['127.0.0.1', ':4000', '127.0.0.1:', '::1:4000', 'host:port', '127.0.0.1:-1', '', '[::1]', 'a:1:2'])(
    'refuses %j as not host:port',
    (bind) => {
      expect(thrown(() => parseBind(bind))).toBe(`bind must be host:port, got "${bind}"`);
    },
  );

  it.each([65536, 99999])('refuses port %d as out of range', (port) => {
    expect(thrown(() => parseBind(`127.0.0.1:${port}`))).toBe(`bind port out of range: ${port}`);
  });

  it.each([
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['localhost', true],
    ['::1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['192.168.1.10', false],
    ['127.0.0.1.example.com', false],
    ['localhost.example.com', false],
  ])('isLoopback(%s) is %s', (host, expected) => {
    expect(isLoopback(host)).toBe(expected);
  });

  it('createDaemon refuses a non-loopback bind without an admin token, before touching the data dir', () => {
    const dataDir = join(dir, 'never-created');
    expect(() => createDaemon(parseConfig({ bind: '0.0.0.0:0', data_dir: dataDir }))).toThrow(
      /refusing to listen on 0\.0\.0\.0[\s\S]*admin token/,
    );
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('observd serve as a child process', () => {
  beforeAll(() => {
    // The CLI runs the compiled JS; build it so the test sees the current sources.
    // A type error elsewhere still emits JS (tsc exits non-zero); the typecheck reports it, not this test.
    try {
      execFileSync(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
    } catch {
      /* emitted anyway */
    }
    expect(existsSync(join(ROOT, 'dist/cli/main.js'))).toBe(true);
  });

  /** The environment without any OBSERVD_* setting of the test runner. */
  function cleanEnv(extra: Record<string, string> = {}) {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OBSERVD_') && v !== undefined) env[k] = v;
    return { ...env, ...extra };
  }

  /** Runs `observd` in a fresh temp cwd; resolves on exit, or lets the caller act once it listens. */
  function run(args: string[], env: Record<string, string>, onListening?: (port: number, child: ReturnType<typeof spawn>) => void) {
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    const child = spawn(process.execPath, [join(ROOT, 'bin/observd'), ...args], {
      cwd,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let listening = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout.on('data', (c) => {
      stdout += String(c);
      const m = /"address":"[^"]*:(\d+)".*"observd listening"|"observd listening".*"address":"[^"]*:(\d+)"/.exec(stdout);
      if (m && !listening && onListening) {
        listening = true;
        onListening(Number(m[1] ?? m[2]), child);
      }
    });
    child.stderr.on('data', (c) => (stderr += String(c)));
    return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; cwd: string }>((done) =>
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        done({ code, signal, stdout, stderr, cwd });
      }),
    );
  }

  it('refuses to start on 0.0.0.0 without an admin token, with a clear message and exit code 1', async () => {
    const r = await run(['serve', '--bind', '0.0.0.0:0'], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0/);
    expect(r.stderr).toMatch(/OBSERVD_ADMIN_TOKEN|admin-token-file/);
    expect(r.stdout).not.toContain('observd listening');
    expect(existsSync(join(r.cwd, 'data'))).toBe(false);
  });

  it('refuses a short admin token file with a clear message', async () => {
    const short = file('abc\n');
    const r = await run(['serve', '--bind', '127.0.0.1:0', '--admin-token-file', short], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('at least 16 characters');
  });

  it('starts on 0.0.0.0 with OBSERVD_ADMIN_TOKEN, enforces it, and exits 0 on SIGTERM', async () => {
    const checks: Array<Promise<void>> = [];
    const r = await run(['serve', '--bind', '0.0.0.0:0'], { OBSERVD_ADMIN_TOKEN: ADMIN }, (port, child) => {
      checks.push(
        (async () => {
          try {
            const base = `http://127.0.0.1:${port}`;
            expect((await fetch(`${base}/livez`)).status).toBe(200);
            expect((await fetch(`${base}/v1/observation-sources`)).status).toBe(401);
            const ok = await fetch(`${base}/v1/observation-sources`, { headers: { authorization: `Bearer ${ADMIN}` } });
            expect(ok.status).toBe(200);
            expect(await ok.json()).toEqual([]);
          } finally {
            child.kill('SIGTERM');
          }
        })(),
      );
    });
    await Promise.all(checks);
    expect(checks).toHaveLength(1);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('"address":"0.0.0.0:');
    expect(r.stdout).toContain('observd stopped');
    expect(r.stdout + r.stderr).not.toContain(ADMIN);
    // Data went to ./data of the working directory.
    expect(existsSync(join(r.cwd, 'data', 'observd.db'))).toBe(true);
  });

  it('picks up ./config.toml from the working directory (admin token from a file it names)', async () => {
    const cwd = mkdtempSync(join(dir, 'cwd-toml-'));
    const tokenFile = file(`${ADMIN}\n`);
    writeFileSync(join(cwd, 'config.toml'), `bind = "0.0.0.0:0"\nadmin_token_file = "${tokenFile}"\ndata_dir = "${join(cwd, 'store')}"\n`);
    const child = spawn(process.execPath, [join(ROOT, 'bin/observd')], { cwd, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await new Promise<void>((ready) =>
      child.stdout.on('data', (c) => {
        out += String(c);
        if (out.includes('observd listening')) ready();
      }),
    );
    const port = Number(/"address":"0\.0\.0\.0:(\d+)"/.exec(out)?.[1]);
    expect(port).toBeGreaterThan(0);
    expect((await fetch(`http://127.0.0.1:${port}/v1/observation-sources`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(
      200,
    );
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    clearTimeout(timer);
    expect(existsSync(join(cwd, 'store', 'observd.db'))).toBe(true);
  });
});
