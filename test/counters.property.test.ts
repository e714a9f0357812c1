import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/schema.js';
import { openStore } from '../src/daemon.js';
import { sweepOnce } from '../src/retention/sweep.js';
import { testClock } from './helpers/daemon.js';
import { makePng } from './helpers/media.js';

const op = fc.oneof(
  fc.record({ t: fc.constant('upload' as const), source: fc.constantFrom('a', 'b', 'c'), content: fc.integer({ min: 0, max: 5 }) }),
  fc.record({ t: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ t: fc.constant('sweep' as const), advanceMs: fc.integer({ min: 0, max: 40_000 }) }),
  fc.record({ t: fc.constant('deleteSource' as const), source: fc.constantFrom('a', 'b', 'c') }),
);

describe('source counters', () => {
  it('equal a fresh COUNT/SUM, and blobs on disk equal what is held, after any sequence of uploads, deletes and sweeps', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = mkdtempSync(join(tmpdir(), 'observd-prop-'));
        const clock = testClock();
        const store = openStore(parseConfig({ data_dir: dir, retention: { min_free_bytes: 0, sweep_batch_size: 3 } }), { now: clock });
        const { services, deps } = store;
        const ensure = (id: string) => {
          try {
            services.sources.require(id);
          } catch {
            services.sources.upsert({
              source_id: id,
              kind: 'screen_snapshot',
              display_name: id,
              upload_token: 'property-test-token-01',
              retention_seconds: id === 'a' ? 30 : 60,
              max_active_observations: id === 'c' ? 3 : 512,
              max_active_bytes: id === 'b' ? 400 : 1 << 30,
            });
          }
        };
        let n = 0;
        let stored = 0;
        try {
          for (const o of ops) {
            if (o.t === 'upload') {
              ensure(o.source);
              const src = services.sources.require(o.source);
              const staged = await services.blobs.stage(makePng(2, 2, o.content));
              // Every upload here is one the daemon must take (quotas evict, none rejects): a failure fails the property.
              const created = await services.observations.ingest(
                src,
                { file_name: 'f.png', media_type: 'image/png', idempotency_key: `k${n++}` },
                staged,
              );
              expect(created).toMatchObject({ replayed: false, observation: { source_id: o.source } });
              stored++;
              clock.advance(1000);
            } else if (o.t === 'delete') {
              const ids = deps.db.prepare(`SELECT observation_id FROM observations ORDER BY observation_id`).pluck().all() as string[];
              if (ids.length) services.observations.delete(ids[o.pick % ids.length]);
            } else if (o.t === 'deleteSource') {
              try {
                services.sources.delete(o.source);
              } catch {
                /* not created yet */
              }
            } else {
              clock.advance(o.advanceMs);
              await sweepOnce(deps);
            }
          }
          const counters = deps.db
            .prepare(
              `SELECT s.source_id, s.active_observation_count AS c, s.active_byte_length AS b,
                 (SELECT COUNT(*) FROM observations o WHERE o.source_id = s.source_id AND o.retention_state = 'active') AS fc,
                 (SELECT COALESCE(SUM(byte_length), 0) FROM observations o WHERE o.source_id = s.source_id AND o.retention_state = 'active') AS fb
               FROM sources s`,
            )
            .all() as Array<{ c: number; b: number; fc: number; fb: number }>;
          expect(stored).toBe(ops.filter((o) => o.t === 'upload').length);
          for (const r of counters) expect([r.c, r.b]).toEqual([r.fc, r.fb]);
          const held = new Set(
            deps.db
              .prepare(
                `SELECT sha256 FROM observations WHERE blobs_held = 1
                 UNION SELECT a.sha256 FROM assets a JOIN observations o ON o.canonical_text_asset_id = a.asset_id AND o.blobs_held = 1`,
              )
              .pluck()
              .all() as string[],
          );
          const assets = new Set(deps.db.prepare(`SELECT sha256 FROM assets`).pluck().all() as string[]);
          expect([...assets].sort()).toEqual([...held].sort());
          expect(services.blobs.listAll().sort()).toEqual([...assets].sort());
        } finally {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });
});
