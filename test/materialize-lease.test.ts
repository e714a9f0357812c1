import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, testClock, type TestDaemon } from './helpers/daemon.js';
import { eventsOf, getRun, materializeOne, runAction } from './helpers/runs.js';

const open: TestDaemon[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
});

describe('claim leases', () => {
  it('a claimed run that is neither completed nor heartbeated goes back to the queue, and a heartbeat keeps it', async () => {
    const clock = testClock();
    const lease = 60_000;
    const d = await startDaemon({ runs: { claim_lease_ms: lease } }, { now: clock });
    open.push(d);
    const run = await materializeOne(d, 'hello');
    expect(run.status).toBe('queued');

    const claimed = await runAction(d, run.run_id, 'claim');
    expect(claimed.status).toBe(200);
    expect(claimed.body.lease_expires_at_ms).toBe(clock() + lease);

    // A heartbeat before the lease ends extends it from now.
    clock.advance(lease - 1);
    const hb = await d.req(`/v1/runs/${run.run_id}/heartbeat`, { method: 'POST' });
    expect(hb.status).toBe(200);
    expect((await hb.json()).lease_expires_at_ms).toBe(clock() + lease);
    clock.advance(lease - 1);
    expect(d.daemon.services.materializations.requeueExpiredClaims()).toEqual([]);
    expect((await getRun(d, run.run_id)).body.status).toBe('running');

    // Silence past the lease: back to the queue, announced again, claimable by another runtime.
    clock.advance(1);
    expect(d.daemon.services.materializations.requeueExpiredClaims()).toEqual([run.run_id]);
    const requeued = (await getRun(d, run.run_id)).body;
    expect(requeued).toMatchObject({ status: 'queued', lease_expires_at_ms: null });
    expect(eventsOf(d, 'run.queued').map((e) => e.data.run_id)).toEqual([run.run_id, run.run_id]);
    expect((await d.req(`/v1/runs/${run.run_id}/heartbeat`, { method: 'POST' })).status).toBe(409);
    expect((await runAction(d, run.run_id, 'complete', { output: 'late' })).status).toBe(409);

    const again = await runAction(d, run.run_id, 'claim');
    expect(again.body).toMatchObject({ status: 'running', attempts: 2 });
    const done = await runAction(d, run.run_id, 'complete', { output: 'done' });
    expect(done.body).toMatchObject({ status: 'completed', output: 'done', lease_expires_at_ms: null });
    clock.advance(10 * lease);
    expect(d.daemon.services.materializations.requeueExpiredClaims()).toEqual([]);
  });
});
