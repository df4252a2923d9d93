import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Refusal } from '../protocol/refusal.js';
import { openCloudStore } from './open-store.js';
import { OperatorAccounts } from './portal/operator-accounts.js';

/**
 * The composition root of `posagent-cloud user …`: the operator accounts of a cloud's store (its
 * data dir's SQLite, or its PostgreSQL with `--database`),
 * changed beside a running cloud (the store is shared; it sees the change on the next request).
 */
export async function openOperatorAdmin(
  dataDir: string,
  database?: string,
): Promise<{ accounts: OperatorAccounts; close(): Promise<void> }> {
  const file = join(dataDir, 'cloud.db');
  if (!database && !existsSync(file))
    throw new Refusal(
      'not_found',
      `no cloud store at ${file}: give the --data-dir of a cloud that has been started once (posagent-cloud serve)`,
    );
  const store = await openCloudStore({ dataDir, database });
  const accounts = new OperatorAccounts({
    operators: store.operators,
    sessions: store.portalSessions,
    failures: store.enrollmentLimits,
    now: () => Date.now(),
  });
  return { accounts, close: () => store.close() };
}
