import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** The CLI shim and the compiled entry point it loads (`npm run build` makes it). */
export const BIN = fileURLToPath(new URL('../../bin/observd', import.meta.url));
export const DIST_MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** Throws a readable error when the CLI has not been compiled. */
export function assertBuilt(): void {
  if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run \`npm run build\` before the CLI tests`);
}

/** The environment of a child: the parent's without any OBSERVD_* setting, no disk floor, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('OBSERVD_') && !k.startsWith('VITEST') && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, OBSERVD_MIN_FREE_BYTES: '0', ...extra };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliResult extends Exit {
  stdout: string;
  stderr: string;
}

/** A directory with no config.toml in it, so the CLI does not pick one up from the repository. */
let emptyCwd: string | undefined;
function neutralCwd(): string {
  emptyCwd ??= mkdtempSync(join(tmpdir(), 'observd-cwd-'));
  return emptyCwd;
}

/** Runs `node bin/observd ...args` to completion (killing it after `timeoutMs`). */
export function runCli(args: string[], opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? neutralCwd(),
      env: childEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 15_000);
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface ChildDaemon {
  proc: ChildProcess;
  pid: number;
  url: string;
  port: number;
  dataDir: string;
  /** Every stdout line so far (pino JSON). */
  lines: string[];
  /** Parsed stdout lines that are JSON. */
  logs(): Array<Record<string, unknown>>;
  stderr(): string;
  /** Resolves when the process has exited (and its pipes closed). */
  exited: Promise<Exit>;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<Exit>;
  /** Sends SIGKILL and waits for the exit. */
  kill(): Promise<Exit>;
}

/**
 * Spawns `node bin/observd serve --bind 127.0.0.1:0 --data-dir <dataDir>` and resolves once it
 * logs "observd listening" (with the port it got). Rejects if it exits or stays silent first.
 */
export function spawnDaemon(
  dataDir: string,
  opts: { env?: Record<string, string>; args?: string[]; timeoutMs?: number } = {},
): Promise<ChildDaemon> {
  assertBuilt();
  const proc = spawn(process.execPath, [BIN, 'serve', '--bind', '127.0.0.1:0', '--data-dir', dataDir, ...(opts.args ?? [])], {
    cwd: neutralCwd(),
    env: childEnv({ OBSERVD_LOG_LEVEL: 'info', ...opts.env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  const exited = new Promise<Exit>((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  return new Promise<ChildDaemon>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`observd did not report listening within ${opts.timeoutMs ?? 15_000} ms; stderr: ${stderr}`));
    }, opts.timeoutMs ?? 15_000);
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    onLines(proc.stdout!, (line) => {
      lines.push(line);
      if (!line.includes('observd listening')) return;
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(line);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      const send = (sig: NodeJS.Signals) => {
        if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
        return exited;
      };
      resolve({
        proc,
        pid: proc.pid!,
        port,
        url: `http://127.0.0.1:${port}`,
        dataDir,
        lines,
        logs: () =>
          lines.flatMap((l) => {
            try {
              return [JSON.parse(l) as Record<string, unknown>];
            } catch {
              return [];
            }
          }),
        stderr: () => stderr,
        exited,
        stop: () => send('SIGTERM'),
        kill: () => send('SIGKILL'),
      });
    });
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`observd exited (${e.code ?? e.signal}) before listening; stderr: ${stderr}`));
    });
  });
}

/** Calls `onLine` with each complete line of a child's output stream (UTF-8) as it arrives. */
export function onLines(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8').on('data', (d: string) => {
    partial += d;
    const parts = partial.split('\n');
    partial = parts.pop()!;
    for (const line of parts) onLine(line);
  });
}

/** A command's stdout read as one JSON value a line. */
export function jsonLines(stdout: string): any[] {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}
