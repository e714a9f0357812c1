import { z } from 'zod';
import { auditQuerySchema } from '../audit/repo.js';
import {
  derivationListQuerySchema,
  derivationPostQuerySchema,
  derivationRequestSchema,
  derivationViewSchema,
} from '../derivations/schemas.js';
import { completeRunSchema, materializationRequestSchema, runListQuerySchema, runViewSchema } from '../materialization/schemas.js';
import { eventsQuerySchema } from '../events/schemas.js';
import { receivedUploadSchema, uploadUrlQuerySchema, uploadUrlSchema } from '../uploads/schemas.js';
import {
  batchResultSchema,
  batchUploadSchema,
  uploadUrlRequestSchema,
  jsonUploadSchema,
  multipartObservationSchema,
  observationListQuerySchema,
  observationViewSchema,
} from '../observations/schemas.js';
import {
  rotateTokenSchema,
  sourceListQuerySchema,
  sourcePatchSchema,
  sourceUpsertSchema,
  sourceViewSchema,
} from '../sources/schemas.js';

type Op = {
  summary: string;
  auth: 'admin' | 'reader' | 'upload' | 'none';
  body?: z.ZodType;
  multipart?: z.ZodType;
  query?: z.ZodType;
  response?: z.ZodType;
  status?: number;
};

const problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

const page = (item: z.ZodType) => z.object({ data: z.array(item), cursor: z.object({ next: z.string().nullable() }) });

/** Every route and the zod schema it validates with; the document below is generated from this table. */
export const ROUTES: Record<string, Record<string, Op>> = {
  '/v1/observation-sources': {
    get: { summary: 'List sources', auth: 'reader', query: sourceListQuerySchema, response: page(sourceViewSchema) },
    post: { summary: 'Create or update a source', auth: 'admin', body: sourceUpsertSchema, response: sourceViewSchema, status: 201 },
  },
  '/v1/observation-sources/{source_id}': {
    get: { summary: 'Get a source', auth: 'reader', response: sourceViewSchema },
    patch: { summary: 'Update a source', auth: 'admin', body: sourcePatchSchema, response: sourceViewSchema },
    delete: { summary: 'Delete a source, its observations and unreferenced blobs', auth: 'admin', status: 204 },
  },
  '/v1/observation-sources/{source_id}/rotate-token': {
    post: { summary: 'Rotate the upload token with a grace period', auth: 'admin', body: rotateTokenSchema, response: sourceViewSchema },
  },
  '/v1/observation-sources/{source_id}/revoke-token': {
    post: { summary: 'Revoke every upload token of a source', auth: 'admin', response: sourceViewSchema },
  },
  '/v1/observation-sources/{source_id}/observations': {
    post: {
      summary: 'Upload an observation (JSON with base64, or multipart with a file part)',
      auth: 'upload',
      body: jsonUploadSchema,
      multipart: multipartObservationSchema,
      response: observationViewSchema,
      status: 201,
    },
  },
  '/v1/observation-sources/{source_id}/observations/batch': {
    post: {
      summary:
        'Upload up to 100 observations (each the JSON upload body); 200 with a status per item. The rate limit counts one token per item',
      auth: 'upload',
      body: batchUploadSchema,
      response: batchResultSchema,
    },
  },
  '/v1/observation-sources/{source_id}/upload-urls': {
    post: {
      summary: 'Mint a signed upload URL: PUT the raw bytes to it (no token), then create the observation with upload.upload_id',
      auth: 'upload',
      body: uploadUrlRequestSchema,
      response: uploadUrlSchema,
      status: 201,
    },
  },
  '/v1/uploads/{upload_id}': {
    put: {
      summary: 'The raw bytes of a signed upload (the body is the media itself; the signed URL is the credential, single use)',
      auth: 'none',
      query: uploadUrlQuerySchema,
      response: receivedUploadSchema,
    },
  },
  '/v1/events': {
    get: {
      summary: 'Server-Sent Events from the outbox (id = sequence number; resume with Last-Event-ID; comment-line heartbeats)',
      auth: 'reader',
      query: eventsQuerySchema,
    },
  },
  '/v1/observations': {
    get: { summary: 'List observations', auth: 'reader', query: observationListQuerySchema, response: page(observationViewSchema) },
  },
  '/v1/observations/{observation_id}': {
    get: { summary: 'Get an observation', auth: 'reader', response: observationViewSchema },
    delete: { summary: 'Erase an observation now', auth: 'admin', status: 204 },
  },
  '/v1/assets/{asset_id}': { get: { summary: 'Asset metadata', auth: 'reader' } },
  '/v1/assets/{asset_id}/content': { get: { summary: 'Asset bytes', auth: 'reader' } },
  '/v1/derivations': {
    get: { summary: 'List derivations', auth: 'reader', query: derivationListQuerySchema, response: page(derivationViewSchema) },
    post: {
      summary: 'Derive canonical text or a visual preview (waits for the result unless wait=false; 202 while pending)',
      auth: 'admin',
      query: derivationPostQuerySchema,
      body: derivationRequestSchema,
      response: derivationViewSchema,
    },
  },
  '/v1/derivations/{derivation_id}': {
    get: { summary: 'Get a derivation', auth: 'reader', response: derivationViewSchema },
  },
  '/v1/observation-materializations': {
    post: {
      summary: 'Materialize a selection of observations into a run (its composed input, handed to the run submitter)',
      auth: 'admin',
      body: materializationRequestSchema,
      response: runViewSchema,
      status: 202,
    },
  },
  '/v1/runs': {
    get: { summary: 'List runs (without their input)', auth: 'reader', query: runListQuerySchema, response: page(runViewSchema) },
  },
  '/v1/runs/{run_id}': {
    get: { summary: 'Get a run with its composed input, and output and usage once finished', auth: 'reader', response: runViewSchema },
  },
  '/v1/runs/{run_id}/claim': {
    post: { summary: 'Claim a queued run for an agent runtime (queued → running, leased for runs.claim_lease_ms; 409 otherwise)', auth: 'admin', response: runViewSchema },
  },
  '/v1/runs/{run_id}/heartbeat': {
    post: { summary: 'Extend the lease of a claimed run (409 when it is no longer held)', auth: 'admin', response: runViewSchema },
  },
  '/v1/runs/{run_id}/complete': {
    post: {
      summary: 'Finish a running run with its output (and usage) or an error (→ completed | failed; 409 otherwise)',
      auth: 'admin',
      body: completeRunSchema,
      response: runViewSchema,
    },
  },
  '/v1/observation-audit': { get: { summary: 'Audit trail', auth: 'reader', query: auditQuerySchema } },
  '/livez': { get: { summary: 'Liveness', auth: 'none' } },
  '/readyz': { get: { summary: 'Readiness', auth: 'none' } },
  '/metrics': { get: { summary: 'Prometheus metrics', auth: 'none' } },
};

