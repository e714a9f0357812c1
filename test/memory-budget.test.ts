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
            .req('/v1/observation-sources/cam/observations', { method: 'POST', token: src.upload_token, json: uploadBody(makePng(64, 64, i), `k${i}`) })
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
