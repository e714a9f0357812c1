import type { OutboxEvent } from './outbox.js';

/** Keys never sent outside the daemon, at any depth: secrets and raw media. */
const NEVER = new Set(['token', 'upload_token', 'admin_token', 'readonly_token', 'secret', 'authorization', 'api_key', 'content_base64']);

/** True when the event says its run's output may leave the daemon (`allow_output_delivery` of every source involved). */
function outputAllowed(data: Record<string, unknown>): boolean {
  return data.output_delivery_allowed === true || data.output_allowed === true;
}

function strip(v: unknown, dropOutput: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => strip(x, dropOutput));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (NEVER.has(k) || (dropOutput && k === 'output')) continue;
    out[k] = strip(x, dropOutput);
  }
  return out;
}

/**
 * An event's data as it may leave the daemon: without any `output` unless the event marks
 * output delivery as allowed, and never with a token, secret or inline media.
 */
export function deliverableData(data: Record<string, unknown>): Record<string, unknown> {
  return strip(data, !outputAllowed(data)) as Record<string, unknown>;
}

/** The Standard Webhooks payload of an event: thin `{type, timestamp, data}` with ids and states. */
export function webhookPayload(ev: OutboxEvent): { type: string; timestamp: string; data: Record<string, unknown> } {
  return { type: ev.type, timestamp: new Date(ev.at_ms).toISOString(), data: deliverableData(ev.data) };
}

/** The SSE envelope of an event: `{event_id, type, source_id, at_ms, data}`. */
export function sseEnvelope(ev: OutboxEvent) {
  return { event_id: ev.event_id, type: ev.type, source_id: ev.source_id, at_ms: ev.at_ms, data: deliverableData(ev.data) };
}
