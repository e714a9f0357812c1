import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../src/config/schema.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody, upload as uploadView } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { startReceiver, type ReceivedHook, type WebhookReceiver } from './helpers/webhook-receiver.js';

const TOKEN = 'webhook-test-upload-token-1';
const SECRET = `whsec_${randomBytes(24).toString('base64')}`;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function receiver(): Promise<WebhookReceiver> {
  const r = await startReceiver();
  cleanups.push(() => r.close());
  return r;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'observd-hooks-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function daemon(rcv: WebhookReceiver, opts: { dataDir?: string; types?: string[]; schedule?: number[] } = {}): Promise<TestDaemon> {
  const config: ConfigInput = {
    events: { webhook_retry_schedule_ms: opts.schedule ?? [100, 100, 100], webhook_retry_jitter: 0, webhook_timeout_ms: 2_000 },
    webhooks: [{ url: rcv.url, secret: SECRET, event_types: (opts.types ?? []) as never }],
  };
  const d = await startDaemon(config, { dataDir: opts.dataDir });
  cleanups.push(() => d.close());
  return d;
}

async function upload(d: TestDaemon, key: string, seed: number): Promise<string> {
  return (await uploadView(d, 'cam', TOKEN, makePng(2, 2, seed), key)).observation_id;
}

/** Verifies a delivery with the standardwebhooks package (throws when the signature is wrong). */
function verified(h: ReceivedHook): { type: string; timestamp: string; data: Record<string, unknown> } {
  return new Webhook(SECRET).verify(h.body, h.headers as Record<string, string>) as never;
}

