import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import { DirectoryWatcher } from '../agent/watcher.js';
import { createClient } from '../client/index.js';
import { VERSION } from '../version.js';

const USAGE = `usage: observd agent watch DIR --source ID [--credentials FILE | --token-file FILE] [--url URL]
         [--stream S] [--state FILE] [--scan-interval-ms N] [--heartbeat-interval-ms N]
  Credentials never come from a flag value: --credentials names a provisioned <machine>.capture.toml
  (observd agents provision --out-dir), --token-file a file holding the upload token; or set
  OBSERVD_UPLOAD_TOKEN, OBSERVD_HEARTBEAT_TOKEN and OBSERVD_MACHINE_ID (and OBSERVD_URL).`;

/** What the agent needs to talk to the daemon, from a credentials file and the environment. */
interface Credentials {
  url?: string;
  uploadToken?: string;
  machineId?: string;
  heartbeatToken?: string;
  heartbeatIntervalMs?: number;
  streamId?: string;
  metadata?: Record<string, unknown>;
}

/** Reads a provisioned `.capture.toml` for one of its sources. */
function fromCaptureToml(file: string, sourceId: string): Credentials {
  // The provisioned file's shape (Kheish's capture_provision.rs); every field read is optional.
  type CaptureToml = {
    daemon?: { base_url?: string };
    capture_agent?: { machine_id?: string; heartbeat_token?: string; heartbeat_interval_ms?: number };
    sources?: Array<{
      source_id?: string;
      stream_id?: string;
      remote?: { upload_token?: string };
      driver?: { metadata?: Record<string, unknown> };
    }>;
  };
  const t = parseToml(readFileSync(file, 'utf8')) as CaptureToml;
  const source = (t.sources ?? []).find((s) => s.source_id === sourceId);
  if (!source) throw new Error(`${file} has no source "${sourceId}"`);
  return {
    url: t.daemon?.base_url,
    uploadToken: source.remote?.upload_token,
    machineId: t.capture_agent?.machine_id,
    heartbeatToken: t.capture_agent?.heartbeat_token,
    heartbeatIntervalMs: t.capture_agent?.heartbeat_interval_ms,
    streamId: source.stream_id,
    metadata: source.driver?.metadata,
  };
}

/** `observd agent watch DIR --source ID …`: the reference capture agent (see DirectoryWatcher). */
export async function agentCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      source: { type: 'string' },
      credentials: { type: 'string' },
      'token-file': { type: 'string' },
      url: { type: 'string' },
      stream: { type: 'string' },
      state: { type: 'string' },
      'scan-interval-ms': { type: 'string' },
      'heartbeat-interval-ms': { type: 'string' },
    },
  });
  const [sub, dir] = positionals;
  if (sub !== 'watch' || !dir || !values.source) {
    console.error(USAGE);
    return 2;
  }
  // Number('abc') is NaN, which a timer takes as 1 ms: a scan or heartbeat storm.
  const intervals: Record<string, number | undefined> = {};
  for (const flag of ['scan-interval-ms', 'heartbeat-interval-ms'] as const) {
    if (values[flag] === undefined) continue;
    const ms = Number(values[flag]);
    if (!Number.isInteger(ms) || ms < 1) {
      console.error(`observd: --${flag} must be a positive integer\n\n${USAGE}`);
      return 2;
    }
    intervals[flag] = ms;
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    console.error(`observd: ${dir} is not a directory`);
    return 2;
  }
  const env = process.env;
  const creds: Credentials = values.credentials ? fromCaptureToml(values.credentials, values.source) : {};
  if (values['token-file']) creds.uploadToken = readFileSync(values['token-file'], 'utf8').trim();
  const uploadToken = env.OBSERVD_UPLOAD_TOKEN ?? creds.uploadToken;
  if (!uploadToken) {
    console.error(`observd: no upload token (give --credentials, --token-file or OBSERVD_UPLOAD_TOKEN)\n\n${USAGE}`);
    return 2;
  }
  const url = values.url ?? env.OBSERVD_URL ?? creds.url ?? 'http://127.0.0.1:4000';
  const log = (e: Record<string, unknown>) => console.log(JSON.stringify({ at_ms: Date.now(), ...e }));
  const watcher = new DirectoryWatcher({
    dir: resolve(dir),
    sourceId: values.source,
    client: createClient({ baseUrl: url, retries: 2, backoffMs: 200, userAgent: `observd-watch/${VERSION}` }),
    uploadToken,
    machineId: env.OBSERVD_MACHINE_ID ?? creds.machineId,
    heartbeatToken: env.OBSERVD_HEARTBEAT_TOKEN ?? creds.heartbeatToken,
    heartbeatIntervalMs: intervals['heartbeat-interval-ms'] ?? Number(creds.heartbeatIntervalMs ?? 30_000),
    statePath: values.state ?? join(resolve(dir), `.observd-watch-${values.source}.json`),
    scanIntervalMs: intervals['scan-interval-ms'] ?? 1000,
    streamId: values.stream ?? creds.streamId,
    metadata: creds.metadata,
    agentVersion: `observd-watch/${VERSION}`,
    log,
  });
  const onSignal = () => watcher.stop();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  log({ event: 'watching', dir: resolve(dir), source_id: values.source, url, queued: watcher.pending });
  const exit = await watcher.run();
  process.off('SIGTERM', onSignal);
  process.off('SIGINT', onSignal);
  log({ event: 'stopped', ...exit, queued: watcher.pending });
  return exit.reason === 'credential_refused' ? 4 : 0;
}
