import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatusAnnouncer } from '../../../cloud/fleet/status-announcer.js';
import { MIGRATION_LOCK, PG_MIGRATIONS } from '../../../cloud/store/postgres/migrations.js';
import { openPostgresStore } from '../../../cloud/store/postgres/postgres-store.js';
import type { CloudStore } from '../../../cloud/store/store-types.js';
import { startPostgres, type TempPostgres } from '../../../harness/postgres.js';
import { waitFor } from '../../../harness/wait-for.js';
import { cloudStoreContract } from './cloud-store-contract.js';
import { shopRow, terminalRow } from './store-rows.js';

let db: TempPostgres;
let made = 0;
const opened: CloudStore[] = [];
beforeAll(async () => {
  db = await startPostgres();
}, 60_000);
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => undefined);
  await db?.stop();
});
const fresh = async (): Promise<CloudStore> => {
  const s = await openPostgresStore(await db.createDatabase(`contract_${++made}`), { poolSize: 4 });
  opened.push(s);
  return s;
};

cloudStoreContract('PostgreSQL', fresh);

describe('the PostgreSQL store', () => {
  it('migrations: applied once under the advisory lock when several gateways open one database at the same time', async () => {
    const url = await db.createDatabase('migrate_race');
    const stores = await Promise.all([1, 2, 3].map(() => openPostgresStore(url, { poolSize: 2 })));
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ version: number }>(
      'SELECT version FROM schema_migrations ORDER BY version',
    );
    expect(rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((_, i) => i + 1));
    // The lock is given back: nobody holds it once they are open.
    const held = await c.query(
      "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted",
      [MIGRATION_LOCK],
    );
    expect(held.rowCount).toBe(0);
    expect((await c.query("SELECT slug FROM organizations WHERE id = 'org_default'")).rows).toEqual([
      { slug: 'default' },
    ]);
    await c.end();
    for (const s of stores) await s.close();
    // Opened again: nothing to apply, nothing changes.
    const again = await openPostgresStore(url, { poolSize: 1 });
    expect((await again.organizations.list({ after: null, limit: 10 })).map((o) => o.id)).toEqual([
      'org_default',
    ]);
    await again.close();
  });

  it('a transaction runs on one client: a concurrent caller outside it does not see its writes until it commits', async () => {
    const s = await fresh();
    await s.locations.insert({ ...shopRow('loc_1'), name: 'Shop' });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const inside = new Promise<void>((r) => {
      entered = r;
    });
    const tx = s.transaction(async () => {
      await s.locations.update('loc_1', { name: 'Renamed' });
      entered();
      await gate;
      return (await s.locations.get('loc_1'))!.name;
    });
    await inside;
    expect((await s.locations.get('loc_1'))!.name).toBe('Shop');
    release();
    expect(await tx).toBe('Renamed');
    expect((await s.locations.get('loc_1'))!.name).toBe('Renamed');
  });

  it('one leader for the fleet-wide sweeps: the advisory lock is held by one gateway until it stops, then another takes it', async () => {
    const url = await db.createDatabase('leader');
    const [a, b] = await Promise.all([
      openPostgresStore(url, { poolSize: 1 }),
      openPostgresStore(url, { poolSize: 1 }),
    ]);
    const first = await Promise.all([a.gateways.lead(), b.gateways.lead()]);
    expect(first.filter(Boolean)).toHaveLength(1);
    const [leader, other] = first[0] ? [a, b] : [b, a];
    expect(await leader.gateways.lead()).toBe(true);
    expect(await other.gateways.lead()).toBe(false);
    await leader.close();
    expect(await other.gateways.lead()).toBe(true);
    await other.close();
  });

  it('the doorbell: LISTEN/NOTIFY between two gateways; rung inside a transaction it goes out at commit, and never after a rollback', async () => {
    const url = await db.createDatabase('doorbell');
    const [a, b] = await Promise.all([
      openPostgresStore(url, { poolSize: 2 }),
      openPostgresStore(url, { poolSize: 2 }),
    ]);
    const heard: string[] = [];
    await b.doorbell.listen('gw_b', (m) => heard.push(m));
    await a.doorbell.ring('gw_c', 'not for b');
    await a.doorbell.ring('gw_b', 'work');
    await waitFor(() => heard.includes('work') || undefined, 'the ring heard');
    let committed = false;
    await a.transaction(async () => {
      await a.doorbell.ring('gw_b', 'after commit');
      // A ring from outside the transaction, sent after it, arrives first.
      await b.doorbell.ring('gw_b', 'marker');
      await waitFor(() => heard.includes('marker') || undefined, 'the marker');
      expect(heard).not.toContain('after commit');
      committed = true;
    });
    expect(committed).toBe(true);
    await waitFor(() => heard.includes('after commit') || undefined, 'the ring at commit');
    await a
      .transaction(async () => {
        await a.doorbell.ring('gw_b', 'rolled back');
        throw new Error('no');
      })
      .catch(() => undefined);
    await a.doorbell.ring('gw_b', 'last');
    await waitFor(() => heard.includes('last') || undefined, 'the last ring');
    expect(heard).toEqual(['work', 'marker', 'after commit', 'last']);
    await a.close();
    await b.close();
  });
});

describe('two gateways announcing one status change', () => {
  it('at the same moment: one wins, one event and one history row per change (the other sees it was announced)', async () => {
    const url = await db.createDatabase('announce_race');
    const [a, b] = await Promise.all([1, 2].map(() => openPostgresStore(url, { poolSize: 4 })));
    opened.push(a!, b!);
    await a!.locations.insert(shopRow('loc_1'));
    const ids = Array.from({ length: 20 }, (_, i) => `term_${i}`);
    for (const id of ids) await a!.terminals.insert(terminalRow(id));
    const emitted: string[] = [];
    const announcer = (store: CloudStore) =>
      new StatusAnnouncer({
        store,
        status: () => ({ status: 'online', reason: 'heartbeat', sinceMs: null }),
        now: () => 5000,
        emit: async (type, data) => {
          emitted.push(`${type} ${(data as { terminalId: string }).terminalId}`);
        },
        sweepMs: 60_000,
        lead: async () => true,
        log: { warn() {} },
      });
    const [onA, onB] = [announcer(a!), announcer(b!)];
    // Both read "not announced yet", both try to write it.
    await Promise.all(ids.flatMap((id) => [onA.check(id), onB.check(id)]));
    expect(emitted.sort()).toEqual(ids.map((id) => `terminal.online ${id}`).sort());
    for (const id of ids)
      expect((await a!.terminals.events(id, { beforeSeq: null, limit: 10 })).map((e) => e.status)).toEqual([
        'online',
      ]);
  });
});
