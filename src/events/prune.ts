import type { Deps } from '../deps.js';

const BATCH = 1000;

/**
 * Deletes outbox events older than `events.retention_ms` — except those a webhook delivery is
 * still retrying — and webhook delivery records as old, in short batches. SSE clients resume
 * and webhooks deliver within this window. Returns what was deleted.
 */
export function pruneEvents(deps: Deps, now = deps.now()): { events: number; deliveries: number } {
  const cutoff = now - deps.config.events.retention_ms;
  const { db } = deps;
  const deliveries = db.prepare(`DELETE FROM webhook_deliveries WHERE updated_at_ms < ?`).run(cutoff).changes;
  const del = db.prepare(
    `DELETE FROM events WHERE seq IN (
       SELECT seq FROM events WHERE at_ms < ?
         AND seq NOT IN (SELECT seq FROM webhook_deliveries WHERE state = 'pending')
       ORDER BY seq LIMIT ?)`,
  );
  let events = 0;
  for (;;) {
    const n = del.run(cutoff, BATCH).changes;
    events += n;
    if (n < BATCH) break;
  }
  return { events, deliveries };
}
