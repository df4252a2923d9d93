import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  type Migration,
  migrate,
  oldestReaderAfter,
  readSchemaInfo,
  SchemaTooNewError,
} from '../../protocol/sqlite-migrations.js';
import { tempDir } from '../support/processes.js';

const BASE: Migration[] = ['CREATE TABLE a (x INTEGER)', 'CREATE TABLE b (y TEXT)'];
const ADDITIVE: Migration[] = [...BASE, 'ALTER TABLE a ADD COLUMN z TEXT'];
const BREAKING: Migration[] = [...ADDITIVE, { sql: 'ALTER TABLE b RENAME COLUMN y TO y2', oldestReader: 4 }];
const open = () => new Database(join(tempDir('migrations'), 'x.db'));
const tables = (db: Database.Database) =>
  (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((r) => r.name);

/** Issue 24: a store migrated by a newer release, opened by an older one (a rollback). */
describe('schema migrations across releases', () => {
  it('each step records its version and the oldest schema that may open the store', () => {
    const db = open();
    expect(migrate(db, ADDITIVE)).toMatchObject({ from: 0, version: 3, oldestReader: 0, openedNewer: false });
    expect(readSchemaInfo(db)).toEqual({ version: 3, oldestReader: 0 });
    expect(migrate(db, BREAKING)).toMatchObject({ from: 3, version: 4, oldestReader: 4 });
    expect(readSchemaInfo(db)).toEqual({ version: 4, oldestReader: 4 });
    expect(oldestReaderAfter(BREAKING, 3)).toBe(0);
    expect(oldestReaderAfter(BREAKING, 4)).toBe(4);
  });

  it('an older release opens a newer store whose new steps are additive, and changes nothing', () => {
    const db = open();
    migrate(db, ADDITIVE);
    const before = tables(db);
    expect(migrate(db, BASE)).toMatchObject({ version: 3, known: 2, oldestReader: 0, openedNewer: true });
    expect(readSchemaInfo(db)).toEqual({ version: 3, oldestReader: 0 });
    expect(tables(db)).toEqual(before);
  });

  it('an older release refuses a store a step it cannot live with changed, naming the versions, and touches nothing', () => {
    const db = open();
    migrate(db, BREAKING);
    db.prepare('INSERT INTO b (y2) VALUES (?)').run('kept');
    let err: unknown;
    try {
      migrate(db, ADDITIVE);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SchemaTooNewError);
    expect((err as Error).message).toBe(
      'database schema version 4 is newer than this software knows (3) and can be opened only by software of schema 4 or later; refusing to touch it',
    );
    expect(readSchemaInfo(db)).toEqual({ version: 4, oldestReader: 4 });
    expect(db.prepare('SELECT y2 FROM b').all()).toEqual([{ y2: 'kept' }]);
  });

  it('a store from before the record: only its own schema reads it, and the next open writes the record', () => {
    const db = open();
    db.exec('CREATE TABLE a (x INTEGER); CREATE TABLE b (y TEXT); PRAGMA user_version = 2');
    expect(readSchemaInfo(db)).toEqual({ version: 2, oldestReader: 2 });
    expect(() => migrate(db, BASE.slice(0, 1))).toThrow(SchemaTooNewError);
    migrate(db, BASE);
    expect(readSchemaInfo(db)).toEqual({ version: 2, oldestReader: 0 });
  });
});
