import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BlobStore } from './assets/blob-store.js';
import { CaptureAgentService } from './capture/service.js';
import { assetIdOf } from './assets/repo.js';
import { systemClock, type Clock } from './clock.js';
import { isLoopback, parseBind } from './config/load.js';
import type { Config } from './config/schema.js';
import { migrate } from './db/migrate.js';
import { createDerivationService } from './derivations/service.js';
import { openDb, WalSync, type Db } from './db/open.js';
import { closeReadPool, enableReadPool, readWorkers } from './db/read-pool.js';
import { blobNameOf, type StoreKeys } from './crypto/keys.js';
import { resolveStoreKeys } from './crypto/store.js';
import type { Deps } from './deps.js';
import { EventHub } from './events/hub.js';
import { Outbox } from './events/outbox.js';
import { WebhookDeliverer } from './events/webhooks.js';
import { daemonJobs } from './daemon-jobs.js';
import { isDiskFull } from './errors.js';
import { createApp, type Services } from './http/app.js';
import { createMetrics } from './http/metrics.js';
import { type BoundAddress, createHttpServer } from './http/server.js';
import { idFactory } from './ids.js';
import { JobRegistry } from './jobs.js';
import { createLogger, type Logger } from './logger.js';
import { createMaterializationService } from './materialization/service.js';
import { ObservationService } from './observations/service.js';
import { eraseMentions } from './retention/erase.js';
import { evictOldest } from './retention/evict.js';
import { indexText } from './search/repo.js';
import { SearchService } from './search/service.js';
import { SourceService } from './sources/service.js';
import { SignedUploadService } from './uploads/service.js';
import { AssetService } from './assets/service.js';
import { loadSigningKey } from './uploads/signing.js';
import type { HostResolver } from './uploads/url-fetch.js';
import { UrlImportService } from './uploads/url-import.js';
import { VERSION } from './version.js';

export interface DaemonOptions {
  now?: Clock;
  logger?: Logger;
  /** Resolves host names for URL imports (default: the system resolver); tests map names to loopback. */
  resolveHost?: HostResolver;
  /** CA certificates URL imports trust instead of Node's bundle (tests' self-signed https servers). */
  fetchCa?: string;
}

/**
 * Opens the data directory (migrating, sweeping stray files) and builds the domain services.
 * `sweepStrays: false` leaves temp files and unclaimed blobs alone: a tool that may run beside a
 * live daemon (`observd sweep --once`) must not pull its in-flight uploads from under it.
 */
export function openStore(config: Config, opts: DaemonOptions & { sweepStrays?: boolean } = {}) {
  const now = opts.now ?? systemClock;
  const { db, dbFile, keys } = openDataDb(config);
  migrate(db);
  const blobs = new BlobStore(config.data_dir, keys);
  const strays = opts.sweepStrays === false ? { temps: 0, orphans: 0 } : blobs.sweepStrays(knownBlobNames(db, keys));
  const newId = idFactory(now);
  const deps: Deps = { db, now, newId, blobs, config, events: new Outbox(db, newId, now), wal: new WalSync(`${dbFile}-wal`) };
  const erase = (ids: string[]) => eraseMentions(deps, ids);
  const sources = new SourceService(deps, erase);
  const derivations = createDerivationService(deps, opts.logger);
  const observations = new ObservationService(deps, sources, {
    afterCreate: (o) => derivations.autoDerive(o),
    indexText,
    evictFor: (source, bytes, at) => evictOldest(deps, source, bytes, at),
    eraseMentions: erase,
  });
  const materializations = createMaterializationService(deps, derivations, opts.logger);
  const signedUploads = new SignedUploadService(deps, observations, loadSigningKey(config.data_dir, config.uploads.signing_key));
  const assets = new AssetService(deps);
  const urlImports = new UrlImportService(deps, observations, opts.resolveHost, opts.fetchCa);
  const eventStreams = new EventHub(deps.events, config.events.heartbeat_ms);
  const search = new SearchService(deps);
  const captureAgents = new CaptureAgentService(deps, sources);
  const services: Services = {
    db,
    blobs,
    config,
    sources,
    observations,
    assets,
    derivations,
    materializations,
    signedUploads,
    urlImports,
    eventStreams,
    search,
    captureAgents,
  };
  /** Closes the store opened here (the CLI's and tests' counterpart of the daemon's `close`). */
  const close = async () => {
    await deps.wal.close();
    db.close();
  };
  return { deps, services, strays, close };
}

