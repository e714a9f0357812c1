import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, BIN, childEnv } from './helpers/child.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { content, derive, upload } from './helpers/derivations.js';
import { createSource } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';

const ADMIN = 'admin-token-0123456789abcdef';
const READER = 'reader-token-0123456789abcdef';

async function httpClient(d: TestDaemon, token?: string): Promise<Client> {
  const client = new Client({ name: 'observd-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${d.url}/mcp`), {
    requestInit: token ? { headers: { authorization: `Bearer ${token}` } } : undefined,
  });
  await client.connect(transport);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

const textOf = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');

describe('MCP over Streamable HTTP (loopback-open daemon)', () => {
  let d: TestDaemon;
  let client: Client;
  let obsId: string;
  const png = makePng(64, 48, 7);

  beforeAll(async () => {
    d = await startDaemon();
    const token = await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot' });
    await upload(d, 'screen', token, makePng(8, 8, 1), 'k-old', 'image/png', { captured_at_ms: 1_000 });
    obsId = (
      await upload(d, 'screen', token, png, 'k-new', 'image/png', { captured_at_ms: 2_000, canonical_text: 'quarterly invoice due friday' })
    ).observation_id;
    client = await httpClient(d);
  });
  afterAll(async () => {
    await client?.close();
    await d?.close();
  });

  it('lists its tools with descriptions, input and output schemas, and read-only/destructive annotations', async () => {
    const { tools } = await client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(Object.keys(byName).sort()).toEqual([
      'get_observation',
      'list_sources',
      'materialize_observations',
      'recent_observations',
      'search_observations',
    ]);
    for (const t of tools) {
      expect(t.description, t.name).toBeTruthy();
      expect(t.inputSchema.type).toBe('object');
      expect(t.outputSchema?.type, t.name).toBe('object');
    }
    expect(byName.get_observation.annotations?.readOnlyHint).toBe(true);
    expect(byName.search_observations.annotations?.readOnlyHint).toBe(true);
    expect(byName.materialize_observations.annotations?.readOnlyHint).toBe(false);
    expect(byName.materialize_observations.annotations?.destructiveHint).toBe(false);
  });

  it('list_sources returns the sources as structured content', async () => {
    const r = await call(client, 'list_sources', {});
    expect(r.isError).toBeFalsy();
    const sources = (r.structuredContent as { sources: Array<{ source_id: string; kind: string }> }).sources;
    expect(sources.map((s) => s.source_id)).toEqual(['screen']);
    expect(textOf(r)).toContain('screen screen_snapshot');
  });

  it('recent_observations gives the newest first, limited', async () => {
    const r = await call(client, 'recent_observations', { source_id: 'screen', limit: 1 });
    expect(r.isError).toBeFalsy();
    const obs = (r.structuredContent as { observations: Array<{ observation_id: string }> }).observations;
    expect(obs.map((o) => o.observation_id)).toEqual([obsId]);
  });

  it('get_observation returns the text and the stored visual preview as image content', async () => {
    const r = await call(client, 'get_observation', { observation_id: obsId });
    expect(r.isError).toBeFalsy();
    const s = r.structuredContent as { canonical_text: string; image: { source: string; media_type: string } };
    expect(s.canonical_text).toBe('quarterly invoice due friday');
    expect(s.image.source).toBe('preview');
    const image = r.content.find((c) => c.type === 'image');
    expect(image?.type === 'image' && image.mimeType).toBe('image/png');
    const preview = await derive(d, 'visual_preview', { type: 'observation', observation_id: obsId });
    const stored = await content(d, preview.body.result_asset_id);
    expect(image?.type === 'image' && Buffer.from(image.data, 'base64').equals(stored)).toBe(true);
  });

  it('get_observation with image=raw returns the original bytes within the cap', async () => {
    const r = await call(client, 'get_observation', { observation_id: obsId, image: 'raw' });
    const image = r.content.find((c) => c.type === 'image');
    expect(image?.type === 'image' && Buffer.from(image.data, 'base64').equals(png)).toBe(true);
    expect((r.structuredContent as { image: { source: string } }).image.source).toBe('raw');
  });

  it('an unknown observation is a tool error with the problem code, not a protocol error', async () => {
    const r = await call(client, 'get_observation', { observation_id: 'obs_01ARZ3NDEKTSV4RRFFQ69G5FAV' });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/^not_found \(HTTP 404\)/);
  });

  it('search_observations takes the metadata filters the search API takes, no more', async () => {
    const found = await call(client, 'search_observations', { query: 'invoice', metadata: { 'app:window': 'x'.repeat(1000) } });
    expect(found.isError, textOf(found)).toBeFalsy();
    const nine = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, 'v']));
    const refused = await call(client, 'search_observations', { query: 'invoice', metadata: nine });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(/at most 8 metadata filters/);
  });

  it('bad tool input is refused by the input schema as a tool error', async () => {
    const r = await call(client, 'recent_observations', { source_id: 'screen', limit: 0 });
    expect(r.isError).toBe(true);
    expect(textOf(r)).toMatch(/limit/);
  });

  it('materialize_observations creates a run like the REST route', async () => {
    const r = await call(client, 'materialize_observations', {
      target_session_id: 'sess-1',
      content: 'what is due?',
      observation_ids: [obsId],
    });
    expect(r.isError, textOf(r)).toBeFalsy();
    const run = (r.structuredContent as { run: { run_id: string } }).run;
    const rest = await d.req(`/v1/runs/${run.run_id}`);
    expect(rest.status).toBe(200);
    expect((await rest.json()).run_id).toBe(run.run_id);
  });

  it('observations are readable as resources by URI', async () => {
    const r = await client.readResource({ uri: `observd://observations/${obsId}` });
    const first = r.contents[0] as { text: string; mimeType: string };
    expect(first.mimeType).toBe('application/json');
    expect(JSON.parse(first.text).observation_id).toBe(obsId);
    const templates = await client.listResourceTemplates();
    expect(templates.resourceTemplates.map((t) => t.uriTemplate)).toContain('observd://observations/{observation_id}');
  });
});

