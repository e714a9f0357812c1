import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Db } from './open.js';

/** Where the numbered `NNN_name.sql` migrations live (the same folder from src/ and dist/). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../src/db/migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Lists the migrations in version order; throws on a misnamed or duplicate file. */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith('.sql')) continue;
    const m = /^(\d{3})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) throw new Error(`misnamed migration file: ${file}`);
    out.push({ version: Number(m[1]), name: m[2], sql: readFileSync(dir + file, 'utf8') });
  }
  out.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration versions must be 1..n without gaps, found ${m.version}`);
  });
  return out;
}

/** Applies every migration newer than the database's `user_version`, each in its own transaction; returns those applied. */
export function migrate(db: Db, dir = MIGRATIONS_DIR): Migration[] {
  const current = db.pragma('user_version', { simple: true }) as number;
  const pending = listMigrations(dir).filter((m) => m.version > current);
  for (const m of pending) {
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    })();
  }
  return pending;
}

/**
 * The schema as SQLite reports it: tables, then indexes, then triggers, each in name order
 * (whitespace collapsed unless `pretty`). Shadow tables of virtual tables (FTS5) are left out:
 * creating the virtual table creates them.
 */
export function dumpSchema(db: Db, pretty = false): string {
  const shadow = new Set(
    (db.prepare(`PRAGMA table_list`).all() as Array<{ name: string; type: string }>).filter((t) => t.type === 'shadow').map((t) => t.name),
  );
  const rows = (
    db
      .prepare(
        `SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
         ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, name`,
      )
      .all() as Array<{ name: string; sql: string }>
  ).filter((r) => !shadow.has(r.name));
  if (pretty) return `${rows.map((r) => `${r.sql.trim()};`).join('\n\n')}\n`;
  return `${rows.map((r) => `${r.sql.replace(/\s+/g, ' ').trim()};`).join('\n')}\n`;
}
