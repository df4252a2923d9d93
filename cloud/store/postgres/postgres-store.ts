import pg from 'pg';
import type { CloudStore } from '../store-types.js';
import { TransactionScopes } from '../transaction-scope.js';
import { PgActions } from './action-tables.js';
import { PgDeployments, PgLogBundles } from './deployment-tables.js';
import { PgAttestation, PgEnrollment, PgEnrollmentLimits } from './enrollment-tables.js';
import { PgConfigs, PgDiagnostics, PgLocations, PgOrganizations, PgTerminals } from './fleet-tables.js';
import { migratePostgres, PG_MIGRATIONS } from './migrations.js';
import { PgExec } from './pg-statements.js';
import { PgAudit, PgOperators, PgPortalSessions } from './portal-tables.js';
import { PgDoorbell, PgGateways, PgLinkCalls } from './presence-tables.js';
import { PgReleases } from './release-tables.js';
import { PgTransactions } from './transaction-table.js';
import { PgWebhooks } from './webhook-table.js';

const INT8 = 20;
/** BIGINT (times in ms, counts, orders) reads as a JS number, as in SQLite. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PostgresStoreOptions {
  /** Connections in the pool (per gateway process). */
  poolSize?: number;
}

/**
 * The production store: PostgreSQL through a `pg` Pool, migrated when opened (once, under an
 * advisory lock, however many gateways start together). A transaction checks out one client for
 * its whole length; every store call made inside it (found through AsyncLocalStorage) runs on
 * that client, every other call on the pool. Nested transactions are savepoints.
 */
export async function openPostgresStore(
  url: string,
  o: PostgresStoreOptions = {},
): Promise<CloudStore & { pool: pg.Pool }> {
  const pool = new pg.Pool({ connectionString: url, max: o.poolSize ?? 10, types });
  // An idle client's error (the server restarted) must not crash the process: the pool drops it.
  pool.on('error', () => {});
  const first = await pool.connect();
  try {
    await migratePostgres(first, PG_MIGRATIONS);
  } finally {
    first.release();
  }
  const scopes = new TransactionScopes<pg.PoolClient>();
  const q = new PgExec(pool, scopes);
  const doorbell = new PgDoorbell(pool, url, scopes);
  const gateways = new PgGateways(q, url);

  const transaction = async <T>(fn: () => Promise<T>): Promise<T> => {
    const inside = scopes.current();
    if (inside) {
      const name = `sp${++inside.depth}`;
      await inside.conn.query(`SAVEPOINT ${name}`);
      try {
        const out = await fn();
        await inside.conn.query(`RELEASE SAVEPOINT ${name}`);
        return out;
      } catch (err) {
        await inside.conn.query(`ROLLBACK TO SAVEPOINT ${name}`);
        throw err;
      } finally {
        inside.depth--;
      }
    }
    const client = await pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const out = await scopes.run({ conn: client, open: true, depth: 0 }, fn);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    } finally {
      client.release(broken);
    }
  };

  return {
    organizations: new PgOrganizations(q),
    locations: new PgLocations(q),
    terminals: new PgTerminals(q),
    configs: new PgConfigs(q),
    transactions: new PgTransactions(q),
    enrollment: new PgEnrollment(q),
    attestation: new PgAttestation(q),
    enrollmentLimits: new PgEnrollmentLimits(q),
    actions: new PgActions(q),
    releases: new PgReleases(q),
    deployments: new PgDeployments(q),
    logBundles: new PgLogBundles(q),
    webhooks: new PgWebhooks(q),
    diagnostics: new PgDiagnostics(q),
    operators: new PgOperators(q),
    portalSessions: new PgPortalSessions(q),
    audit: new PgAudit(q),
    gateways,
    linkCalls: new PgLinkCalls(q),
    doorbell,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    transaction,
    close: async () => {
      await doorbell.close();
      await gateways.close();
      await pool.end();
    },
    pool,
  };
}
