import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { getRequestListener, RequestError, serve } from '@hono/node-server';
import { clientErrorResponse } from './client-error.js';
import { problemResponse } from './problem.js';

/** Where and how the HTTP server listens. */
export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
}

/** The address a started server is bound to. */
export interface BoundAddress {
  host: string;
  port: number;
  url: string;
}

/** A socket as Node's http server keeps it: `_httpMessage` is the response it is writing, if any. */
type HttpSocket = Socket & { _httpMessage?: ServerResponse };

/**
 * The HTTP server around `fetch` (the hono app), created but not yet listening. `listen` binds;
 * `stopAccepting` makes in-flight responses end with `Connection: close` (and `accepting` false, for
 * readiness); `drain` closes the server, waiting up to its grace for in-flight requests. A
 * request Node cannot parse or hono cannot build is answered as problem+json.
 */
export function createHttpServer(fetch: (req: Request, env?: unknown) => Response | Promise<Response>, o: HttpServerOptions) {
  let accepting = true;
  let server: Server | undefined;
  const open = new Set<ServerResponse>();
  const sockets = new Set<Socket>();

  return {
    /** False once `stopAccepting` ran. */
    get accepting(): boolean {
      return accepting;
    },
    /** Starts listening; resolves with the bound address (port 0 picks a free one), rejects when the bind fails. */
    listen(): Promise<BoundAddress> {
      return new Promise((resolve, reject) => {
        const s = serve(
          {
            fetch,
            hostname: o.host,
            port: o.port,
            serverOptions: { headersTimeout: o.headersTimeoutMs, requestTimeout: o.requestTimeoutMs },
            // hono's own listener answers a request it cannot build (backslash in the path, bad
            // Host) with a bare 400; this one says so as problem+json.
            createServer: ((opts: ServerOptions) =>
              createServer(
                opts,
                getRequestListener(fetch, { hostname: o.host, errorHandler: requestErrorResponse }),
              )) as typeof createServer,
          },
          (info: AddressInfo) => {
            const h = info.address.includes(':') ? `[${info.address}]` : info.address;
            resolve({ host: info.address, port: info.port, url: `http://${h}:${info.port}` });
          },
        ) as Server;
        s.once('error', reject);
        trackForDrain(s);
        s.on('clientError', answerClientError);
        server = s;
      });
    },
    /** Stops keeping connections alive: responses not yet started end with `Connection: close`. */
    stopAccepting(): void {
      accepting = false;
      for (const res of open) if (!res.headersSent) res.shouldKeepAlive = false;
    },
    /** Closes the server: idle connections now, busy ones when their response ends, all of them after `graceMs`. */
    async drain(graceMs: number): Promise<void> {
      if (!server) return;
      const s = server;
      const closed = new Promise<void>((r) => s.close(() => r()));
      s.closeIdleConnections();
      // A connection that never sent a byte is idle too, but Node counts it as awaiting headers
      // (fetch opens one speculatively after an aborted stream); it must not hold the drain.
      for (const socket of sockets as Set<HttpSocket>) {
        if (socket.bytesRead === 0 && !socket._httpMessage) socket.destroy();
      }
      const grace = setTimeout(() => s.closeAllConnections(), graceMs);
      await closed;
      clearTimeout(grace);
    },
  };

  /**
   * While draining, in-flight responses end with `Connection: close` and finished keep-alive
   * sockets are dropped, so an idle client cannot hold the shutdown open.
   */
  function trackForDrain(s: Server): void {
    s.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      if (!accepting) res.shouldKeepAlive = false;
      open.add(res);
      res.once('close', () => open.delete(res));
      res.once('finish', () => {
        if (!accepting) setImmediate(() => s.closeIdleConnections());
      });
    });
    s.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
  }
}
export type HttpServer = ReturnType<typeof createHttpServer>;

/** A request Node cannot parse (or that is too large or slow to arrive) gets problem+json too. */
function answerClientError(err: NodeJS.ErrnoException, socket: HttpSocket): void {
  if (socket.writable && !socket._httpMessage?.headersSent) socket.write(clientErrorResponse(err.code));
  socket.destroy();
}

/** The answer to a request hono could not turn into a Request. */
function requestErrorResponse(e: unknown): Response {
  if (e instanceof RequestError) return problemResponse('bad_request', `the request could not be understood: ${e.message}`);
  return problemResponse('internal', 'an internal error occurred');
}
