import { Refusal } from '../../protocol/refusal.js';
import { TRANSACTION_STATES, type TransactionState } from '../../protocol/transactions.js';
import { type TransactionRecord, toRecord } from './transaction-record.js';
import type { TransactionStore } from './transaction-store.js';

/** `GET /v1/transactions?state=&limit=` and `posagent queue list`: newest first, with the queue summary. */
export function listTransactions(
  store: Pick<TransactionStore, 'list' | 'summary'>,
  query: URLSearchParams,
): { data: TransactionRecord[]; queue: { stored: number; oldestAt: string | null } } {
  const state = query.get('state');
  if (state !== null && !TRANSACTION_STATES.includes(state as TransactionState)) {
    throw new Refusal('invalid_request', `state must be one of ${TRANSACTION_STATES.join(', ')}`);
  }
  const limit = Number(query.get('limit') ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new Refusal('invalid_request', 'limit must be 1..1000');
  return { data: store.list(state as TransactionState | null, limit).map(toRecord), queue: store.summary() };
}
