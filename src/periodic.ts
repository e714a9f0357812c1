/**
 * Runs `task` now and then `intervalMs` after each run finishes, until stopped. A failing task
 * is reported to `onError` and tried again next time; it never stops the schedule.
 */
export function startPeriodic(task: () => unknown, intervalMs: number, onError: (e: unknown) => void) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const tick = () => {
    running = Promise.resolve()
      .then(task)
      .catch(onError)
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return {
    /** Stops scheduling and waits for a run in progress. */
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