describe('webhooks', () => {
  it('delivers signed, thin payloads that standardwebhooks verifies; a source event carries no token', async () => {
    const rcv = await receiver();
    const d = await daemon(rcv);
    await createSource(d, sourceBody('cam', TOKEN));
    const obsId = await upload(d, 'k1', 1);
    await rcv.waitFor(2);
    const [src, obs] = rcv.received.map(verified);
    expect(src).toMatchObject({ type: 'source.updated', data: { source_id: 'cam', change: 'created' } });
    expect(obs).toMatchObject({ type: 'observation.created', data: { observation_id: obsId, source_id: 'cam' } });
    expect(new Date(obs.timestamp).toISOString()).toBe(obs.timestamp);
    expect(rcv.received[0].headers['webhook-id']).toMatch(/^evt_/);
    for (const h of rcv.received) {
      expect(h.body).not.toContain(TOKEN);
      expect(h.body).not.toContain('content_base64');
    }
    // The check is real: another secret does not verify.
    expect(() =>
      new Webhook(`whsec_${randomBytes(24).toString('base64')}`).verify(rcv.received[0].body, rcv.received[0].headers as never),
    ).toThrow();
  });

  it('retries a failing receiver with backoff and delivers exactly once after it recovers', async () => {
    const rcv = await receiver();
    rcv.script = [500, 500];
    const d = await daemon(rcv, { types: ['observation.created'] });
    await createSource(d, sourceBody('cam', TOKEN));
    const obsId = await upload(d, 'k1', 2);
    await rcv.waitFor(3);
    await sleep(400);
    expect(rcv.received.map((h) => h.status)).toEqual([500, 500, 200]);
    const ids = new Set(rcv.received.map((h) => h.headers['webhook-id']));
    expect(ids.size).toBe(1);
    expect(rcv.received.map((h) => verified(h).data.observation_id)).toEqual([obsId, obsId, obsId]);
    const row = d.daemon.deps.db.prepare(`SELECT state, attempts, last_status FROM webhook_deliveries`).get();
    expect(row).toEqual({ state: 'delivered', attempts: 3, last_status: 200 });
  });

  it('gives an attempt webhook_timeout_ms, then retries; gives up (failed) when the schedule runs out', async () => {
    const rcv = await receiver();
    rcv.script = [0];
    rcv.fallback = 503;
    const d = await startDaemon({
      events: { webhook_retry_schedule_ms: [50, 50], webhook_retry_jitter: 0, webhook_timeout_ms: 200 },
      webhooks: [{ url: rcv.url, secret: SECRET, event_types: ['observation.created'] }],
    });
    cleanups.push(() => d.close());
    await createSource(d, sourceBody('cam', TOKEN));
    await upload(d, 'k1', 7);
    await rcv.waitFor(3);
    await sleep(300);
    expect(rcv.received.map((h) => h.status)).toEqual([0, 503, 503]);
    const row = d.daemon.deps.db.prepare(`SELECT state, attempts, last_status, last_error FROM webhook_deliveries`).get();
    expect(row).toEqual({ state: 'failed', attempts: 3, last_status: 503, last_error: 'HTTP 503' });
  });

  it('a daemon restarted mid-backoff still delivers, once, and never again after the 2xx', async () => {
    const rcv = await receiver();
    rcv.fallback = 500;
    const dataDir = tempDir();
    const first = await daemon(rcv, { dataDir, types: ['observation.created'], schedule: [600, 600] });
    await createSource(first, sourceBody('cam', TOKEN));
    await upload(first, 'k1', 3);
    await rcv.waitFor(1);
    await first.close();
    expect(rcv.received.map((h) => h.status)).toEqual([500]);

    rcv.fallback = 200;
    const second = await daemon(rcv, { dataDir, types: ['observation.created'], schedule: [600, 600] });
    await rcv.waitFor(2);
    await sleep(300);
    await second.close();
    const third = await daemon(rcv, { dataDir, types: ['observation.created'], schedule: [600, 600] });
    await sleep(700);
    expect(rcv.received.map((h) => h.status)).toEqual([500, 200]);
    expect(new Set(rcv.received.map((h) => h.headers['webhook-id'])).size).toBe(1);
    expect(third.daemon.deps.db.prepare(`SELECT state FROM webhook_deliveries`).pluck().all()).toEqual(['delivered']);
  });

  it('a 410 answer disables the endpoint, durably', async () => {
    const rcv = await receiver();
    rcv.script = [410];
    const dataDir = tempDir();
    const d = await daemon(rcv, { dataDir, types: ['observation.created'] });
    await createSource(d, sourceBody('cam', TOKEN));
    await upload(d, 'k1', 4);
    await rcv.waitFor(1);
    await upload(d, 'k2', 5);
    await sleep(400);
    expect(rcv.received.map((h) => h.status)).toEqual([410]);
    await d.close();
    const again = await daemon(rcv, { dataDir, types: ['observation.created'] });
    await upload(again, 'k3', 6);
    await sleep(400);
    expect(rcv.received).toHaveLength(1);
    const ep = again.daemon.deps.db.prepare(`SELECT disabled_at_ms, disabled_reason FROM webhook_endpoints`).get() as Record<
      string,
      unknown
    >;
    expect(ep.disabled_at_ms).toEqual(expect.any(Number));
    expect(ep.disabled_reason).toMatch(/410/);
  });

  it("never carries a run's output unless the event allows output delivery", async () => {
    const rcv = await receiver();
    const d = await daemon(rcv, { types: ['run.completed'] });
    const { db, events } = d.daemon.deps;
    db.transaction(() => {
      events.append('run.completed', null, { run_id: 'run_a', status: 'completed', output_delivery_allowed: false, output: 'KEEP-INSIDE' });
      events.append('run.completed', null, { run_id: 'run_b', status: 'completed', output_delivery_allowed: true, output: 'MAY-LEAVE' });
    })();
    await rcv.waitFor(2);
    const [a, b] = rcv.received.map(verified);
    expect(a.data).toEqual({ run_id: 'run_a', status: 'completed', output_delivery_allowed: false });
    expect(rcv.received[0].body).not.toContain('KEEP-INSIDE');
    expect(b.data.output).toBe('MAY-LEAVE');
  });
});
