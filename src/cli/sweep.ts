import { daemonJobs } from '../daemon-jobs.js';
import { openStore } from '../daemon.js';
import { JobRegistry } from '../jobs.js';
import { commonArgs } from './args.js';

/**
 * `observd sweep --once`: one retention sweep, history pruning and outbox pruning against the
 * data directory, printed as JSON. (Expired signed uploads are left to the daemon, which knows
 * which ones are being written.)
 */
export async function sweepCommand(argv: string[]): Promise<number> {
  const args = commonArgs(argv, { once: { type: 'boolean' } });
  if (!(args.values as { once?: boolean }).once) {
    console.error('observd sweep needs --once (the daemon runs the sweeper on its own)');
    return 2;
  }
  // The daemon may be running on this data dir: leave its temp files and fresh blobs alone.
  const store = openStore(args.config(), { sweepStrays: false });
  const { deps, services } = store;
  const jobs = new JobRegistry(deps.now);
  for (const job of daemonJobs(deps, services)) jobs.add(job);
  try {
    // The daemon's own jobs, run once each (the same code its schedule runs).
    const report = (await jobs.runOnce('retention.sweep')) as object;
    const history = await jobs.runOnce('retention.history');
    const events = await jobs.runOnce('events.prune');
    console.log(JSON.stringify({ ...report, history, events }));
  } finally {
    await store.close();
  }
  return 0;
}