describe('MCP auth with tokens configured', () => {
  let d: TestDaemon;
  let obsId: string;

  beforeAll(async () => {
    d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
    const token = await createSource(d, { source_id: 'cam', display_name: 'Cam', kind: 'webcam_snapshot' }, ADMIN);
    obsId = (await upload(d, 'cam', token, makePng(4, 4, 3), 'k1')).observation_id;
  });
  afterAll(async () => d?.close());

  it('refuses a client with no token or a wrong one (401 at the endpoint)', async () => {
    await expect(httpClient(d)).rejects.toThrow(/401/);
    await expect(httpClient(d, 'wrong-token-0123456789abcdef')).rejects.toThrow(/401/);
  });

  it('a read-only token can read but a write tool is refused clearly', async () => {
    const client = await httpClient(d, READER);
    try {
      const read = await call(client, 'recent_observations', { source_id: 'cam' });
      expect(read.isError).toBeFalsy();
      const write = await call(client, 'materialize_observations', { target_session_id: 's', content: 'x', observation_ids: [obsId] });
      expect(write.isError).toBe(true);
      expect(textOf(write)).toMatch(/^forbidden \(HTTP 403\)/);
    } finally {
      await client.close();
    }
  });

  it('the admin token may materialize', async () => {
    const client = await httpClient(d, ADMIN);
    try {
      const r = await call(client, 'materialize_observations', {
        target_session_id: 's',
        content: 'x',
        source_id: 'cam',
        max_observations: 1,
      });
      expect(r.isError, textOf(r)).toBeFalsy();
    } finally {
      await client.close();
    }
  });
});

describe('MCP over stdio (observd mcp)', () => {
  let d: TestDaemon;
  let obsId: string;

  beforeAll(async () => {
    assertBuilt();
    d = await startDaemon({ admin_token: ADMIN, readonly_token: READER });
    const token = await createSource(d, { source_id: 'screen', display_name: 'Screen', kind: 'screen_snapshot' }, ADMIN);
    obsId = (await upload(d, 'screen', token, makePng(16, 16, 9), 'k1', 'image/png', { canonical_text: 'hello from stdio' }))
      .observation_id;
  });
  afterAll(async () => d?.close());

  it('spawned as a command, serves the same tools against the running daemon with OBSERVD_TOKEN', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'mcp', '--url', d.url],
      env: childEnv({ OBSERVD_TOKEN: ADMIN }) as Record<string, string>,
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (b) => (stderr += String(b)));
    const client = new Client({ name: 'stdio-test', version: '1.0.0' });
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      expect(tools).toHaveLength(5);
      const r = await call(client, 'get_observation', { observation_id: obsId, image: 'none' });
      expect(r.isError, textOf(r)).toBeFalsy();
      expect((r.structuredContent as { canonical_text: string }).canonical_text).toBe('hello from stdio');
      const w = await call(client, 'materialize_observations', { target_session_id: 's', content: 'x', observation_ids: [obsId] });
      expect(w.isError, textOf(w)).toBeFalsy();
    } finally {
      await client.close();
    }
    expect(stderr).toContain('observd mcp: serving stdio');
  });
});
