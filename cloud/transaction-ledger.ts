import { openCard } from '../protocol/card-envelope.js';
import type {
  TransactionResult,
  TransactionsForward,
  TransactionsForwardResult,
} from '../protocol/messages.js';
import { MAX_FORWARD_BATCH } from '../protocol/transactions.js';
import type { CloudStore, CloudTransactionRow } from './cloud-store.js';
import { ApiError } from './http-json.js';

/**
 * The reference cloud's side of the transaction queue: stores what terminals forward, once per
 * (terminal, id), opens sealed card data and keeps only its last four digits, and decides.
 *
 * Decision rule of the reference cloud (documented for POS app developers): an amount whose last
 * two digits are 51 (e.g. 10.51) is declined ("insufficient funds"); anything else is authorised.
 * A transaction that arrives already expired on the terminal is recorded as expired, not decided.
 */
export const DECLINE_SUFFIX = 51;

export interface LedgerOptions {
  store: CloudStore;
  dataPrivateKey: string;
  now(): number;
  log: { warn(obj: object, msg: string): void };
}

export interface TransactionView {
  id: string;
  object: 'transaction';
  terminalId: string;
  seq: number;
  amount: number;
  currency: string;
  createdAt: string;
  receivedAt: string;
  offline: boolean;
  status: CloudTransactionRow['status'];
  reason: string | null;
  card: { last4: string } | null;
  deliveries: number;
}

export class TransactionLedger {
  constructor(private readonly o: LedgerOptions) {}

  forward(terminalId: string, req: TransactionsForward): TransactionsForwardResult {
    const results: TransactionsForwardResult['results'] = [];
    const now = this.o.now();
    this.o.store.transaction(() => {
      for (const item of req.items) {
        let last4: string | null = null;
        if (item.card) {
          try {
            const card = openCard(item.card, this.o.dataPrivateKey) as { pan?: unknown };
            last4 = typeof card.pan === 'string' ? card.pan.slice(-4) : null;
          } catch {
            // Refused, not retried: the envelope was not sealed to this cloud's key or was damaged.
            results.push({
              id: item.id,
              status: 'invalid',
              reason: 'card data cannot be opened by this cloud',
            });
            this.o.log.warn(
              { terminalId, id: item.id },
              'forwarded transaction refused: card data cannot be opened',
            );
            continue;
          }
        }
        const declined = item.amount % 100 === DECLINE_SUFFIX;
        const status = item.expired ? 'expired' : declined ? 'declined' : 'authorised';
        const outcome = this.o.store.recordTransaction({
          terminalId,
          id: item.id,
          seq: item.seq,
          amount: item.amount,
          currency: item.currency,
          createdAt: item.createdAt,
          receivedAt: now,
          offline: item.offline ? 1 : 0,
          expired: item.expired ? 1 : 0,
          cardLast4: last4,
          status,
          reason:
            status === 'declined'
              ? 'insufficient funds'
              : status === 'expired'
                ? 'expired on the terminal before it reached the cloud'
                : null,
        });
        results.push({ id: item.id, status: outcome });
      }
    });
    return { results };
  }

  /** Decisions not yet delivered to the terminal, oldest first. */
  pendingResults(terminalId: string, limit = MAX_FORWARD_BATCH): TransactionResult['results'] {
    return this.o.store.undeliveredResults(terminalId, limit).map((r) => ({
      id: r.id,
      status: r.status as 'authorised' | 'declined',
      ...(r.reason ? { reason: r.reason } : {}),
    }));
  }

  markDelivered(terminalId: string, ids: string[]): void {
    this.o.store.markResultsDelivered(terminalId, ids);
  }

  list(query: URLSearchParams): { object: 'list'; data: TransactionView[] } {
    const terminalId = query.get('terminalId');
    if (terminalId !== null && !this.o.store.getTerminal(terminalId))
      throw new ApiError(404, 'not_found', `no terminal ${terminalId}`);
    return {
      object: 'list',
      data: this.o.store.listTransactions(terminalId).map((r) => ({
        id: r.id,
        object: 'transaction',
        terminalId: r.terminalId,
        seq: r.seq,
        amount: r.amount,
        currency: r.currency,
        createdAt: r.createdAt,
        receivedAt: new Date(r.receivedAt).toISOString(),
        offline: r.offline === 1,
        status: r.status,
        reason: r.reason,
        card: r.cardLast4 ? { last4: r.cardLast4 } : null,
        deliveries: r.deliveries,
      })),
    };
  }
}
