import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseConfig, type ConfigInput } from '../../src/config/schema.js';
import { createDaemon, type Daemon } from '../../src/daemon.js';
import { createLogger } from '../../src/logger.js';
import type { HostResolver } from '../../src/uploads/url-fetch.js';

/** A controllable clock for tests. */
export function testClock(start = Date.UTC(2026, 0, 1)) {
  let t = start;
  const now = () => t;
  return Object.assign(now, {
    set: (v: number) => void (t = v),
    advance: (ms: number) => void (t += ms),
  });
}

export interface TestDaemon {
  daemon: Daemon;
  url: string;
  dataDir: string;
  logs: string[];
  close(): Promise<void>;
  /** fetch against the daemon with an optional bearer token. */
  req(path: string, init?: RequestInit & { token?: string; json?: unknown }): Promise<Response>;
}

/** Starts a real daemon on 127.0.0.1:0 with a fresh temp data dir; captures its log lines. */
export async function startDaemon(
  overrides: ConfigInput = {},
  opts: { now?: () => number; dataDir?: string; resolveHost?: HostResolver; fetchCa?: string } = {},
): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'observd-test-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const config = parseConfig({
    bind: '127.0.0.1:0',
    data_dir: dataDir,
    log_level: 'info',
    ...overrides,
    retention: { min_free_bytes: 0, ...(overrides.retention ?? {}) },
  });
  const daemon = createDaemon(config, {
    now: opts.now,
    logger: createLogger('info', sink),
    resolveHost: opts.resolveHost,
    fetchCa: opts.fetchCa,
  });
  const { url } = await daemon.start();
  let closed = false;
  return {
    daemon,
    url,
    dataDir,
    logs,
    async close() {
      if (closed) return;
      closed = true;
      await daemon.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    req(path, init = {}) {
      const { token, json, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      let body = rest.body;
      if (json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(json);
      }
      return fetch(url + path, { ...rest, headers, body });
    },
  };
}
