import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody, upload as uploadView } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { readSse } from './helpers/sse.js';

const TOKEN = 'sse-test-upload-token-0001';

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
}

/** A real SSE client over fetch: parses frames as they arrive. */
async function connect(d: TestDaemon, query = '', init: { token?: string; headers?: Record<string, string> } = {}) {
  const abort = new AbortController();
  const res = await d.req(`/v1/events${query}`, { token: init.token, headers: init.headers, signal: abort.signal });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  let ended = false;
  const listeners = new Set<() => void>();
  const pump = (async () => {
    if (!res.body || res.status !== 200) return;
    try {
      await readSse(res.body, (frame) => {
        comments.push(...frame.comments);
        const ev: SseEvent = {};
        for (const k of ['id', 'event', 'data'] as const) if (k in frame.fields) ev[k] = frame.fields[k];
        if (ev.event) events.push(ev);
        for (const l of listeners) l();
        return undefined;
      });
    } catch {
      /* aborted by the test */
    } finally {
      ended = true;
      for (const l of listeners) l();
    }
  })();
  const waitFor = (check: () => boolean, ms = 5_000) =>
    new Promise<void>((resolve, reject) => {
      if (check()) return resolve();
      const timer = setTimeout(() => {
        listeners.delete(l);
        reject(new Error(`SSE condition not met within ${ms} ms; got ${JSON.stringify(events)}`));
      }, ms);
      const l = () => {
        if (!check()) return;
        clearTimeout(timer);
        listeners.delete(l);
        resolve();
      };
      listeners.add(l);
    });
  return {
    res,
    events,
    comments,
    get ended() {
      return ended;
    },
    /** Resolves once `n` events have arrived. */
    take: async (n: number) => {
      await waitFor(() => events.length >= n);
      return events.slice(0, n);
    },
    waitFor,
    close: async () => {
      abort.abort();
      await pump;
    },
  };
}
type Client = Awaited<ReturnType<typeof connect>>;

const clients: Client[] = [];
async function client(...args: Parameters<typeof connect>) {
  const c = await connect(...args);
  clients.push(c);
  return c;
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

let seed = 0;
async function upload(d: TestDaemon, source: string): Promise<string> {
  seed++;
  return (await uploadView(d, source, TOKEN, makePng(2, 2, seed), `k${seed}`)).observation_id;
}

const parsed = (e: SseEvent) =>
  JSON.parse(e.data!) as { event_id: string; type: string; source_id: string; at_ms: number; data: Record<string, unknown> };

describe('GET /v1/events', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon({ events: { heartbeat_ms: 150 } });
    await createSource(d, sourceBody('a', TOKEN));
    await createSource(d, sourceBody('b', TOKEN));
  });
  afterAll(() => d.close());

  it('streams observation.created for an upload, with the seq as id and the JSON envelope as data', async () => {
    const c = await client(d);
    expect(c.res.status).toBe(200);
    expect(c.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const obsId = await upload(d, 'a');
    const [ev] = await c.take(1);
    expect(ev.event).toBe('observation.created');
    expect(ev.id).toMatch(/^\d+$/);
    const env = parsed(ev);
    expect(env).toMatchObject({ type: 'observation.created', source_id: 'a', data: { observation_id: obsId, source_id: 'a' } });
    expect(env.event_id).toMatch(/^evt_/);
    expect(typeof env.at_ms).toBe('number');
  });

  it('resumes from Last-Event-ID with exactly the events missed while disconnected, in order', async () => {
    const first = await client(d);
    await upload(d, 'a');
    const [seen] = await first.take(1);
    await first.close();

    const missed = [await upload(d, 'a'), await upload(d, 'b'), await upload(d, 'a')];
    const again = await client(d, '', { headers: { 'last-event-id': seen.id! } });
    const got = await again.take(3);
    expect(got.map((e) => parsed(e).data.observation_id)).toEqual(missed);
    const ids = got.map((e) => Number(e.id));
    expect(ids).toEqual([Number(seen.id) + 1, Number(seen.id) + 2, Number(seen.id) + 3]);
    // Nothing else follows (a heartbeat interval and more pass with no further event).
    await again.waitFor(() => again.comments.length >= 2);
    expect(again.events).toHaveLength(3);

    // The query parameter does the same for clients that cannot set headers.
    const viaQuery = await client(d, `?last_event_id=${seen.id}`);
    expect((await viaQuery.take(3)).map((e) => parsed(e).data.observation_id)).toEqual(missed);
  });

  it('filters by type and by source', async () => {
    const deletions = await client(d, '?types=observation.deleted');
    const onlyB = await client(d, '?source_id=b&types=observation.created,observation.deleted');
    const idA = await upload(d, 'a');
    const idB = await upload(d, 'b');
    expect((await d.req(`/v1/observations/${idA}`, { method: 'DELETE' })).status).toBe(204);
    const [del] = await deletions.take(1);
    expect([del.event, parsed(del).data.observation_id]).toEqual(['observation.deleted', idA]);
    const [b] = await onlyB.take(1);
    expect([b.event, parsed(b).data.observation_id]).toEqual(['observation.created', idB]);
    await deletions.waitFor(() => deletions.comments.length >= 1);
    expect(deletions.events).toHaveLength(1);
    expect(onlyB.events).toHaveLength(1);
  });

  it('sends heartbeat comment lines while idle', async () => {
    const c = await client(d);
    await c.waitFor(() => c.comments.length >= 2, 3_000);
    expect(c.comments[0]).toMatch(/^:/);
    expect(c.events).toHaveLength(0);
  });

  it('refuses unknown types and malformed Last-Event-ID with 400', async () => {
    expect((await d.req('/v1/events?types=observation.created,nope')).status).toBe(400);
    expect((await d.req('/v1/events', { headers: { 'last-event-id': 'abc' } })).status).toBe(400);
  });
});

