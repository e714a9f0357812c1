import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { ObservdError, type ObservdClient } from '../client/index.js';
import { sentMediaTypeOf } from '../observations/media.js';

export interface WatchOptions {
  dir: string;
  sourceId: string;
  client: ObservdClient;
  uploadToken: string;
  /** With both, the agent heartbeats every `heartbeatIntervalMs`. */
  machineId?: string;
  heartbeatToken?: string;
  heartbeatIntervalMs: number;
  /** The offline queue and the record of acknowledged files (JSON, rewritten atomically). */
  statePath: string;
  scanIntervalMs: number;
  streamId?: string;
  metadata?: Record<string, unknown>;
  agentVersion: string;
  log: (event: Record<string, unknown>) => void;
}

/** One file the agent knows: what it looked like, its idempotency key, and where it stands. */
interface FileState {
  size: number;
  mtime_ms: number;
  sha256: string;
  key: string;
  state: 'pending' | 'acked' | 'rejected';
  observation_id?: string;
}

/** Why the agent stopped: asked to (SIGTERM), or the daemon refused its credentials (401). */
export type WatchExit = { reason: 'stopped' } | { reason: 'credential_refused'; detail: string };

const MAX_BACKOFF_MS = 30_000;

/**
 * A capture agent over a directory: every media file that appears or changes (once its size
 * and mtime held still for one scan) is hashed as a stream, queued in a state file, and
 * uploaded as a streamed multipart request with the file's mtime as `captured_at_ms` and an
 * idempotency key derived from its path and content, so a file is never stored twice: not after
 * a retry, a daemon restart or an agent restart. Failed uploads stay queued and are retried
 * with backoff until acknowledged. Memory holds the state map only, never file contents.
 */
export class DirectoryWatcher {
  private files: Record<string, FileState> = {};
  private lastSeen = new Map<string, string>();
  private abort = new AbortController();
  private backoffMs = 0;
  private retryAt = 0;
  private fatal?: WatchExit;

  constructor(private o: WatchOptions) {
    if (existsSync(o.statePath)) {
      const saved = JSON.parse(readFileSync(o.statePath, 'utf8')) as { files?: Record<string, FileState> };
      this.files = saved.files ?? {};
    }
  }

  /** Runs until `stop()` or a refused credential. */
  async run(): Promise<WatchExit> {
    const beats = this.o.machineId && this.o.heartbeatToken ? this.heartbeats() : Promise.resolve();
    while (!this.abort.signal.aborted) {
      try {
        await this.scan();
        await this.drain();
      } catch (e) {
        if (!this.abort.signal.aborted) this.o.log({ event: 'error', message: (e as Error).message });
      }
      await this.sleep(this.o.scanIntervalMs);
    }
    await beats;
    this.save();
    return this.fatal ?? { reason: 'stopped' };
  }

  /** Ends the loops; an upload in flight is abandoned (it stays queued, and its retry is a replay). */
  stop(fatal?: WatchExit): void {
    this.fatal ??= fatal;
    this.abort.abort();
  }

  /** Queued files not yet acknowledged. */
  get pending(): number {
    return Object.values(this.files).filter((f) => f.state === 'pending').length;
  }

  private async scan(): Promise<void> {
    const present = new Set<string>();
    const entries = await readdir(this.o.dir, { recursive: true, withFileTypes: true });
    let changed = false;
    for (const ent of entries) {
      if (!ent.isFile()) continue;
      const abs = join(ent.parentPath ?? (ent as unknown as { path: string }).path, ent.name);
      const rel = relative(this.o.dir, abs);
      if (rel.split(sep).some((p) => p.startsWith('.')) || !sentMediaTypeOf(rel)) continue;
      present.add(rel);
      const st = await stat(abs).catch(() => undefined);
      if (!st) continue;
      const mtime = Math.floor(st.mtimeMs);
      const known = this.files[rel];
      if (known && known.size === st.size && known.mtime_ms === mtime) continue;
      // A file still being written changes between scans: wait until it holds still for one.
      const look = `${st.size}:${mtime}`;
      if (this.lastSeen.get(rel) !== look) {
        this.lastSeen.set(rel, look);
        continue;
      }
      this.lastSeen.delete(rel);
      const sha256 = await hashFile(abs);
      if (known && known.sha256 === sha256) {
        this.files[rel] = { ...known, size: st.size, mtime_ms: mtime };
      } else {
        const key = `observd-watch:${createHash('sha256').update(`${rel}\u0000${sha256}`).digest('hex').slice(0, 48)}`;
        this.files[rel] = { size: st.size, mtime_ms: mtime, sha256, key, state: 'pending' };
        this.o.log({ event: 'queued', file: rel, key });
      }
      changed = true;
    }
    for (const rel of Object.keys(this.files)) {
      if (!present.has(rel)) {
        delete this.files[rel];
        changed = true;
      }
    }
    for (const rel of this.lastSeen.keys()) if (!present.has(rel)) this.lastSeen.delete(rel);
    if (changed) this.save();
  }

