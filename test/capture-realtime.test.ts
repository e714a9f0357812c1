import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { readSse } from './helpers/sse.js';
import { startReceiver, type WebhookReceiver } from './helpers/webhook-receiver.js';

// Real time, real timers: the daemon's own periodic check must raise the alert with no request.
let d: TestDaemon;
let rcv: WebhookReceiver;

beforeAll(async () => {
  rcv = await startReceiver();
  d = await startDaemon({
    capture: { heartbeat_check_interval_ms: 50 },
    webhooks: [
      {
        url: rcv.url,
        secret: `whsec_${randomBytes(24).toString('base64')}`,
        event_types: ['capture_agent.missing', 'capture_agent.recovered'],
      },
    ],
  });
});
afterAll(async () => {
  await d?.close();
  await rcv?.close();
});

/** Reads SSE frames from `/v1/events` until `want` events arrived. */
async function sseEvents(res: Response, want: number): Promise<Array<{ event: string; data: any }>> {
  const out: Array<{ event: string; data: any }> = [];
  if (want > 0)
    await readSse(res.body!, ({ fields }) => {
      if (fields.event) out.push({ event: fields.event, data: JSON.parse(fields.data) });
      return out.length >= want;
    });
  return out;
}

it('a missed heartbeat raises an alert, an SSE event and a webhook with no request; a heartbeat recovers it', async () => {
  const abort = new AbortController();
  const stream = await d.req('/v1/events?types=capture_agent.missing,capture_agent.recovered', { signal: abort.signal });
  expect(stream.status).toBe(200);
  const got = sseEvents(stream, 1);
  // The shortest deadline Kheish allows: 1 ms + 1 ms.
  const res = await d.req('/v1/capture-agent-provisions', {
    method: 'POST',
    json: {
      batch_id: 'rt',
      daemon_base_url: 'http://127.0.0.1:4000',
      agents: [{ machine_id: 'silent' }],
      heartbeat_interval_ms: 1,
      heartbeat_grace_ms: 1,
    },
  });
  expect(res.status).toBe(201);
  const token = (await res.json()).agents[0].heartbeat_token;
  const [missing] = await got;
  expect(missing.event).toBe('capture_agent.missing');
  expect(missing.data).toMatchObject({
    type: 'capture_agent.missing',
    data: { machine_id: 'silent', source_ids: ['macos-silent-screen'] },
  });
  await rcv.waitFor(1);
  expect(JSON.parse(rcv.received[0].body)).toMatchObject({ type: 'capture_agent.missing', data: { machine_id: 'silent' } });
  // Only now a request: the alert is listed.
  const alerts = await (await d.req('/v1/capture-alerts')).json();
  expect(alerts).toMatchObject([{ machine_id: 'silent', kind: 'missing_heartbeat' }]);

  const hb = await d.req('/v1/capture-agents/silent/heartbeat', { method: 'POST', json: {}, token });
  expect((await hb.json()).heartbeat_state).toBe('healthy');
  await rcv.waitFor(2);
  expect(JSON.parse(rcv.received[1].body)).toMatchObject({ type: 'capture_agent.recovered', data: { machine_id: 'silent' } });
  abort.abort();
});
