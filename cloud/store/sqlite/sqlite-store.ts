import Database from 'better-sqlite3';
import { migrate } from '../../../protocol/sqlite-migrations.js';
import type {
  ActionStore,
  AttestationStore,
  AuditStore,
  CloudStore,
  ConfigStore,
  DeploymentStore,
  DiagnosticsStore,
  EnrollmentLimitStore,
  EnrollmentStore,
  GatewayStore,
  Immediate,
  LinkCallStore,
  LocationStore,
  LogBundleStore,
  OperatorStore,
  OrganizationStore,
  PortalSessionStore,
  ReleaseStore,
  TerminalStore,
  TransactionStore,
  WebhookStore,
} from '../store-types.js';
import { AsyncLock, TransactionScopes } from '../transaction-scope.js';
import { SqliteActions } from './action-tables.js';
import { SqliteDeployments, SqliteLogBundles } from './deployment-tables.js';
import { SqliteAttestation, SqliteEnrollment, SqliteEnrollmentLimits } from './enrollment-tables.js';
import {
  SqliteConfigs,
  SqliteDiagnostics,
  SqliteLocations,
  SqliteOrganizations,
  SqliteTerminals,
} from './fleet-tables.js';
import { MIGRATIONS } from './migrations.js';
import { SqliteAudit, SqliteOperators, SqlitePortalSessions } from './portal-tables.js';
import { LocalDoorbell, SqliteGateways, SqliteLinkCalls } from './presence-tables.js';
import { SqliteReleases } from './release-tables.js';
import { SqliteTransactions } from './transaction-table.js';
import { SqliteWebhooks } from './webhook-table.js';

/**
 * The embedded store: one SQLite file (`cloud.db`, WAL), migrated when opened. The tables answer
 * at once; this wraps each so the interfaces' promises hold, and so that a transaction that awaits
 * (one connection: BEGIN … COMMIT spans the await) has no other caller's statements land inside
 * it: one lock per store, taken by a transaction for its whole length and waited for by a call
 * from outside it (a call from inside runs at once).
 */
export function openSqliteStore(file: string): CloudStore {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, MIGRATIONS);
  const lock = new AsyncLock();
  const scopes = new TransactionScopes<null>();

  /** Runs a table's call now when nothing else holds the connection, else after the transaction holding it. */
  const call = <T>(f: () => T): Promise<T> => {
    if (scopes.current() || !lock.busy) {
      try {
        return Promise.resolve(f());
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return lock.run(async () => f());
  };
  const wrap = <S extends object>(table: Immediate<S>): S =>
    new Proxy(table as object, {
      get(target, key, receiver) {
        const v = Reflect.get(target, key, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => call(() => (v as (...a: unknown[]) => unknown).apply(target, args));
      },
    }) as S;

  const transaction = async <T>(fn: () => Promise<T>): Promise<T> => {
    const inside = scopes.current();
    if (inside) {
      // Nested: a savepoint, so a caught failure inside undoes only its own writes.
      const name = `sp${++inside.depth}`;
      db.exec(`SAVEPOINT ${name}`);
      try {
        const out = await fn();
        db.exec(`RELEASE ${name}`);
        return out;
      } catch (err) {
        db.exec(`ROLLBACK TO ${name}`);
        db.exec(`RELEASE ${name}`);
        throw err;
      } finally {
        inside.depth--;
      }
    }
    return lock.run(() =>
      scopes.run({ conn: null, open: true, depth: 0 }, async () => {
        db.exec('BEGIN IMMEDIATE');
        try {
          const out = await fn();
          db.exec('COMMIT');
          return out;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      }),
    );
  };

  return {
    organizations: wrap<OrganizationStore>(new SqliteOrganizations(db)),
    locations: wrap<LocationStore>(new SqliteLocations(db)),
    terminals: wrap<TerminalStore>(new SqliteTerminals(db)),
    configs: wrap<ConfigStore>(new SqliteConfigs(db)),
    transactions: wrap<TransactionStore>(new SqliteTransactions(db)),
    enrollment: wrap<EnrollmentStore>(new SqliteEnrollment(db)),
    attestation: wrap<AttestationStore>(new SqliteAttestation(db)),
    enrollmentLimits: wrap<EnrollmentLimitStore>(new SqliteEnrollmentLimits(db)),
    actions: wrap<ActionStore>(new SqliteActions(db)),
    releases: wrap<ReleaseStore>(new SqliteReleases(db)),
    deployments: wrap<DeploymentStore>(new SqliteDeployments(db)),
    logBundles: wrap<LogBundleStore>(new SqliteLogBundles(db)),
    webhooks: wrap<WebhookStore>(new SqliteWebhooks(db)),
    diagnostics: wrap<DiagnosticsStore>(new SqliteDiagnostics(db)),
    operators: wrap<OperatorStore>(new SqliteOperators(db)),
    portalSessions: wrap<PortalSessionStore>(new SqlitePortalSessions(db)),
    audit: wrap<AuditStore>(new SqliteAudit(db)),
    gateways: wrap<GatewayStore>(new SqliteGateways(db)),
    linkCalls: wrap<LinkCallStore>(new SqliteLinkCalls(db)),
    doorbell: new LocalDoorbell(),
    transaction,
    close: () =>
      lock.run(async () => {
        db.close();
      }),
  };
}
