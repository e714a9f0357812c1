import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/schema.js';
import { openStore } from '../src/daemon.js';
import { insertObservation, listObservations, toObservationView, type ObservationRow } from '../src/observations/repo.js';
import { allRows } from '../src/pagination.js';
import { testClock } from './helpers/daemon.js';

describe('observation listings serialized by SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'observd-listjson-'));
  const store = openStore(parseConfig({ data_dir: dir, retention: { min_free_bytes: 0 } }), { now: testClock() });
  afterAll(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const { db } = store.deps;
  store.services.sources.upsert({ source_id: 'cam', kind: 'screen_snapshot', display_name: 'cam', upload_token: 'listing-json-token-01' });
  const sha = 'a'.repeat(64);
  db.prepare(`INSERT INTO assets VALUES (?, ?, 'image/png', 1, 0)`).run(`ast_${sha}`, sha);
  const base: ObservationRow = {
    observation_id: '',
    source_id: 'cam',
    kind: 'screen_snapshot',
    sensitivity: 'sensitive',
    retention_state: 'active',
    asset_id: `ast_${sha}`,
    canonical_text_asset_id: null,
    file_name: 'f.png',
    media_type: 'image/png',
    sha256: sha,
    byte_length: 1,
    captured_at_ms: 0,
    received_at_ms: 0,
    expires_at_ms: 8_640_000_000_000,
    purged_at_ms: null,
    blobs_held: 1,
    stream_id: null,
    seq_no: null,
    idempotency_key: '',
    request_fingerprint: 'f'.repeat(64),
    metadata: null,
    latitude: null,
    longitude: null,
    processing_status: null,
    origin_url: null,
  };
  // Odd values in every field kind: escapes, non-ASCII, reals SQLite would write differently, nested metadata.
  const odd: Array<Partial<ObservationRow>> = [
    {},
    { file_name: 'quote " backslash \\ tab \t é 😀 \u2028 \u007f.png', idempotency_key: 'ctl \u0001\u001f\n\r\b\f' },
    { latitude: 0.1 + 0.2, longitude: -179.99999999999997, seq_no: 0, stream_id: 'display-1' },
    { latitude: 5, longitude: -0, metadata: JSON.stringify({ a: [1, 2.5, 1e21, { b: null, '"k"': 'v\n' }], emoji: '😀' }) },
    { retention_state: 'purged', purged_at_ms: 123, blobs_held: 0, processing_status: 'pending', canonical_text_asset_id: `ast_${sha}` },
    { captured_at_ms: 8_640_000_000_000_000, seq_no: Number.MAX_SAFE_INTEGER, byte_length: 2 ** 40 },
    { origin_url: 'https://images.example/quote"%20é 😀 \u2028\\/a.png', processing_status: 'failed' },
  ];
  odd.forEach((o, i) => insertObservation(db, { ...base, observation_id: `obs_${i}`, idempotency_key: `k${i}`, captured_at_ms: i, ...o }));

  for (const q of [
    {},
    { source_id: 'cam' },
    { source_id: 'cam', include_purged: true, order: 'desc' as const },
    { processing_status: ['pending' as const, 'failed' as const], include_purged: true },
  ]) {
    it(`writes exactly what JSON.stringify of each view writes (${JSON.stringify(q)}), page by page`, async () => {
      const listing = listObservations(db, q);
      const views = [...allRows(listing, 2)];
      expect(views.length).toBeGreaterThan(0);
      const texts: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await listing.fetchJsonPage!(cursor, 2);
        texts.push(...page.items);
        if (page.next_cursor === null) break;
        cursor = page.next_cursor;
      }
      expect(texts).toEqual(views.map((v) => JSON.stringify(v)));
      // And every field of the stored row's view is there (a field added to the view must be added to the SQL).
      const row = db.prepare(`SELECT * FROM observations WHERE observation_id = ?`).get(views[0].observation_id) as ObservationRow;
      expect(Object.keys(JSON.parse(texts[0]))).toEqual(Object.keys(toObservationView(row)));
    });
  }
});
