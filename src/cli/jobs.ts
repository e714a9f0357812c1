import { daemonJobs } from '../daemon-jobs.js';
import { openStore } from '../daemon.js';
import { commonArgs } from './args.js';

const USAGE = 'usage: observd jobs list | observd jobs run NAME';

/**
 * `observd jobs list`: the daemon's periodic jobs, a JSON line each (name, interval, whether
 * only the running daemon may run it). `observd jobs run NAME`: one run of that job against the
 * data directory, its result printed as JSON — the same code the daemon's schedule runs.
 */
export async function jobsCommand(argv: string[]): Promise<number> {
  const [action, name, ...rest] = argv;
  if (action !== 'list' && action !== 'run') {
    console.error(USAGE);
    return 2;
  }
  if (action === 'run' && (!name || name.startsWith('-'))) {
    console.error(`observd jobs run needs a job name (observd jobs list prints them)\n${USAGE}`);
    return 2;
  }
  const args = commonArgs(action === 'run' ? rest : argv.slice(1), {});
  // The daemon may be running on this data dir: leave its temp files and fresh blobs alone.
  const store = openStore(args.config(), { sweepStrays: false });
  const { deps, services } = store;
  const jobs = daemonJobs(deps, services);
  try {
    if (action === 'list') {
      for (const j of jobs) console.log(JSON.stringify({ name: j.name, interval_ms: j.intervalMs, daemon_only: j.daemonOnly === true }));
      return 0;
    }
    const job = jobs.find((j) => j.name === name);
    if (!job) {
      console.error(`no job named "${name}"; observd jobs list prints them`);
      return 2;
    }
    if (job.daemonOnly) {
      console.error(`${name} runs only inside the daemon (it depends on what the daemon is writing right now)`);
      return 2;
    }
    console.log(JSON.stringify({ job: name, result: (await job.run(deps.now())) ?? null }));
    return 0;
  } finally {
    await store.close();
  }
}