/** Opens the store's database, saying plainly when the key cannot read it. */
/**
 * The data directory's database (the directory is made if missing), opened with the store's key
 * when it is encrypted; Error with a plain message for a wrong or missing key.
 */
export function openDataDb(config: Config): { db: Db; dbFile: string; keys: StoreKeys | undefined } {
  mkdirSync(config.data_dir, { recursive: true });
  const dbFile = join(config.data_dir, 'observd.db');
  const keys = resolveStoreKeys(config.data_dir, config.encryption.key_file);
  return { db: openStoreDb(dbFile, keys), dbFile, keys };
}

function openStoreDb(dbFile: string, keys: StoreKeys | undefined): Db {
  try {
    return openDb(dbFile, keys?.dbHex);
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_NOTADB') {
      throw new Error(
        keys
          ? `${dbFile} cannot be read with the configured encryption key (wrong key, or not an observd database); nothing was changed`
          : `${dbFile} is not a readable SQLite database (is it encrypted? configure encryption.key_file)`,
      );
    }
    throw e;
  }
}

/** Which blob file names the database claims: by primary key (`ast_<sha256>`) in a plain store, as HMACs of every asset's hash in an encrypted one. */
function knownBlobNames(db: Db, keys: StoreKeys | undefined): (name: string) => boolean {
  if (!keys) {
    const known = db.prepare(`SELECT 1 FROM assets WHERE asset_id = ?`).pluck();
    return (name) => known.get(assetIdOf(name)) !== undefined;
  }
  const names = new Set<string>();
  for (const sha of db.prepare(`SELECT sha256 FROM assets`).pluck().iterate() as IterableIterator<string>) names.add(blobNameOf(keys, sha));
  return (name) => names.has(name);
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
  const { deps, services, strays } = openStore(config, { ...opts, logger });
  enableReadPool(services.db, readWorkers(config.server.read_workers), (err) =>
    logger.warn({ err }, 'read workers unavailable; listings read on the event loop'),
  );
  if (strays.temps || strays.orphans) logger.info(strays, 'removed stray temp files and orphan blobs');
  const metrics = createMetrics(services.db, () => services.derivations.ocrStats());
  const app = createApp({ services, logger, metrics, version: VERSION, ready: () => http.accepting });
  const http = createHttpServer(app.fetch, {
    host,
    port,
    headersTimeoutMs: config.server.headers_timeout_ms,
    requestTimeoutMs: config.server.request_timeout_ms,
  });
  const jobs = new JobRegistry(deps.now, (run) => {
    metrics.recordJob(run);
    // A full disk is not a bug: the job runs again next time and succeeds once space is freed.
    if (run.error !== undefined && isDiskFull(run.error))
      logger.warn({ err: run.error, job: run.name }, 'periodic job postponed: disk full');
    else if (run.error !== undefined) logger.error({ err: run.error, job: run.name }, 'periodic job failed');
  });
  for (const job of daemonJobs(deps, services, logger)) jobs.add(job);
  const webhooks = new WebhookDeliverer(deps, logger);

  return {
    services,
    deps,
    logger,
    jobs,
    /** Starts listening, then the background work; resolves with the bound address (port 0 picks a free one). */
    async start(): Promise<BoundAddress> {
      const address = await http.listen();
      services.derivations.start();
      services.materializations.start();
      jobs.start();
      webhooks.start();
      logger.info({ address: address.url.slice('http://'.length), data_dir: config.data_dir, version: VERSION }, 'observd listening');
      return address;
    },
    /** Stops accepting, lets in-flight requests finish (up to the shutdown grace), then closes everything. */
    async close(): Promise<void> {
      http.stopAccepting();
      // SSE streams never end on their own; end them so the drain below is not held open.
      services.eventStreams.close();
      // Before the drain, so requests waiting on a derivation answer now instead of holding it open.
      await services.materializations.close();
      await services.derivations.close();
      await http.drain(config.server.shutdown_grace_ms);
      await Promise.all([jobs.stop(), webhooks.stop()]);
      await deps.wal.close();
      await closeReadPool(services.db);
      services.db.close();
      logger.info('observd stopped');
    },
  };
}
export type Daemon = ReturnType<typeof createDaemon>;
