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
