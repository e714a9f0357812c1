import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { BlobStore } from './assets/blob-store.js';
import { systemClock, type Clock } from './clock.js';
import { isLoopback, parseBind } from './config/load.js';
import type { Config } from './config/schema.js';
import { migrate } from './db/migrate.js';
import { openDb } from './db/open.js';
import type { Deps } from './deps.js';
import { createApp, type Services } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { idFactory } from './ids.js';
import { createLogger, type Logger } from './logger.js';
import { ObservationService } from './observations/service.js';
import { startSweeper } from './retention/sweep.js';
import { SourceService } from './sources/service.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  now?: Clock;
  logger?: Logger;
}

/** Opens the data directory (migrating, sweeping stray files) and builds the domain services. */
export function openStore(config: Config, opts: DaemonOptions = {}) {
  const now = opts.now ?? systemClock;
  mkdirSync(config.data_dir, { recursive: true });
  const db = openDb(join(config.data_dir, 'observd.db'));
  migrate(db);
  const blobs = new BlobStore(config.data_dir);
  const known = db.prepare(`SELECT 1 FROM assets WHERE sha256 = ?`).pluck();
  const strays = blobs.sweepStrays((sha) => known.get(sha) !== undefined);
  const deps: Deps = { db, now, newId: idFactory(now), blobs, config };
  const sources = new SourceService(deps);
  const observations = new ObservationService(deps, sources);
  const services: Services = { db, blobs, config, sources, observations };
  return { deps, services, strays };
}

/**
 * The daemon: the store, the HTTP server and the sweeper, wired once. `start` listens (refusing a
 * non-loopback bind without an admin token); `close` drains requests, stops the sweeper and
 * closes SQLite.
 */
export function createDaemon(config: Config, opts: DaemonOptions = {}) {
  const { host, port } = parseBind(config.bind);
  if (!isLoopback(host) && !config.admin_token) {
    throw new Error(
      `refusing to listen on ${host}: without an admin token observd serves only loopback addresses; set admin_token, OBSERVD_ADMIN_TOKEN or --admin-token-file`,
    );
  }
  const logger = opts.logger ?? createLogger(config.log_level);
  const { deps, services, strays } = openStore(config, opts);
  if (strays.temps || strays.orphans) logger.info(strays, 'removed stray temp files and orphan blobs');
  let accepting = true;
  const app = createApp({ services, logger, metrics: createMetrics(), version: VERSION, ready: () => accepting });
  let server: Server | undefined;
  let sweeper: ReturnType<typeof startSweeper> | undefined;

  return {
    services,
    deps,
    logger,
    /** Starts listening; resolves with the bound address (port 0 picks a free one). */
    start(): Promise<{ host: string; port: number; url: string }> {
      return new Promise((resolve, reject) => {
        const s = serve(
          {
            fetch: app.fetch,
            hostname: host,
            port,
            serverOptions: {
              headersTimeout: config.server.headers_timeout_ms,
              requestTimeout: config.server.request_timeout_ms,
            },
          },
          (info: AddressInfo) => {
            sweeper = startSweeper(
              deps,
              (err) => logger.error({ err }, 'sweep failed'),
              (r) => logger.info(r, 'retention sweep purged observations'),
            );
            const h = info.address.includes(':') ? `[${info.address}]` : info.address;
            logger.info({ address: `${h}:${info.port}`, data_dir: config.data_dir, version: VERSION }, 'observd listening');
            resolve({ host: info.address, port: info.port, url: `http://${h}:${info.port}` });
          },
        ) as Server;
        s.once('error', reject);
        server = s;
      });
    },
    /** Stops accepting, lets in-flight requests finish (up to the shutdown grace), then closes everything. */
    async close(): Promise<void> {
      accepting = false;
      if (server) {
        const s = server;
        const closed = new Promise<void>((r) => s.close(() => r()));
        s.closeIdleConnections();
        const grace = setTimeout(() => s.closeAllConnections(), config.server.shutdown_grace_ms);
        await closed;
        clearTimeout(grace);
      }
      await sweeper?.stop();
      services.db.close();
      logger.info('observd stopped');
    },
  };
}
export type Daemon = ReturnType<typeof createDaemon>;
