import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { Hono } from 'hono';
import { describeRoute } from 'hono-openapi';
import { type ApiFetch, daemonApi } from '../../mcp/api.js';
import { createMcpServer } from '../../mcp/server.js';
import { VERSION } from '../../version.js';
import { type AppEnv, bearerToken } from '../auth.js';
import type { RouteDeps } from '../app.js';
import { doc } from '../openapi.js';

/**
 * `/mcp`: the MCP server over Streamable HTTP, stateless (a server and transport per request, JSON
 * answers). The endpoint takes the API's tokens (admin or read-only); each tool then calls the API
 * in process with the caller's own bearer, so a tool can do exactly what its token may do over REST.
 * `selfFetch` is the app's own fetch (given by createApp, which owns the app).
 */
export function mcpRoutes({ config, auth }: RouteDeps, selfFetch: (req: Request, env: unknown) => Promise<Response>) {
  const app = new Hono<AppEnv>();
  // The methods Streamable HTTP uses (named rather than `all`, so the OpenAPI document lists them).
  app.on(
    ['GET', 'POST', 'DELETE'],
    '/',
    describeRoute(
      doc({ summary: "MCP over Streamable HTTP (stateless, JSON answers); tools call the API with the caller's token", auth: 'reader' }),
    ),
    auth('read'),
    async (c) => {
      const origin = new URL(c.req.url);
      const host = c.req.header('host') ?? origin.host;
      // In-process API calls keep the caller's Host and connection (its local address and port), both
      // already accepted by the browser guard, and send no Origin: they are same-origin by construction.
      const connection = { incoming: { socket: (c.env as { incoming?: { socket?: unknown } } | undefined)?.incoming?.socket } };
      const fetchFn: ApiFetch = (path, init) => {
        const headers = new Headers(init.headers);
        headers.set('host', host);
        return selfFetch(new Request(new URL(path, origin), { ...init, headers }), connection);
      };
      const server = createMcpServer(daemonApi(fetchFn, bearerToken(c.req.header('authorization'))), {
        version: VERSION,
        maxRawImageBytes: config.limits.mcp_max_image_bytes,
      });
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: undefined,
        enableJsonResponse: true,
        maxRequestBodySize: config.limits.max_admin_body_bytes,
      });
      await server.connect(transport);
      try {
        return await transport.handleRequest(c.req.raw);
      } finally {
        // A JSON answer is complete once handleRequest resolves; the per-request server goes with it.
        void server.close();
      }
    },
  );
  return app;
}
