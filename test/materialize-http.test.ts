import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ObservationView } from '../src/observations/schemas.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { eventually, upload } from './helpers/derivations.js';
import { createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { byIds, getRun, materialize, runAction } from './helpers/runs.js';

interface Delivery {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
let runtime: Server;
let url: string;
const deliveries: Delivery[] = [];
/** Statuses the fake runtime answers, in order; the last one repeats. */
let answers: number[] = [200];
let d: TestDaemon;
let obs: ObservationView;

/** Verifies a Standard Webhooks signature with the reference library, independently of observd's code. */
function verify(h: Delivery): boolean {
  try {
    new Webhook(SECRET).verify(h.body, h.headers as Record<string, string>);
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  runtime = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
    const status = answers.length > 1 ? answers.shift()! : answers[0];
    res.writeHead(status).end();
  });
  await new Promise<void>((r) => runtime.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(runtime.address() as AddressInfo).port}/runs`;
  d = await startDaemon({ runs: { submitter: 'http', http: { url, secret: SECRET, max_attempts: 3, backoff_ms: 10 } } });
  const token = await createSource(d, {
    source_id: 'screen',
    display_name: 'Screen',
    kind: 'screen_snapshot',
    allow_external_processing: true,
  });
  obs = await upload(d, 'screen', token, makePng(2, 2, 1), 'one', 'image/png', { canonical_text: 'hello' });
});
afterAll(async () => {
  await d?.close();
  runtime?.closeAllConnections();
  await new Promise<void>((r) => runtime?.close(() => r()));
});

describe('the http submitter', () => {
  it('POSTs the signed run, retries a 500, then leaves it running for the runtime to complete', async () => {
    deliveries.length = 0;
    answers = [500, 202];
    const r = await materialize(d, byIds([obs.observation_id]));
    expect(r.status).toBe(202);
    const submitted = await eventually(async () => {
      const v = (await getRun(d, r.body.run_id)).body;
      return v.handed_off_at_ms !== null ? v : undefined;
    });
    expect(submitted).toMatchObject({ status: 'running', submitter: 'http', attempts: 1 });
    expect(deliveries).toHaveLength(2);
    for (const dl of deliveries) {
      expect(dl.headers['webhook-id']).toBe(r.body.run_id);
      expect(dl.headers['content-type']).toBe('application/json');
      expect(Math.abs(Number(dl.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      expect(verify(dl)).toBe(true);
    }
    const sent = JSON.parse(deliveries[1].body);
    expect(sent).toMatchObject({ run_id: r.body.run_id, status: 'running', observation_ids: [obs.observation_id] });
    expect(sent.input.evidence_text).toContain('hello');
    // A tampered body does not verify.
    expect(verify({ ...deliveries[1], body: deliveries[1].body.replace('hello', 'hullo') })).toBe(false);

    // An agent cannot claim it: the http submitter carries it. The runtime completes it.
    expect((await runAction(d, r.body.run_id, 'claim')).status).toBe(409);
    const done = await runAction(d, r.body.run_id, 'complete', { output: 'runtime says hi' });
    expect(done.body).toMatchObject({ status: 'completed', output: 'runtime says hi' });
  });

  it('fails the run with the last error once every attempt failed', async () => {
    deliveries.length = 0;
    answers = [503];
    const r = await materialize(d, byIds([obs.observation_id]));
    const failed = await eventually(async () => {
      const v = (await getRun(d, r.body.run_id)).body;
      return v.status === 'failed' ? v : undefined;
    });
    expect(failed.error).toMatch(/after 3 attempts.*503/);
    expect(deliveries).toHaveLength(3);
  });
  it('a shutdown during the backoff wait ends the wait and leaves the run running; the next start delivers it', async () => {
    deliveries.length = 0;
    answers = [503, 202];
    const dataDir = mkdtempSync(join(tmpdir(), 'observd-test-'));
    // A ten-minute backoff: the test would time out if closing waited it out.
    const config = { runs: { submitter: 'http' as const, http: { url, secret: SECRET, max_attempts: 3, backoff_ms: 600_000 } } };
    let first: TestDaemon | undefined = await startDaemon(config, { dataDir });
    let second: TestDaemon | undefined;
    try {
      const token = await createSource(first, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot' });
      const o = await upload(first, 'screen', token, makePng(2, 2, 2), 'backoff', 'image/png', { canonical_text: 'hi' });
      const r = await materialize(first, byIds([o.observation_id]));
      await eventually(async () => deliveries.length === 1);
      await first.close();
      first = undefined;
      second = await startDaemon(config, { dataDir });
      const delivered = await eventually(async () => {
        const v = (await getRun(second!, r.body.run_id)).body;
        return v.handed_off_at_ms !== null ? v : undefined;
      });
      expect(delivered).toMatchObject({ status: 'running', submitter: 'http', error: null });
      expect(deliveries).toHaveLength(2);
      expect(deliveries.map((dl) => dl.headers['webhook-id'])).toEqual([r.body.run_id, r.body.run_id]);
    } finally {
      await first?.close();
      await second?.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
