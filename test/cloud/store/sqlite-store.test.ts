import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../../cloud/store/sqlite/migrations.js';
import { openSqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import { tempDir } from '../../support/processes.js';
import { cloudStoreContract } from './cloud-store-contract.js';

cloudStoreContract('SQLite', () => openSqliteStore(join(tempDir('cloud-store'), 'cloud.db')));

describe('the SQLite store', () => {
  it('one migrations file: a new database is at its last step; opening again changes nothing', () => {
    const file = join(tempDir('cloud-store'), 'cloud.db');
    openSqliteStore(file).close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    openSqliteStore(file).close();
    const again = new Database(file, { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    again.close();
  });
});
