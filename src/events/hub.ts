import type { Outbox, OutboxEvent } from './outbox.js';

/** Which events a stream wants: some types (none = all) and/or one source. */
export interface EventFilter {
  types?: readonly string[];
  sourceId?: string;
}

/** What a stream yields: a batch of events in order, or a heartbeat after `heartbeatMs` of silence. */
export type StreamItem = { events: OutboxEvent[] } | { heartbeat: true };

const BATCH = 200;

/**
 * Live readers of the outbox (the SSE streams). Each stream reads the events after its cursor,
 * then sleeps until the outbox reports a commit or the heartbeat interval passes; `close` ends
 * every stream, so open streams never hold a shutdown.
 */
export class EventHub {
  private streams = new Set<EventStream>();
  private closed = false;
  private unsubscribe: () => void;

  constructor(
    private outbox: Outbox,
    private heartbeatMs: number,
  ) {
    this.unsubscribe = outbox.subscribe(() => {
      for (const s of this.streams) s.wake();
    });
  }

  /** Number of open streams. */
  get size(): number {
    return this.streams.size;
  }

  /**
   * Opens a stream of the events after `after` (an SSE Last-Event-ID); without one, or with one
   * beyond the newest event, it starts at the newest: only what happens next. A closed hub
   * gives a stream that is already over.
   */
  open(filter: EventFilter, after?: number): EventStream {
    const newest = this.outbox.lastSeq();
    const s = new EventStream(this.outbox, filter, after === undefined || after > newest ? newest : after, this.heartbeatMs, () =>
      this.streams.delete(s),
    );
    if (this.closed) s.close();
    else this.streams.add(s);
    return s;
  }

  /** Ends every stream and refuses new ones. */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const s of [...this.streams]) s.close();
  }
}

/** One reader of the outbox; iterate it for events and heartbeats until it is closed. */
export class EventStream implements AsyncIterable<StreamItem> {
  private closed = false;
  private poked = false;
  private wakeUp?: () => void;

  constructor(
    private outbox: Outbox,
    private filter: EventFilter,
    private cursor: number,
    private heartbeatMs: number,
    private onClose: () => void,
  ) {}

  /** Tells the stream new events may have committed. */
  wake(): void {
    this.poked = true;
    this.wakeUp?.();
  }

  /** Ends the stream (its iteration finishes). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.wakeUp?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamItem> {
    try {
      while (!this.closed) {
        this.poked = false;
        const events = this.outbox.readAfter(this.cursor, BATCH, this.filter);
        if (events.length) {
          this.cursor = events[events.length - 1].seq;
          yield { events };
          continue;
        }
        const timedOut = await this.sleep();
        if (timedOut && !this.closed) yield { heartbeat: true };
      }
    } finally {
      this.close();
    }
  }

  /** Waits for a poke, a close or the heartbeat interval; true when the interval passed. */
  private sleep(): Promise<boolean> {
    if (this.poked || this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = undefined;
        resolve(true);
      }, this.heartbeatMs);
      this.wakeUp = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve(false);
      };
    });
  }
}