  /** Uploads queued files oldest first, one at a time, until the queue is empty or the daemon fails. */
  private async drain(): Promise<void> {
    if (Date.now() < this.retryAt) return;
    const queue = Object.entries(this.files)
      .filter(([, f]) => f.state === 'pending')
      .sort(([, a], [, b]) => a.mtime_ms - b.mtime_ms);
    for (const [rel, f] of queue) {
      if (this.abort.signal.aborted) return;
      const abs = join(this.o.dir, rel);
      const st = await stat(abs).catch(() => undefined);
      if (!st || st.size !== f.size || Math.floor(st.mtimeMs) !== f.mtime_ms) continue;
      try {
        const { observation, replayed } = await this.o.client.uploadFile(
          this.o.sourceId,
          this.o.uploadToken,
          abs,
          {
            idempotency_key: f.key,
            captured_at_ms: f.mtime_ms,
            ...(this.o.streamId ? { stream_id: this.o.streamId } : {}),
            ...(this.o.metadata ? { metadata: this.o.metadata } : {}),
            upload: { media_type: sentMediaTypeOf(rel)!, file_name: basename(rel) },
          },
          this.abort.signal,
        );
        f.state = 'acked';
        f.observation_id = observation.observation_id;
        this.save();
        this.backoffMs = 0;
        this.o.log({ event: 'uploaded', file: rel, observation_id: observation.observation_id, replayed, captured_at_ms: f.mtime_ms });
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (!this.handleFailure(e, rel, f)) return;
      }
    }
  }

  /** Decides what a failed upload means; false when draining should pause (retry later). */
  private handleFailure(e: unknown, rel: string, f: FileState): boolean {
    const err = e instanceof ObservdError ? e : undefined;
    if (err?.status === 401) {
      this.o.log({ event: 'credential_refused', file: rel, detail: err.detail });
      this.stop({ reason: 'credential_refused', detail: err.detail });
      return false;
    }
    if (err && [400, 413, 415, 422].includes(err.status)) {
      f.state = 'rejected';
      this.save();
      this.o.log({ event: 'rejected', file: rel, status: err.status, code: err.code, detail: err.detail });
      return true;
    }
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs ? this.backoffMs * 2 : 500);
    this.retryAt = Date.now() + this.backoffMs;
    this.o.log({ event: 'upload_failed', file: rel, status: err?.status ?? 0, code: err?.code ?? 'error', retry_in_ms: this.backoffMs });
    return false;
  }

  private async heartbeats(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        const hb = await this.o.client.heartbeat(
          this.o.machineId!,
          this.o.heartbeatToken!,
          { observed_source_ids: [this.o.sourceId], agent_version: this.o.agentVersion },
          this.abort.signal,
        );
        this.o.log({ event: 'heartbeat', heartbeat_state: hb.heartbeat_state, heartbeat_deadline_ms: hb.heartbeat_deadline_ms });
      } catch (e) {
        if (this.abort.signal.aborted) return;
        if (e instanceof ObservdError && e.status === 401) {
          this.o.log({ event: 'credential_refused', detail: e.detail });
          this.stop({ reason: 'credential_refused', detail: e.detail });
          return;
        }
        this.o.log({ event: 'heartbeat_failed', status: e instanceof ObservdError ? e.status : 0 });
      }
      await this.sleep(this.o.heartbeatIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(t);
        this.abort.signal.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done);
    });
  }

  private save(): void {
    const tmp = `${this.o.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify({ version: 1, source_id: this.o.sourceId, files: this.files }));
    renameSync(tmp, this.o.statePath);
  }
}

/** SHA-256 of a file, read as a stream. */
function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}
