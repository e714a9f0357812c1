import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { provisionRequestSchema, type ProvisionRequestInput, type ProvisionResponse } from '../capture/schemas.js';
import { ObservdError, createClient, type ObservdClient } from '../client/index.js';
import { openStore } from '../daemon.js';
import { AppError, statusOf } from '../errors.js';
import { allRows } from '../pagination.js';
import { parseWith } from '../http/validate.js';
import { commonArgs } from './args.js';

const USAGE = `usage: observd agents provision --batch-id B (--agent-id ID ... | --agent-prefix P --count N) [--daemon-url URL]
         [--os-profile macos|linux|windows] [--enable-screen] [--enable-camera] [--enable-system-audio] [--enable-microphone]
         [--camera-unique-id ID | --camera-name NAME] [--microphone-name NAME] [--interval-ms N] [--max-runs N] [--duration-ms N]
         [--retention-seconds N] [--max-active-observations N] [--max-active-bytes N] [--token-ttl-ms N]
         [--heartbeat-interval-ms N] [--heartbeat-grace-ms N] [--out-dir DIR] [--show-secrets]
       observd agents list | agents get ID | agents revoke ID [--reason R]
       observd alerts
  Against the data directory, or a running daemon with --url URL (admin token from --admin-token-file or OBSERVD_ADMIN_TOKEN).`;

const NUMBERS = [
  'interval-ms',
  'max-runs',
  'duration-ms',
  'retention-seconds',
  'max-active-observations',
  'max-active-bytes',
  'token-ttl-ms',
  'heartbeat-interval-ms',
  'heartbeat-grace-ms',
] as const;

/** The Kheish CLI's exit codes by status (`stable_exit_code`). */
function exitCodeOf(status: number): number {
  if (status === 400 || status === 413) return 2;
  if (status === 401 || status === 403) return 4;
  if (status === 404) return 5;
  if (status === 409) return 6;
  if ([408, 429, 503, 504].includes(status)) return 7;
  return 1;
}

/** The capture-agent operations, over HTTP (a client) or straight on the store. */
interface Backend {
  provision(body: ProvisionRequestInput): Promise<ProvisionResponse>;
  list(): AsyncIterable<unknown>;
  get(id: string): Promise<unknown>;
  revoke(id: string, reason?: string): Promise<unknown>;
  alerts(): AsyncIterable<unknown>;
  close(): Promise<void>;
}

function httpBackend(client: ObservdClient): Backend {
  return {
    provision: (b) => client.provisionAgents(b),
    list: () => client.listAgents(),
    get: (id) => client.getAgent(id),
    revoke: (id, reason) => client.revokeAgent(id, reason),
    alerts: () => client.listAlerts(),
    close: async () => {},
  };
}

function storeBackend(store: ReturnType<typeof openStore>): Backend {
  const agents = store.services.captureAgents;
  return {
    provision: async (b) => agents.provision(parseWith(provisionRequestSchema, b)),
    list: async function* () {
      yield* allRows(agents.list());
    },
    get: async (id) => agents.get(id),
    revoke: async (id, reason) => agents.revoke(id, reason),
    alerts: async function* () {
      yield* allRows(agents.alerts());
    },
    close: () => store.close(),
  };
}

