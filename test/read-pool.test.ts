import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3-multiple-ciphers';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { ReadPool, readPoolOf, readWorkers } from '../src/db/read-pool.js';
import { countObservations } from '../src/observations/repo.js';
import { startDaemon, type TestDaemon } from './helpers/daemon.js';
import { createSource, sourceBody, upload } from './helpers/fixtures.js';
import { makePng } from './helpers/media.js';
import { expectProblem } from './helpers/problem.js';

const TOKEN = 'read-pool-token-0123456789';
const scratch = mkdtempSync(join(tmpdir(), 'observd-read-pool-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A source `cam` with `n` observations captured at 1000, 2000, …; returns their ids in capture order. */
async function seed(d: TestDaemon, n: number): Promise<string[]> {
  await createSource(d, sourceBody('cam', TOKEN));
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push((await upload(d, 'cam', TOKEN, makePng(1, 1, i), `k${i}`, 'image/png', { captured_at_ms: (i + 1) * 1000 })).observation_id);
  }
  return ids;
}

const page = async (d: TestDaemon, query: string) => {
  const res = await d.req(`/v1/observations?${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
};

describe('listing pages from the read pool', () => {
  it('are read by a worker on its own connection: what the main connection has not committed is not listed', async () => {
    const d = await startDaemon();
    try {
      const ids = await seed(d, 3);
      const { db } = d.daemon.services;
      // Read-after-write: an upload answered 2xx is listed at once, by the worker.
      expect((await page(d, 'source_id=cam&page=true')).items.map((o: { observation_id: string }) => o.observation_id)).toEqual(ids);
      expect(readPoolOf(db)!.stats().worker_reads).toBeGreaterThan(0);
      // And /metrics says where listings were read.
      const metrics = await (await d.req('/metrics')).text();
      const worker = /^observd_listing_reads_total\{where="worker"\} (\d+)$/m.exec(metrics);
      expect(Number(worker?.[1])).toBe(readPoolOf(db)!.stats().worker_reads);
      db.exec('BEGIN IMMEDIATE');
      try {
        db.prepare(`UPDATE observations SET file_name = 'uncommitted.png' WHERE observation_id = ?`).run(ids[0]);
        const before = readPoolOf(db)!.stats();
        const p = await page(d, 'source_id=cam&limit=2&page=true');
        // On the main connection the page would show its own uncommitted change.
        expect(p.items[0].file_name).not.toBe('uncommitted.png');
        expect(p.pagination).toMatchObject({ total_count: 3, has_more: true });
        const streamed = await page(d, 'source_id=cam');
        expect(streamed.map((o: { file_name: string }) => o.file_name)).not.toContain('uncommitted.png');
        // A count of rows (not a source's counter) is a worker's read too.
        const counted = await page(d, 'source_id=cam&include_purged=true&page=true');
        expect(counted.items.map((o: { file_name: string }) => o.file_name)).not.toContain('uncommitted.png');
        expect(counted.pagination.total_count).toBe(3);
        const after = readPoolOf(db)!.stats();
        // The page of each list, and the count of the last (a source's counter is read on the main connection).
        expect(after.worker_reads - before.worker_reads).toBe(4);
        expect(after.main_reads).toBe(before.main_reads);
      } finally {
        db.exec('ROLLBACK');
      }
      // Errors cross the thread unchanged.
      await expectProblem(await d.req('/v1/observations?cursor=garbage!!'), 400, 'bad_request');
      const next = (await page(d, 'source_id=cam&limit=1&page=true')).pagination.next_cursor;
      await expectProblem(await d.req(`/v1/observations?order=desc&cursor=${next}`), 400, 'bad_request');
    } finally {
      await d.close();
    }
  });

  it('read an encrypted store with its key', async () => {
    const dir = join(scratch, 'enc');
    const key = join(scratch, 'enc.key');
    writeFileSync(key, randomBytes(32));
    const d = await startDaemon({ data_dir: dir, encryption: { key_file: key } }, { dataDir: dir });
    try {
      const ids = await seed(d, 3);
      const p = await page(d, 'source_id=cam&order=desc&limit=2&page=true');
      expect(p.items.map((o: { observation_id: string }) => o.observation_id)).toEqual([ids[2], ids[1]]);
      const rest = await page(d, `source_id=cam&order=desc&limit=2&cursor=${p.pagination.next_cursor}`);
      expect(rest.items.map((o: { observation_id: string }) => o.observation_id)).toEqual([ids[0]]);
      expect(readPoolOf(d.daemon.services.db)!.stats()).toMatchObject({ main_reads: 0 });
      expect(readPoolOf(d.daemon.services.db)!.stats().worker_reads).toBeGreaterThan(0);
      expect(d.logs.join('')).not.toMatch(/read workers unavailable/);
    } finally {
      await d.close();
    }
  });

  it('with server.read_workers = 0 stay on the main connection', async () => {
    const d = await startDaemon({ server: { read_workers: 0 } });
    try {
      await seed(d, 2);
      expect((await page(d, 'source_id=cam&page=true')).items).toHaveLength(2);
      expect(readPoolOf(d.daemon.services.db)!.stats()).toMatchObject({ worker_reads: 0, workers: 0 });
      expect(readPoolOf(d.daemon.services.db)!.stats().main_reads).toBeGreaterThan(0);
    } finally {
      await d.close();
    }
  });

  it('are read by one worker per core but one (1 to 4) unless server.read_workers says how many', () => {
    expect([1, 2, 3, 8, 64].map((cores) => readWorkers('auto', cores))).toEqual([1, 1, 2, 4, 4]);
    expect(readWorkers(0, 8)).toBe(0);
    expect(readWorkers(3, 2)).toBe(3);
  });

  it('fall back to the main connection when no worker can open the store', async () => {
    // A connection not opened by openDb: the pool cannot know which file and key to open.
    const db = new Database(join(scratch, 'plain.db'));
    try {
      migrate(db);
      const errors: unknown[] = [];
      const pool = new ReadPool(db, 2, (e) => errors.push(e));
      const job = {
        module: new URL('../src/observations/repo.ts', import.meta.url).href,
        name: 'countObservations',
        run: countObservations,
      };
      expect(await pool.run(job, {})).toBe(0);
      expect(await pool.run(job, { source_id: 'none' })).toBe(0);
      expect(errors).toHaveLength(1);
      expect(pool.stats()).toEqual({ worker_reads: 0, main_reads: 2, workers: 0 });
      await pool.close();
    } finally {
      db.close();
    }
  });
});
