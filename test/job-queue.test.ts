import { describe, expect, it } from 'vitest';
import { JobQueue } from '../src/job-queue.js';

describe('JobQueue', () => {
  it('runs a job again after the delay its error handler returns (a full disk), and stops retrying once stopped', async () => {
    let calls = 0;
    const full = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const errors: unknown[] = [];
    let finished!: () => void;
    const done = new Promise<void>((r) => (finished = r));
    const q = new JobQueue(
      1,
      async () => {
        calls++;
        if (calls < 3) throw full;
        finished();
      },
      (_id, e) => {
        errors.push(e);
        return 10;
      },
    );
    q.start();
    void q.ensure('job');
    await done;
    expect(calls).toBe(3);
    expect(errors).toEqual([full, full]);

    // A retry pending at stop never runs.
    let later = 0;
    const q2 = new JobQueue(
      1,
      async () => {
        later++;
        throw full;
      },
      () => 50,
    );
    q2.start();
    await q2.ensure('x');
    await q2.stop();
    await new Promise((r) => setTimeout(r, 120));
    expect(later).toBe(1);
  });

  it('does not retry when the handler returns nothing', async () => {
    let calls = 0;
    const q = new JobQueue(
      1,
      async () => {
        calls++;
        throw new Error('boom');
      },
      () => undefined,
    );
    q.start();
    await q.ensure('y');
    await new Promise((r) => setTimeout(r, 50));
    expect(calls).toBe(1);
  });
});