const schemaOf = (s: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(s, { io, unrepresentable: 'any' });

function queryParams(s: z.ZodType | undefined) {
  if (!s) return [];
  const js = schemaOf(s, 'input') as { properties?: Record<string, object>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, schema]) => ({
    name,
    in: 'query',
    required: js.required?.includes(name) ?? false,
    schema,
  }));
}

/** The OpenAPI 3.1 document, built from the same zod schemas the routes validate with. */
export function buildOpenApi(version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, ops] of Object.entries(ROUTES)) {
    paths[path] = {};
    const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    for (const [method, op] of Object.entries(ops)) {
      const content: Record<string, unknown> = {};
      if (op.body) content['application/json'] = { schema: schemaOf(op.body, 'input') };
      if (op.multipart) {
        content['multipart/form-data'] = {
          schema: {
            type: 'object',
            required: ['file', 'observation'],
            properties: { file: { type: 'string', format: 'binary' }, observation: schemaOf(op.multipart, 'input') },
          },
        };
      }
      const ok = String(op.status ?? 200);
      paths[path][method] = {
        summary: op.summary,
        security: op.auth === 'none' ? [] : [{ [op.auth === 'upload' ? 'uploadToken' : 'adminToken']: [] }],
        parameters: [...pathParams, ...queryParams(op.query)],
        ...(Object.keys(content).length ? { requestBody: { required: true, content } } : {}),
        responses: {
          [ok]: op.response ? { description: 'OK', content: { 'application/json': { schema: schemaOf(op.response, 'output') } } } : { description: 'OK' },
          default: { description: 'Problem', content: { 'application/problem+json': { schema: problem } } },
        },
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'observd', version, description: 'The observation plane for AI agents.' },
    components: {
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'Admin token (GET routes also take the read-only token)' },
        uploadToken: { type: 'http', scheme: 'bearer', description: "The source's upload token" },
      },
    },
    paths,
  };
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
