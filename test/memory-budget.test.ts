import { describe, expect, it } from 'vitest';
import { MemoryBudget } from '../src/http/memory-budget.js';

describe('MemoryBudget', () => {
  it('admits requests while they fit, queues the rest in order, and lets an oversized one run alone', async () => {
    const b = new MemoryBudget(100);
    const order: string[] = [];
    const r1 = await b.acquire(60);
    const p2 = b.acquire(50).then((r) => (order.push('second'), r));
    const p3 = b.acquire(10).then((r) => (order.push('third'), r));
    await new Promise((r) => setTimeout(r, 5));
    expect(order).toEqual([]);
    expect(b.inUse).toBe(60);
    r1();
    const r2 = await p2;
    const r3 = await p3;
    expect(order).toEqual(['second', 'third']);
    expect(b.inUse).toBe(60);
    r2();
    r3();
    r3();
    expect(b.inUse).toBe(0);
    const big = await b.acquire(500);
    expect(b.inUse).toBe(500);
    let small = false;
    const p4 = b.acquire(1).then((r) => ((small = true), r));
    await new Promise((r) => setTimeout(r, 5));
    expect(small).toBe(false);
    big();
    (await p4)();
    expect(b.inUse).toBe(0);
  });
});

describe('JSON uploads under a tight memory budget', () => {
  it('wait their turn instead of failing', async () => {
    const { startDaemon } = await import('./helpers/daemon.js');
    const { makePng, uploadBody } = await import('./helpers/media.js');
    const d = await startDaemon({ limits: { json_body_memory_bytes: 1 } });
    try {
      const src = await (
        await d.req('/v1/observation-sources', { method: 'POST', json: { source_id: 'cam', display_name: 'cam', kind: 'screen_snapshot' } })
      ).json();
      const statuses = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          d
            .req('/v1/observation-sources/cam/observations', {
              method: 'POST',
              token: src.upload_token,
              json: uploadBody(makePng(64, 64, i), `k${i}`),
            })
            .then((r) => r.status),
        ),
      );
      expect(statuses).toEqual(Array(8).fill(201));
      const view = await (await d.req('/v1/observation-sources/cam')).json();
      expect(view.active_observation_count).toBe(8);
    } finally {
      await d.close();
    }
  });
});

describe('a JSON body dribbled while it holds the memory budget', () => {
  it('is cut with 408 request_timeout once its grace has passed, and the upload waiting behind it completes', async () => {
    const { connect } = await import('node:net');
    const { startDaemon } = await import('./helpers/daemon.js');
    const { makePng, uploadBody } = await import('./helpers/media.js');
    // Budget for one body at a time; a slow body must average 64 KiB/s after 1 s.
    const d = await startDaemon({ limits: { json_body_memory_bytes: 1, json_body_min_bytes_per_s: 65536, json_body_rate_grace_ms: 1000 } });
    const timer: { t?: NodeJS.Timeout } = {};
    try {
      const src = await (
        await d.req('/v1/observation-sources', { method: 'POST', json: { source_id: 'cam', display_name: 'cam', kind: 'screen_snapshot' } })
      ).json();
      const { port } = new URL(d.url);
      const slow = connect(Number(port), '127.0.0.1');
      slow.on('error', () => {});
      const answer = new Promise<string>((resolve) => {
        let text = '';
        slow.on('data', (b) => (text += b.toString('latin1')));
        slow.on('close', () => resolve(text));
      });
      await new Promise((r) => slow.once('connect', r));
      slow.write(
        `POST /v1/observation-sources/cam/observations HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${src.upload_token}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{"upload":{"content_base64":"`,
      );
      timer.t = setInterval(() => slow.write('AAAA'), 100);
      await new Promise((r) => setTimeout(r, 200));

      const started = Date.now();
      const res = await d.req('/v1/observation-sources/cam/observations', {
        method: 'POST',
        token: src.upload_token,
        json: uploadBody(makePng(8, 8, 1), 'normal'),
        signal: AbortSignal.timeout(15_000),
      });
      expect(res.status).toBe(201);
      // It waited for the slow body to be cut (about the grace period), not for the request timeout.
      expect(Date.now() - started).toBeLessThan(10_000);
      const slowAnswer = await answer;
      expect(slowAnswer).toMatch(/^HTTP\/1\.1 408/);
      expect(slowAnswer).toContain('"code":"request_timeout"');
      const list = await (await d.req('/v1/observations?source_id=cam')).json();
      expect(list).toHaveLength(1);
    } finally {
      clearInterval(timer.t);
      await d.close();
    }
  });
});