/** `observd agents …` and `observd alerts`: capture-agent administration; prints JSON. */
export async function agentsCommand(argv: string[], alertsOnly = false): Promise<number> {
  const args = commonArgs(argv, {
    url: { type: 'string' },
    'batch-id': { type: 'string' },
    'agent-id': { type: 'string', multiple: true },
    'agent-prefix': { type: 'string' },
    count: { type: 'string' },
    'daemon-url': { type: 'string' },
    'os-profile': { type: 'string' },
    'enable-screen': { type: 'boolean' },
    'enable-camera': { type: 'boolean' },
    'enable-system-audio': { type: 'boolean' },
    'enable-microphone': { type: 'boolean' },
    'camera-unique-id': { type: 'string' },
    'camera-name': { type: 'string' },
    'microphone-name': { type: 'string' },
    'out-dir': { type: 'string' },
    'show-secrets': { type: 'boolean' },
    reason: { type: 'string' },
    ...Object.fromEntries(NUMBERS.map((n) => [n, { type: 'string' as const }])),
  });
  const v = args.values as Record<string, string | string[] | boolean | undefined>;
  const [sub, id] = alertsOnly ? ['alerts'] : args.positionals;
  if (!['provision', 'list', 'get', 'revoke', 'alerts'].includes(sub ?? '') || ((sub === 'get' || sub === 'revoke') && !id)) {
    console.error(USAGE);
    return 2;
  }
  const config = args.config();
  const url = v.url as string | undefined;
  const backend = url
    ? httpBackend(createClient({ baseUrl: url, token: config.admin_token }))
    : storeBackend(openStore(config, { sweepStrays: false }));
  try {
    if (sub === 'provision') {
      const body = provisionBody(v, url ?? `http://${config.bind}`);
      if (typeof body === 'string') {
        console.error(`${body}\n\n${USAGE}`);
        return 2;
      }
      const res = await backend.provision(body);
      const outDir = v['out-dir'] as string | undefined;
      if (outDir) {
        mkdirSync(outDir, { recursive: true });
        for (const a of res.agents) {
          const file = join(outDir, `${a.machine_id}.capture.toml`);
          writeFileSync(file, a.config_toml, { mode: 0o600 });
          chmodSync(file, 0o600);
        }
      }
      console.log(JSON.stringify(v['show-secrets'] ? res : hideSecrets(res), null, 2));
      return 0;
    }
    if (sub === 'list' || sub === 'alerts') {
      for await (const row of sub === 'list' ? backend.list() : backend.alerts()) console.log(JSON.stringify(row));
      return 0;
    }
    const out = sub === 'get' ? await backend.get(id!) : await backend.revoke(id!, v.reason as string | undefined);
    console.log(JSON.stringify(out, null, 2));
    return 0;
  } catch (e) {
    if (e instanceof ObservdError) {
      console.error(`observd: ${e.status} ${e.code}: ${e.detail}`);
      return exitCodeOf(e.status);
    }
    if (e instanceof AppError) {
      console.error(`observd: ${e.code}: ${e.message}`);
      return exitCodeOf(statusOf(e.code));
    }
    throw e;
  } finally {
    await backend.close();
  }
}

/** The request the Kheish CLI builds from these flags (`build_provision_request`), or a usage problem. */
function provisionBody(v: Record<string, string | string[] | boolean | undefined>, defaultUrl: string): ProvisionRequestInput | string {
  const batch = v['batch-id'] as string | undefined;
  if (!batch) return '--batch-id is required';
  const ids = [...((v['agent-id'] as string[] | undefined) ?? [])];
  const prefix = v['agent-prefix'] as string | undefined;
  if (prefix) {
    const count = Number(v.count ?? NaN);
    if (!Number.isInteger(count) || count < 1 || count > 1000) return '--agent-prefix needs --count between 1 and 1000';
    for (let i = 0; i < count; i++) ids.push(`${prefix}-${String(i).padStart(3, '0')}`);
  }
  if (!ids.length) return 'give --agent-id or --agent-prefix with --count';
  const enable = ['screen', 'camera', 'system-audio', 'microphone'].map((k) => v[`enable-${k}`] === true);
  const any = enable.some(Boolean);
  const numbers: Record<string, number> = {};
  for (const n of NUMBERS) {
    if (v[n] === undefined) continue;
    const x = Number(v[n]);
    if (!Number.isInteger(x)) return `--${n} must be an integer`;
    numbers[n.replaceAll('-', '_')] = x;
  }
  return {
    batch_id: batch,
    daemon_base_url: (v['daemon-url'] as string | undefined) ?? defaultUrl,
    os_profile: ((v['os-profile'] as string | undefined) ?? 'macos') as 'macos',
    agents: ids.map((machine_id) => ({
      machine_id,
      ...(v['camera-unique-id'] ? { camera_unique_id: v['camera-unique-id'] as string } : {}),
      ...(v['camera-name'] ? { camera_name: v['camera-name'] as string } : {}),
      ...(v['microphone-name'] ? { microphone_name: v['microphone-name'] as string } : {}),
    })),
    sources: { screen: any ? enable[0] : true, camera: enable[1], system_audio: enable[2], microphone: enable[3] },
    ...numbers,
  };
}

/** The answer with every token replaced (Kheish hides them unless --show-secrets). */
function hideSecrets(res: ProvisionResponse): unknown {
  return {
    batch_id: res.batch_id,
    agents: res.agents.map(({ heartbeat_token: _h, config_toml: _c, ...a }) => ({
      ...a,
      heartbeat_token: '<hidden>',
      sources: a.sources.map((s) => ({ ...s, upload_token: '<hidden>' })),
    })),
  };
}
