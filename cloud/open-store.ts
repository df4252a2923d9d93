import { join } from 'node:path';
import { openPostgresStore } from './store/postgres/postgres-store.js';
import { openSqliteStore } from './store/sqlite/sqlite-store.js';
import type { CloudStore } from './store/store-types.js';

/**
 * The cloud's store: PostgreSQL when a database URL is given (several gateways share it), else the
 * embedded SQLite file in the data dir. Either way the data dir keeps the secrets (CA key, admin
 * token, ticket keys, release signing keys): they are never written to the database.
 */
export async function openCloudStore(o: {
  dataDir: string;
  database?: string | undefined;
}): Promise<CloudStore> {
  if (o.database) return openPostgresStore(o.database);
  return openSqliteStore(join(o.dataDir, 'cloud.db'));
}

/** What `--database` accepts: a PostgreSQL URL. */
export function isDatabaseUrl(url: string): boolean {
  return /^postgres(ql)?:\/\/[^\s]+$/.test(url);
}
