import type { Config } from '../config/schema.js';
import { stmt } from '../db/open.js';
import type { Deps } from '../deps.js';
import { DISK_FULL_RETRY_MS } from '../errors.js';
import type { Logger } from '../logger.js';
import { VERSION } from '../version.js';
import type { OutboxEvent } from './outbox.js';
import { webhookPayload } from './payload.js';
import { webhookHeaders } from './signing.js';

type Endpoint = Config['webhooks'][number];

interface DeliveryRow {
  url: string;
  seq: number;
  event_id: string;
  attempts: number;
}

/** Most events moved from the outbox into deliveries per query. */
const ENQUEUE_BATCH = 500;
/** The deliverer looks at its table at least this often, whatever the clock does. */
const MAX_SLEEP_MS = 60_000;

/**
 * Delivers outbox events to the webhooks of the config file, after commit. Per endpoint it moves
 * new events (of the wanted types) into `webhook_deliveries` and POSTs each, signed, retrying
 * failures on `events.webhook_retry_schedule_ms` (with jitter) until a 2xx, or marks it failed
 * when the schedule runs out. A 410 answer disables the endpoint. All state is in SQLite, so a
 * restart resumes where it stopped and a delivery that got its 2xx is never sent again.
 */
export class WebhookDeliverer {
  private endpoints: Map<string, Endpoint>;
  private stopped = true;
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private aborter = new AbortController();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private deps: Deps,
    private logger: Logger,
    private random: () => number = Math.random,
  ) {
    this.endpoints = new Map(deps.config.webhooks.map((e) => [e.url, e]));
  }

  /** Registers the configured endpoints (a new one starts after the newest event) and starts delivering. */
  start(): void {
    if (!this.endpoints.size || !this.stopped) return;
    const { db, now } = this.deps;
    const newest = this.deps.events.lastSeq();
    const insert = stmt(db, `INSERT OR IGNORE INTO webhook_endpoints (url, cursor_seq, created_at_ms) VALUES (?, ?, ?)`);
    db.transaction(() => {
      for (const url of this.endpoints.keys()) insert.run(url, newest, now());
    })();
    this.stopped = false;
    this.aborter = new AbortController();
    this.unsubscribe = this.deps.events.subscribe(() => this.kick());
    this.kick();
  }

  /** Stops: no new attempts, in-flight ones are abandoned (and retried after the next start). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    this.aborter.abort();
    await this.running;
  }

  /** Runs a pass now (or right after the one in progress). */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    let failed = false;
    this.running = this.pass()
      .catch((err) => {
        failed = true;
        this.logger.error({ err }, 'webhook delivery pass failed');
      })
      .finally(() => {
        this.running = undefined;
        // After a failed pass (a full disk: attempts could not be recorded) wait before the next
        // one, instead of spinning on deliveries that are still due.
        if (this.again && !failed) {
          this.again = false;
          this.kick();
        } else this.scheduleNext(failed ? DISK_FULL_RETRY_MS : 0);
      });
  }

  private enabledUrls(): string[] {
    const disabled = new Set(
      stmt(this.deps.db, `SELECT url FROM webhook_endpoints WHERE disabled_at_ms IS NOT NULL`).pluck().all() as string[],
    );
    return [...this.endpoints.keys()].filter((u) => !disabled.has(u));
  }

  private async pass(): Promise<void> {
    for (;;) {
      const urls = this.enabledUrls();
      for (const url of urls) this.enqueue(url);
      if (!urls.length || this.stopped) return;
      const due = stmt(
        this.deps.db,
        `SELECT url, seq, event_id, attempts FROM webhook_deliveries
         WHERE state = 'pending' AND next_attempt_at_ms <= ? AND url IN (SELECT value FROM json_each(?))
         ORDER BY next_attempt_at_ms, seq LIMIT 100`,
      ).all(this.deps.now(), JSON.stringify(urls)) as DeliveryRow[];
      if (!due.length) return;
      const byUrl = new Map<string, DeliveryRow[]>();
      for (const d of due) byUrl.set(d.url, [...(byUrl.get(d.url) ?? []), d]);
      // Endpoints in parallel; one request at a time per endpoint, oldest first.
      await Promise.all(
        [...byUrl].map(async ([url, rows]) => {
          for (const d of rows) {
            if (this.stopped || !(await this.deliver(this.endpoints.get(url)!, d))) break;
          }
        }),
      );
      if (this.stopped) return;
    }
  }

  /** Moves the endpoint's new outbox events into pending deliveries and advances its cursor. */
  private enqueue(url: string): void {
    const { db, now, events } = this.deps;
    const types = this.endpoints.get(url)!.event_types;
    db.transaction(() => {
      const insert = stmt(
        db,
        `INSERT OR IGNORE INTO webhook_deliveries (url, seq, event_id, state, attempts, next_attempt_at_ms, updated_at_ms)
         VALUES (?, ?, ?, 'pending', 0, ?, ?)`,
      );
      for (;;) {
        const cursor = stmt(db, `SELECT cursor_seq FROM webhook_endpoints WHERE url = ?`).pluck().get(url) as number;
        const newest = events.lastSeq();
        if (cursor >= newest) return;
        const batch = events.readAfter(cursor, ENQUEUE_BATCH, { types });
        const t = now();
        for (const ev of batch) insert.run(url, ev.seq, ev.event_id, t, t);
        const next = batch.length < ENQUEUE_BATCH ? newest : batch[batch.length - 1].seq;
        stmt(db, `UPDATE webhook_endpoints SET cursor_seq = ? WHERE url = ?`).run(next, url);
      }
    })();
  }

  /** One attempt; false when the endpoint got disabled (stop sending to it). */
  private async deliver(ep: Endpoint, d: DeliveryRow): Promise<boolean> {
    const ev = this.deps.events.readAfter(d.seq - 1, 1)[0] as OutboxEvent | undefined;
    if (!ev || ev.seq !== d.seq) {
      this.finish(d, 'failed', d.attempts, null, 'the event is no longer in the outbox');
      return true;
    }
    const body = JSON.stringify(webhookPayload(ev));
    const timeoutMs = this.deps.config.events.webhook_timeout_ms;
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(ep.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': `observd/${VERSION}`,
          ...webhookHeaders(ep.secret, ev.event_id, this.deps.now(), body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([this.aborter.signal, AbortSignal.timeout(timeoutMs)]),
      });
      status = res.status;
      await res.body?.cancel().catch(() => {});
    } catch (e) {
      // Shutting down: leave the delivery as it was; the next start sends it again.
      if (this.aborter.signal.aborted) return false;
      const err = e as Error & { cause?: { code?: string; message?: string } };
      error =
        err.name === 'TimeoutError'
          ? `no answer within ${timeoutMs} ms`
          : `${err.message}${err.cause ? `: ${err.cause.code ?? err.cause.message}` : ''}`;
    }
    const attempts = d.attempts + 1;
    if (status !== null && status >= 200 && status < 300) {
      this.finish(d, 'delivered', attempts, status, null);
      return true;
    }
    if (status === 410) {
      this.deps.db.transaction(() => {
        this.finish(d, 'failed', attempts, status, 'the receiver answered 410 Gone');
        stmt(this.deps.db, `UPDATE webhook_endpoints SET disabled_at_ms = ?, disabled_reason = ? WHERE url = ?`).run(
          this.deps.now(),
          'the receiver answered 410 Gone',
          ep.url,
        );
      })();
      this.logger.warn({ url: ep.url, event_id: d.event_id }, 'webhook endpoint answered 410 Gone; disabled');
      return false;
    }
    error ??= `HTTP ${status}`;
    const schedule = this.deps.config.events.webhook_retry_schedule_ms;
    if (attempts > schedule.length) {
      this.finish(d, 'failed', attempts, status, error);
      this.logger.warn({ url: ep.url, event_id: d.event_id, attempts, error }, 'webhook delivery failed; giving up');
    } else {
      const jitter = this.deps.config.events.webhook_retry_jitter;
      const wait = Math.round(schedule[attempts - 1] * (1 + jitter * (2 * this.random() - 1)));
      this.finish(d, 'pending', attempts, status, error, this.deps.now() + wait);
      this.logger.info({ url: ep.url, event_id: d.event_id, attempts, error, retry_in_ms: wait }, 'webhook delivery failed; will retry');
    }
    return true;
  }

  private finish(
    d: DeliveryRow,
    state: 'pending' | 'delivered' | 'failed',
    attempts: number,
    status: number | null,
    error: string | null,
    next?: number,
  ) {
    const t = this.deps.now();
    stmt(
      this.deps.db,
      `UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, last_error = ?, next_attempt_at_ms = ?, updated_at_ms = ?
       WHERE url = ? AND seq = ?`,
    ).run(state, attempts, status, error, next ?? t, t, d.url, d.seq);
  }

  /** Sleeps until the next retry is due (or a commit kicks a pass). */
  private scheduleNext(minWaitMs = 0): void {
    if (this.stopped) return;
    const urls = this.enabledUrls();
    const next = stmt(
      this.deps.db,
      `SELECT MIN(next_attempt_at_ms) FROM webhook_deliveries WHERE state = 'pending' AND url IN (SELECT value FROM json_each(?))`,
    )
      .pluck()
      .get(JSON.stringify(urls)) as number | null;
    if (next === null && minWaitMs === 0) return;
    const wait = Math.max(minWaitMs, Math.min(Math.max(0, (next ?? 0) - this.deps.now()), MAX_SLEEP_MS));
    this.timer = setTimeout(() => this.kick(), wait);
  }
}
