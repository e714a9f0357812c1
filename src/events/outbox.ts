import { stmt, type Db } from '../db/open.js';
import type { Clock } from '../clock.js';
import type { NewId } from '../ids.js';
import type { EventType } from './types.js';

/** One event as stored and as delivered: thin (ids and states), never media or tokens. */
export interface OutboxEvent {
  seq: number;
  event_id: string;
  type: EventType;
  source_id: string | null;
  at_ms: number;
  data: Record<string, unknown>;
}

interface EventRow extends Omit<OutboxEvent, 'data'> {
  data: string;
}

/**
 * The transactional outbox. `append` runs inside the caller's transaction; subscribers are
 * poked on the next turn of the event loop — after that synchronous transaction has committed
 * (or rolled back, in which case they find nothing new) — so nothing is published before commit.
 */
export class Outbox {
  private listeners = new Set<() => void>();
  private poked = false;

  constructor(
    private db: Db,
    private newId: NewId,
    private now: Clock,
  ) {}

  /** Records an event inside the caller's transaction. */
  append(type: EventType, sourceId: string | null, data: Record<string, unknown>): void {
    stmt(this.db, `INSERT INTO events (event_id, type, source_id, at_ms, data) VALUES (?, ?, ?, ?, ?)`).run(
      this.newId('evt'),
      type,
      sourceId,
      this.now(),
      JSON.stringify(data),
    );
    if (!this.poked) {
      this.poked = true;
      setImmediate(() => {
        this.poked = false;
        for (const l of this.listeners) l();
      });
    }
  }

  /** Registers a callback run after commits that appended events; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events after `seq`, oldest first, optionally only of some types or one source. */
  readAfter(seq: number, limit: number, filter: { types?: readonly string[]; sourceId?: string } = {}): OutboxEvent[] {
    const where = ['seq > ?'];
    const args: unknown[] = [seq];
    if (filter.types?.length) {
      where.push(`type IN (${filter.types.map(() => '?').join(', ')})`);
      args.push(...filter.types);
    }
    if (filter.sourceId !== undefined) {
      where.push('source_id = ?');
      args.push(filter.sourceId);
    }
    const rows = stmt(this.db, `SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`).all(...args, limit) as EventRow[];
    return rows.map((r) => ({ ...r, data: JSON.parse(r.data) }));
  }

  /** The newest sequence number (0 when empty). */
  lastSeq(): number {
    return (stmt(this.db, `SELECT COALESCE(MAX(seq), 0) FROM events`).pluck().get() as number) ?? 0;
  }
}
