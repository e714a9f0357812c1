import type { Hono } from 'hono';
import { generateSpecs, type DescribeRouteOptions } from 'hono-openapi';
import { z } from 'zod';

/** Who may call a route, for its `security` in the document. */
export type RouteAuth = 'admin' | 'reader' | 'upload' | 'none';

/** What a route documents about itself; `doc` turns it into hono-openapi's `describeRoute` options. */
export interface RouteDoc {
  summary: string;
  auth: RouteAuth;
  /** The zod schema the route parses its JSON body with. */
  body?: z.ZodType;
  /** The `observation` part of a multipart body (the route also takes a `file` part). */
  multipart?: z.ZodType;
  /** The zod schema the route parses its query string with. */
  query?: z.ZodType;
  /** The view it answers with. */
  response?: z.ZodType;
  /** The success status (200 by default). */
  status?: number;
  /** A success body that is not JSON (e.g. asset bytes, SSE). */
  responseMedia?: string;
}

const problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    domain: { type: 'string', description: '`observation_ingress` on upload errors, as in Kheish' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

const schemaOf = (s: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;

function queryParams(s: z.ZodType | undefined) {
  if (!s) return [];
  const js = schemaOf(s, 'input') as { properties?: Record<string, object>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query' as const,
    required: js.required?.includes(name) ?? false,
    schema,
  }));
}

/**
 * The OpenAPI description of one route, built from the zod schemas the route itself parses
 * with. Use it as `app.get(path, describeRoute(doc({...})), auth(...), handler)`: the document
 * at /openapi.json is generated from the mounted routes, so a route without it is caught by
 * test/openapi.test.ts.
 */
export function doc(d: RouteDoc): DescribeRouteOptions {
  const content: Record<string, { schema: Record<string, unknown> }> = {};
  if (d.body) content['application/json'] = { schema: schemaOf(d.body, 'input') };
  if (d.multipart) {
    content['multipart/form-data'] = {
      schema: {
        type: 'object',
        required: ['file', 'observation'],
        properties: { file: { type: 'string', format: 'binary' }, observation: schemaOf(d.multipart, 'input') },
      },
    };
  }
  const ok = String(d.status ?? 200);
  const okResponse = d.response
    ? { description: 'OK', content: { 'application/json': { schema: schemaOf(d.response, 'output') } } }
    : d.responseMedia
      ? { description: 'OK', content: { [d.responseMedia]: { schema: { type: 'string' } } } }
      : { description: 'OK' };
  return {
    summary: d.summary,
    security: d.auth === 'none' ? [] : [{ [d.auth === 'upload' ? 'uploadToken' : 'adminToken']: [] }],
    parameters: queryParams(d.query),
    ...(Object.keys(content).length ? { requestBody: { required: true, content } } : {}),
    responses: {
      [ok]: okResponse,
      default: { description: 'Problem', content: { 'application/problem+json': { schema: problem } } },
    } as DescribeRouteOptions['responses'],
  } as DescribeRouteOptions;
}

/**
 * A list route's answer under the list convention: a bare array, or with `page=true` / `cursor`
 * Kheish's ListPage envelope.
 */
export function listOf(item: z.ZodType) {
  return z.union([
    z.array(item),
    z.object({
      items: z.array(item),
      pagination: z.object({
        limit: z.number().int(),
        total_count: z.number().int(),
        has_more: z.boolean(),
        next_cursor: z.string().optional(),
        order: z.string(),
      }),
    }),
  ]);
}

/** The OpenAPI 3.1 document of an app, generated from its routes' `describeRoute` decorations. */
// biome-ignore lint/suspicious/noExplicitAny: any app, whatever its environment type.
export async function buildOpenApi(app: Hono<any>, version: string): Promise<Record<string, unknown>> {
  return generateSpecs(app, {
    excludeStaticFile: false,
    documentation: {
      openapi: '3.1.0',
      info: { title: 'observd', version, description: 'The observation plane for AI agents.' },
      components: {
        securitySchemes: {
          adminToken: { type: 'http', scheme: 'bearer', description: 'Admin token (GET routes also take the read-only token)' },
          uploadToken: { type: 'http', scheme: 'bearer', description: "The source's upload token" },
        },
      },
    },
  });
}

/** A self-contained API reference page: no external script or style, so it works offline. */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>observd API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}
code,pre{background:#f4f4f4;padding:2px 4px;border-radius:3px}pre{padding:8px;overflow:auto;max-height:300px}
.m{display:inline-block;width:5em;font-weight:bold;text-transform:uppercase}</style></head>
<body><h1>observd API</h1><p>Generated from <a href="/openapi.json">/openapi.json</a>.</p><div id="routes">Loading…</div>
<script>
fetch('/openapi.json').then(r=>r.json()).then(doc=>{
  const el=document.getElementById('routes');el.textContent='';
  for(const [path,ops] of Object.entries(doc.paths)){for(const [m,op] of Object.entries(ops)){
    const d=document.createElement('details');const s=document.createElement('summary');
    s.innerHTML='<span class="m"></span> <code></code> — <span></span>';
    s.children[0].textContent=m;s.children[1].textContent=path;s.children[2].textContent=op.summary;
    const pre=document.createElement('pre');pre.textContent=JSON.stringify(op,null,2);
    d.append(s,pre);el.append(d);}}
});
</script></body></html>`;
