import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TempPostgres } from '../../harness/postgres.js';

/** Issue 22 groundwork: the tests' PostgreSQL is a real server in a temp cluster. */
describe('a temp PostgreSQL cluster', () => {
  let db: TempPostgres;
  beforeAll(async () => {
    db = await startPostgres();
  }, 60_000);
  afterAll(() => db?.stop());

  it('answers queries, survives a SIGKILL and a restart with its data, and is removed at stop', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const { rows } = await c.query<{ v: string }>('SELECT version() AS v');
    expect(rows[0]!.v).toMatch(/^PostgreSQL \d+/);
    await c.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)');
    await c.end();
    await db.kill();
    await db.restart();
    const again = new pg.Client({ connectionString: db.url });
    await again.connect();
    expect((await again.query('SELECT id FROM t')).rows).toEqual([{ id: 1 }]);
    await again.end();
    const dir = db.dir;
    await db.stop();
    expect(existsSync(dir)).toBe(false);
  });
});
