import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3-multiple-ciphers';
import { describe, expect, it } from 'vitest';
import { dumpSchema, listMigrations, migrate } from '../src/db/migrate.js';

describe('schema.sql', () => {
  it('is exactly what migrating an empty database produces', () => {
    const migrated = new Database(':memory:');
    migrate(migrated);
    const fromFile = new Database(':memory:');
    fromFile.exec(readFileSync(new URL('../schema.sql', import.meta.url), 'utf8'));
    expect(dumpSchema(fromFile)).toBe(dumpSchema(migrated));
    expect(migrated.pragma('user_version', { simple: true })).toBe(listMigrations().length);
  });

  it('migrating twice applies nothing the second time', () => {
    const db = new Database(':memory:');
    expect(migrate(db).length).toBe(listMigrations().length);
    expect(migrate(db)).toEqual([]);
  });
});
