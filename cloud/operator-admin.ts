import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Refusal } from '../protocol/refusal.js';
import { OperatorAccounts } from './portal/operator-accounts.js';
import { openSqliteStore } from './store/sqlite/sqlite-store.js';

/**
 * The composition root of `posagent-cloud user …`: the operator accounts of a cloud's data dir,
 * changed beside a running cloud (the store is shared; it sees the change on the next request).
 */
export function openOperatorAdmin(dataDir: string): { accounts: OperatorAccounts; close(): void } {
  const file = join(dataDir, 'cloud.db');
  if (!existsSync(file))
    throw new Refusal(
      'not_found',
      `no cloud store at ${file}: give the --data-dir of a cloud that has been started once (posagent-cloud serve)`,
    );
  const store = openSqliteStore(file);
  const accounts = new OperatorAccounts({
    operators: store.operators,
    sessions: store.portalSessions,
    failures: store.enrollmentLimits,
    now: () => Date.now(),
  });
  return { accounts, close: async () => await store.close() };
}
