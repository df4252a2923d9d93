import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../../cloud/store/sqlite/migrations.js';
import { openSqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import { migrate } from '../../../protocol/sqlite-migrations.js';
import { tempDir } from '../../support/processes.js';
import { cloudStoreContract } from './cloud-store-contract.js';

cloudStoreContract('SQLite', () => openSqliteStore(join(tempDir('cloud-store'), 'cloud.db')));

describe('the SQLite store', () => {
  it('issue 20: a database from before organizations opens with every store in the default organization', async () => {
    const file = join(tempDir('cloud-store'), 'cloud.db');
    const old = new Database(file);
    migrate(old, MIGRATIONS.slice(0, 9));
    old.prepare("INSERT INTO locations (id, name, created_at) VALUES ('loc_old', 'Old Shop', 5)").run();
    old.prepare("INSERT INTO locations (id, name, created_at) VALUES ('loc_old2', 'Old Shop 2', 6)").run();
    old
      .prepare(
        `INSERT INTO terminals (id, name, location_id, created_at, cert_fingerprint, cert_serial, cert_not_after)
         VALUES ('term_old', 'Till', 'loc_old', 7, 'fp', 'sn', 9)`,
      )
      .run();
    old.close();
    const s = openSqliteStore(file);
    expect(await s.organizations.get('org_default')).toMatchObject({
      slug: 'default',
      name: 'Default organization',
    });
    expect(await s.locations.get('loc_old')).toEqual({
      id: 'loc_old',
      name: 'Old Shop',
      createdAt: 5,
      organizationId: 'org_default',
      active: true,
      timezone: null,
      address: null,
    });
    expect((await s.locations.list('org_default', { after: null, limit: 10 })).map((l) => l.id)).toEqual([
      'loc_old',
      'loc_old2',
    ]);
    // A store made after the migration comes after them.
    await s.locations.insert({ ...(await s.locations.get('loc_old'))!, id: 'loc_new', name: 'New' });
    expect((await s.locations.list(null, { after: 'loc_old2', limit: 10 })).map((l) => l.id)).toEqual([
      'loc_new',
    ]);
    expect(await s.terminals.get('term_old')).toMatchObject({
      problem: null,
      replaces: null,
      announcedAt: null,
    });
    await s.close();
  });

  it('one migrations file: a new database is at its last step; opening again changes nothing', async () => {
    const file = join(tempDir('cloud-store'), 'cloud.db');
    await openSqliteStore(file).close();
    const db = new Database(file, { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
    await openSqliteStore(file).close();
    const again = new Database(file, { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    again.close();
  });
});
