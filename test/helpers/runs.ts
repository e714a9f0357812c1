import type { OutboxEvent } from '../../src/events/outbox.js';
import type { RunView } from '../../src/materialization/schemas.js';
import type { TestDaemon } from './daemon.js';
import { createSource } from './fixtures.js';
import { makePng, uploadBody } from './media.js';

type Json = Record<string, unknown>;
/** A run view, or a problem body for a refused request. */
export type RunBody = RunView & { code?: string; detail?: string; errors?: Array<{ path: string; message: string }> };

/** POSTs a materialization; returns the status and the parsed body. */
export async function materialize(d: TestDaemon, body: Json, token?: string): Promise<{ status: number; body: RunBody }> {
  const r = await d.req('/v1/observation-materializations', { method: 'POST', json: body, token });
  return { status: r.status, body: (await r.json()) as RunBody };
}

/** A materialization body selecting observations by id. */
export function byIds(ids: string[], extra: Json = {}): Json {
  return {
    target_session_id: 'session-1',
    selection: { type: 'observation_ids', observation_ids: ids },
    request: { content: 'What happened?' },
    ...extra,
  };
}

/** Creates source `cam` (generated token), uploads one PNG carrying `canonicalText`, and materializes it; returns the run. */
export async function materializeOne(d: TestDaemon, canonicalText: string): Promise<RunBody> {
  const token = await createSource(d, { source_id: 'cam', display_name: 'cam', kind: 'screen_snapshot' });
  const obs = await (
    await d.req('/v1/observation-sources/cam/observations', {
      method: 'POST',
      token,
      json: uploadBody(makePng(2, 2, 1), 'k', { canonical_text: canonicalText }),
    })
  ).json();
  return (await materialize(d, byIds([obs.observation_id]))).body;
}

/** GETs a run. */
export async function getRun(d: TestDaemon, runId: string, token?: string): Promise<{ status: number; body: RunBody }> {
  const r = await d.req(`/v1/runs/${runId}`, { token });
  return { status: r.status, body: (await r.json()) as RunBody };
}

/** POSTs to a run action (claim, complete). */
export async function runAction(
  d: TestDaemon,
  runId: string,
  action: 'claim' | 'complete',
  json?: unknown,
): Promise<{ status: number; body: RunBody }> {
  const r = await d.req(`/v1/runs/${runId}/${action}`, { method: 'POST', ...(json === undefined ? {} : { json }) });
  return { status: r.status, body: (await r.json()) as RunBody };
}

/** Outbox events of the given types. */
export function eventsOf(d: TestDaemon, ...types: string[]): OutboxEvent[] {
  return d.daemon.deps.events.readAfter(0, 10_000, { types });
}
