import type { TransactionState } from '../../protocol/transactions.js';
import type { TransactionRow } from './transaction-store.js';

/** A transaction as the local API, the CLI and the `transaction` event show it (never its card data). */
export interface TransactionRecord {
  id: string;
  amount: number;
  currency: string;
  state: TransactionState;
  seq: number;
  createdAt: string;
  updatedAt: string;
  offline: boolean;
  reason?: string;
  card?: { sealed: true };
}

export function toRecord(r: TransactionRow): TransactionRecord {
  return {
    id: r.id,
    amount: r.amount,
    currency: r.currency,
    state: r.state,
    seq: r.seq,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    offline: r.offline === 1,
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.sealedCard ? { card: { sealed: true as const } } : {}),
  };
}