describe('GET /v1/events auth and shutdown', () => {
  const ADMIN = 'sse-admin-token-000000001';
  const READER = 'sse-readonly-token-0000001';

  it('admits the read-only token, refuses a missing one (401), and ends streams when the daemon closes', async () => {
    const d = await startDaemon({ admin_token: ADMIN, readonly_token: READER, server: { shutdown_grace_ms: 20_000 } });
    try {
      const anon = await d.req('/v1/events');
      expect([anon.status, (await anon.json()).code]).toEqual([401, 'unauthorized']);
      const c = await client(d, '', { token: READER });
      expect(c.res.status).toBe(200);
      await createSource(d, sourceBody('a', TOKEN), ADMIN);
      const [ev] = await c.take(1);
      expect(ev.event).toBe('source.updated');
      expect(ev.data).not.toContain(TOKEN);

      // A client that went away first must not hold the drain either.
      const gone = await connect(d, '', { token: READER });
      await gone.close();
      await new Promise((r) => setTimeout(r, 100));

      const started = Date.now();
      await d.close();
      expect(Date.now() - started).toBeLessThan(2_000);
      await c.waitFor(() => c.ended, 2_000);
    } finally {
      await d.close();
    }
  });
});

describe('outbox retention', () => {
  it('pruneEvents deletes events older than events.retention_ms; a stream resumes from what is left', async () => {
    const { testClock } = await import('./helpers/daemon.js');
    const { pruneEvents } = await import('../src/events/prune.js');
    const clock = testClock();
    const d = await startDaemon({ events: { retention_ms: 60_000, prune_interval_ms: 3_600_000 } }, { now: clock });
    try {
      await createSource(d, sourceBody('a', TOKEN));
      const old = await upload(d, 'a');
      clock.advance(30_000);
      const recent = await upload(d, 'a');
      const all = d.daemon.deps.events.readAfter(0, 100);
      expect(all.map((e) => e.type)).toEqual(['source.updated', 'observation.created', 'observation.created']);

      clock.advance(30_000);
      expect(pruneEvents(d.daemon.deps)).toEqual({ events: 0, deliveries: 0 });
      clock.advance(1);
      expect(pruneEvents(d.daemon.deps)).toEqual({ events: 2, deliveries: 0 });
      expect(d.daemon.deps.events.readAfter(0, 100).map((e) => e.data.observation_id)).toEqual([recent]);
      expect(old).not.toBe(recent);

      const c = await client(d, '', { headers: { 'last-event-id': '0' } });
      const [ev] = await c.take(1);
      expect(parsed(ev).data.observation_id).toBe(recent);
    } finally {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await d.close();
    }
  });
});
