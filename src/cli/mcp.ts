import { readFileSync } from 'node:fs';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { daemonApi } from '../mcp/api.js';
import { createMcpServer } from '../mcp/server.js';
import { VERSION } from '../version.js';
import { commonArgs } from './args.js';

/**
 * `observd mcp [--url URL] [--token-file FILE]`: the MCP server over stdio, for desktop agents
 * that spawn a command. It talks to a running daemon (default: the configured bind address)
 * with the token from `OBSERVD_TOKEN` or `--token-file`; stdout carries only MCP messages, so
 * everything else goes to stderr. Resolves when stdin closes.
 */
export async function mcpCommand(argv: string[]): Promise<number> {
  const args = commonArgs(argv, { url: { type: 'string' }, 'token-file': { type: 'string' } });
  const values = args.values as Record<string, string | undefined>;
  const cfg = args.config();
  const base = values.url ?? bindUrl(cfg.bind);
  const tokenFile = values['token-file'];
  const token = tokenFile ? readFileSync(tokenFile, 'utf8').trim() : process.env.OBSERVD_TOKEN?.trim() || undefined;
  const api = daemonApi((path, init) => fetch(new URL(path, base), init), token);
  const server = createMcpServer(api, { version: VERSION, maxRawImageBytes: cfg.limits.mcp_max_image_bytes });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = resolve;
    process.stdin.once('end', resolve);
  });
  await server.connect(transport);
  console.error(`observd mcp: serving stdio against ${base}`);
  await closed;
  await server.close();
  return 0;
}

/** The URL of a daemon listening on `host:port`; a wildcard bind is reached over loopback. */
function bindUrl(bind: string): string {
  const i = bind.lastIndexOf(':');
  const host = bind.slice(0, i).replace(/^\[|\]$/g, '');
  const port = bind.slice(i + 1);
  const reach = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${reach.includes(':') ? `[${reach}]` : reach}:${port}`;
}
