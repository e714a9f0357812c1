import { recordAudit } from '../audit/repo.js';
import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import type { AgentRow } from './repo.js';

/**
 * The heartbeat deadline check: every active agent, pending or healthy, whose deadline passed
 * before `now` becomes `missing` (missing since `now`), audited `capture_agent_heartbeat_missing`
 * and sent as the `capture_agent.missing` event, in one transaction. Only an accepted heartbeat
 * clears it. The daemon runs it periodically and before every agents/alerts read; returns the
 * machine ids it marked.
 */
export function checkHeartbeats(deps: Pick<Deps, 'db' | 'newId' | 'events'>, now: number): string[] {
  const { db, newId, events } = deps;
  return db.transaction(() => {
    const due = stmt(
      db,
      `SELECT * FROM capture_agents WHERE status = 'active' AND heartbeat_state IN ('pending', 'healthy') AND heartbeat_deadline_ms < ?
       ORDER BY heartbeat_deadline_ms`,
    ).all(now) as AgentRow[];
    const mark = stmt(
      db,
      `UPDATE capture_agents SET heartbeat_state = 'missing', heartbeat_missing_since_ms = ?, updated_at_ms = ? WHERE machine_id = ?`,
    );
    for (const a of due) {
      mark.run(now, now, a.machine_id);
      recordAudit(db, newId, now, 'capture_agent_heartbeat_missing', {
        source_id: a.machine_id,
        detail: { reason: 'missing_heartbeat', heartbeat_deadline_ms: a.heartbeat_deadline_ms, previous_state: a.heartbeat_state },
      });
      events.append('capture_agent.missing', null, {
        machine_id: a.machine_id,
        previous_state: a.heartbeat_state,
        heartbeat_deadline_ms: a.heartbeat_deadline_ms,
        detected_at_ms: now,
        last_heartbeat_at_ms: a.last_heartbeat_at_ms,
        source_ids: JSON.parse(a.source_ids),
      });
    }
    return due.map((a) => a.machine_id);
  })();
}
