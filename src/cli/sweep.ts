import { openStore } from '../daemon.js';
import { pruneEvents } from '../events/prune.js';
import { pruneHistory } from '../retention/history.js';
import { sweepOnce } from '../retention/sweep.js';
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
  const { deps } = store;
  try {
    const report = await sweepOnce(deps);
    const history = await pruneHistory(deps);
    console.log(JSON.stringify({ ...report, history, events: pruneEvents(deps) }));
  } finally {
    await store.close();
  }
  return 0;
}
