import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AgentStore, openStoreReadOnly } from '../agent/agent-store.js';
import { EventBus } from '../agent/events/event-bus.js';
import { localApiRequest } from '../agent/local-api/local-api-client.js';
import { TransactionQueue } from '../agent/transactions/transaction-queue.js';
import { type AgentDirs, type Cloud, restartCloud, startAgent } from '../harness/local-fleet.js';
import { waitFor } from '../harness/wait-for.js';
import { DEFAULT_CONFIG } from '../protocol/config-schema.js';
import { median } from './statistics.js';

/** Durable enqueue and drain rates, each beside raw better-sqlite3 with the same pragmas, same run. */

/**
 * Ours and the reference in alternating rounds, so both see the same machine (disk and CPU load
 * on a shared host move from minute to minute); each is the median of its rounds.
 */
export function interleaved(
  rounds: number,
  ours: () => number,
  reference: () => number,
): { ours: number; reference: number } {
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rounds; i++) {
    a.push(ours());
    b.push(reference());
  }
  return { ours: median(a), reference: median(b) };
}
function tempDb(): string {
  return join(mkdtempSync(join(tmpdir(), 'posagent-bench-')), 'agent.db');
}

/** Raw better-sqlite3: one durable single-row commit per insert (WAL, synchronous=FULL). */
export function rawInsertRate(n: number, batch = 1): number {
  const db = new Database(tempDb());
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('cache_size = -2000');
  db.exec(`CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, amount INTEGER NOT NULL,
    currency TEXT NOT NULL, created_at TEXT NOT NULL, state TEXT NOT NULL)`);
  const insert = db.prepare(
    "INSERT INTO t (id, amount, currency, created_at, state) VALUES (?, ?, 'EUR', ?, 'stored')",
  );
  const many = db.transaction((k: number) => {
    for (let j = 0; j < k; j++) insert.run(randomUUID(), 100, new Date().toISOString());
  });
  const t0 = performance.now();
  for (let i = 0; i < n; i += batch) many(Math.min(batch, n - i));
  const rate = n / ((performance.now() - t0) / 1000);
  db.close();
  return rate;
}

function queueOn(file: string, online: boolean) {
  const store = new AgentStore(file);
  const queue = new TransactionQueue({
    store: store.transactions,
    events: new EventBus(),
    now: Date.now,
    online: () => online,
    offlineMode: () => ({
      ...DEFAULT_CONFIG.offlineMode,
      enabled: true,
      maxAmount: 1_000_000,
      maxQueue: 1_000_000,
    }),
    locked: () => false,
    dataPublicKey: () => null,
    onStored: () => {},
  });
  return { store, queue };
}

/** The queue module: validation, idempotency check, limits, one durable commit per transaction. */
export function queueModuleRate(n: number): number {
  const { store, queue } = queueOn(tempDb(), true);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) queue.submit({ id: randomUUID(), amount: 100 + (i % 50), currency: 'EUR' });
  const rate = n / ((performance.now() - t0) / 1000);
  store.close();
  return rate;
}

/** Through the daemon's local API (HTTP on the Unix socket), one request at a time, as a POS app would. */
export async function localApiRate(dirs: AgentDirs, n: number): Promise<number> {
  const socket = `${dirs.runtimeDir}/api.sock`;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = await localApiRequest(socket, 'POST', '/v1/transactions', {
      id: randomUUID(),
      amount: 100 + (i % 50),
      currency: 'EUR',
    });
    if (r.status !== 201) throw new Error(`enqueue answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
  return n / ((performance.now() - t0) / 1000);
}

/**
 * Drain after reconnect: a backlog of n offline transactions in the agent's store, the cloud
 * comes back, and we time from the link going online to the last one marked received.
 */
export async function drainRate(
  cloud: Cloud,
  dirs: AgentDirs,
  n: number,
): Promise<{ rate: number; cloud: Cloud }> {
  await cloud.stop();
  const { store, queue } = queueOn(join(dirs.stateDir, 'agent.db'), false);
  const fill = store.transactions;
  for (let i = 0; i < n; i++) queue.submit({ id: randomUUID(), amount: 100 + (i % 50), currency: 'EUR' });
  if (fill.summary().stored < n) throw new Error('backlog not built');
  store.close();
  const restarted = await restartCloud(cloud);
  const agent = startAgent(dirs, ['--log-level', 'info']);
  try {
    const onlineLine = await waitFor(
      () =>
        agent
          .output()
          .split('\n')
          .find((l) => l.includes('"msg":"link online"')),
      'online',
      30_000,
      2,
    );
    const onlineAt = (JSON.parse(onlineLine) as { time: number }).time;
    const reader = openStoreReadOnly(join(dirs.stateDir, 'agent.db'))!;
    await waitFor(() => reader.transactions!.summary().stored === 0, 'the backlog drained', 120_000, 2);
    const doneAt = Date.now();
    reader.close();
    return { rate: n / ((doneAt - onlineAt) / 1000), cloud: restarted };
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
}
