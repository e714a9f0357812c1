import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got, and the status it answered. */
export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedHook[];
  /** Statuses for the next requests, in order (0: never answer); once used up, `fallback` answers. */
  script: number[];
  fallback: number;
  /** Resolves once `n` requests have arrived (rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** A real webhook receiver on loopback (node:http), answering a scripted status per request. */
export async function startReceiver(): Promise<WebhookReceiver> {
  const listeners = new Set<() => void>();
  const r: Omit<WebhookReceiver, 'url' | 'close'> = {
    received: [],
    script: [],
    fallback: 200,
    waitFor(n, ms = 5_000) {
      return new Promise((resolve, reject) => {
        if (r.received.length >= n) return resolve();
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`receiver got ${r.received.length} of ${n} requests within ${ms} ms`));
        }, ms);
        const check = () => {
          if (r.received.length < n) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
      });
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = r.script.shift() ?? r.fallback;
      r.received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      if (status !== 0) res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
      for (const l of [...listeners]) l();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return Object.assign(r, {
    url: `http://127.0.0.1:${port}/hook`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((done) => server.close(() => done()));
    },
  });
}
