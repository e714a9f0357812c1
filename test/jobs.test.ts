import { afterEach, describe, expect, it } from 'vitest';
import { JobRegistry, type JobRun } from '../src/jobs.js';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { eventually } from './helpers/derivations.js';
import { getRun, materializeOne, runAction } from './helpers/runs.js';

const open: TestDaemon[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

describe('the periodic job registry', () => {
  it('the daemon registers every background job by name, and runOnce runs one on the injected clock, recorded in /metrics', async () => {
    const clock = testClock(Date.UTC(2026, 5, 1));
    const d = await startDaemon({}, { now: clock });
    open.push(d);
    expect(d.daemon.jobs.names().sort()).toEqual([
      'capture.heartbeat_deadlines',
      'events.prune',
      'retention.history',
      'retention.sweep',
      'runs.requeue_expired_claims',
      'search.backfill',
      'uploads.cleanup',
    ]);
    clock.advance(123_000);
    expect(await d.daemon.jobs.runOnce('runs.requeue_expired_claims')).toEqual([]);
    const text = await (await d.req('/metrics')).text();
    expect(text).toContain(`observd_job_last_run_timestamp_seconds{job="runs.requeue_expired_claims"} ${clock() / 1000}`);
    expect(text).toMatch(/^observd_job_runs_total\{job="runs\.requeue_expired_claims",outcome="ok"\} [1-9]\d*$/m);
    expect(text).toMatch(/^observd_job_last_duration_seconds\{job="retention\.sweep"\} /m);
    await expect(d.daemon.jobs.runOnce('no.such.job')).rejects.toThrow(/no job named/);
  });

  it('a failing job is reported and scheduled again; stop waits for the run in progress', async () => {
    const runs: JobRun[] = [];
    let calls = 0;
    let finished = 0;
    const jobs = new JobRegistry(
      () => 42,
      (r) => runs.push(r),
    );
    jobs.add({
      name: 'flaky',
      intervalMs: 5,
      async run(now) {
        calls++;
        expect(now).toBe(42);
        await new Promise((r) => setTimeout(r, 5));
        finished++;
        if (calls === 1) throw new Error('first run fails');
        return calls;
      },
    });
    expect(() => jobs.add({ name: 'flaky', intervalMs: 1, run: () => 0 })).toThrow(/twice/);
    jobs.start();
    await eventually(async () => runs.length >= 3);
    await jobs.stop();
    expect(finished).toBe(calls);
    expect((runs[0].error as Error).message).toBe('first run fails');
    expect(runs[1]).toMatchObject({ name: 'flaky', startedAtMs: 42, result: 2 });
    const after = calls;
    await new Promise((r) => setTimeout(r, 30));
    expect(calls).toBe(after);
  });

  it('runs on its own: a claimed run whose lease ran out is queued again with no request', async () => {
    const d = await startDaemon({ runs: { claim_lease_ms: 1000 } });
    open.push(d);
    const run = await materializeOne(d, 'hi');
    expect((await runAction(d, run.run_id, 'claim')).body.status).toBe('running');
    await eventually(async () => (await getRun(d, run.run_id)).body.status === 'queued', 10_000);
  });
});
