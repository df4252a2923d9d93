import Database from 'better-sqlite3';
import { migrate } from '../../../protocol/sqlite-migrations.js';
import type { CloudStore } from '../store-types.js';
import { SqliteActions, SqliteReleases } from './action-tables.js';
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
import { SqliteTransactions } from './transaction-table.js';
import { SqliteWebhooks } from './webhook-table.js';

/** The embedded store: one SQLite file (`cloud.db`, WAL), migrated when opened. */
export function openSqliteStore(file: string): CloudStore {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, MIGRATIONS);
  return {
    organizations: new SqliteOrganizations(db),
    locations: new SqliteLocations(db),
    terminals: new SqliteTerminals(db),
    configs: new SqliteConfigs(db),
    transactions: new SqliteTransactions(db),
    enrollment: new SqliteEnrollment(db),
    attestation: new SqliteAttestation(db),
    enrollmentLimits: new SqliteEnrollmentLimits(db),
    actions: new SqliteActions(db),
    releases: new SqliteReleases(db),
    webhooks: new SqliteWebhooks(db),
    diagnostics: new SqliteDiagnostics(db),
    operators: new SqliteOperators(db),
    portalSessions: new SqlitePortalSessions(db),
    audit: new SqliteAudit(db),
    // better-sqlite3 nests a transaction inside another as a savepoint.
    transaction: <T>(fn: () => T): T => db.transaction(fn)(),
    close: () => db.close(),
  };
}
