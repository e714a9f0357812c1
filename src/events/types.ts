// A leaf module (no imports): config validates `webhooks.event_types` against this list.

/** Every event type observd emits. */
export const EVENT_TYPES = [
  'observation.created',
  'observation.purged',
  'observation.deleted',
  'source.updated',
  'derivation.completed',
  'derivation.failed',
  'run.queued',
  'run.completed',
  'run.failed',
  'capture_agent.missing',
  'capture_agent.recovered',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
