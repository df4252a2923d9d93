import type { TransactionRow, TransactionStore } from './transaction-store.js';

/**
 * Expiry and retention, pure over the store and a clock. Transactions not received by the cloud
 * within `maxAgeHours` become `expired` (kept, reported later, never dropped); finished ones
 * older than the retention are pruned in small batches so the daemon never stalls on a big delete.
 */
export const PRUNE_BATCH = 500;

export function maintainQueue(
  store: TransactionStore,
  nowMs: number,
  maxAgeHours: number,
  retentionDays: number,
  /** Told each transaction that just expired (the daemon publishes each as a `transaction` event). */
  onExpired: (row: TransactionRow) => void = () => {},
): { expired: number; pruned: number } {
  const now = new Date(nowMs).toISOString();
  const rows = store.expire(new Date(nowMs - maxAgeHours * 3_600_000).toISOString(), now);
  for (const row of rows) onExpired(row);
  const expired = rows.length;
  const cutoff = new Date(nowMs - retentionDays * 86_400_000).toISOString();
  let pruned = 0;
  for (let i = 0; i < 20; i++) {
    const n = store.prune(cutoff, PRUNE_BATCH);
    pruned += n;
    if (n < PRUNE_BATCH) break;
  }
  return { expired, pruned };
}
