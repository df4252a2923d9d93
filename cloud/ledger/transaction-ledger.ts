import type { SealedCard } from '../../protocol/card-envelope.js';
import type {
  TransactionResult,
  TransactionsForward,
  TransactionsForwardResult,
} from '../../protocol/messages.js';
import { Refusal } from '../../protocol/refusal.js';
import { MAX_FORWARD_BATCH } from '../../protocol/transactions.js';
import { checkCursor, type ListOf, listPage, pageOf } from '../list-page.js';
import { unixSeconds, unixSecondsOfIso } from '../rest-time.js';
import type { CloudStore, CloudTransactionRow } from '../store/store-types.js';
import type { OpenedCard } from './envelope-pool.js';

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
  /** Opens sealed card envelopes off the event loop (cloud/envelope-pool.ts). */
  envelopes: { open(cards: SealedCard[]): Promise<OpenedCard[]> };
  now(): number;
  log: { warn(obj: object, msg: string): void };
}

/** The reason kept with a transaction whose card data this cloud cannot open. */
export const UNOPENABLE_CARD = 'card data cannot be opened by this cloud';

/** What `GET /v1/transactions?state=` may ask for. */
export const TRANSACTION_STATUSES = ['authorised', 'declined', 'expired', 'invalid'] as const;

/** The decisions a terminal is told about (TransactionResult); expired and invalid ones it is not. */
const RESULT_STATUSES = ['authorised', 'declined'] as const;

export interface TransactionView {
  id: string;
  object: 'transaction';
  terminalId: string;
  seq: number;
  amount: number;
  currency: string;
  /** Unix seconds (the device's createdAt, to the second); null when it sent none readable. */
  createdAt: number | null;
  receivedAt: number;
  offline: boolean;
  status: CloudTransactionRow['status'];
  reason: string | null;
  card: { last4: string } | null;
  deliveries: number;
}

export class TransactionLedger {
  constructor(private readonly o: LedgerOptions) {}

  /**
   * Stores a forwarded batch: items already stored are answered from the store (their envelopes
   * are not opened again); new items' envelopes are opened in the worker pool, then every new
   * item is stored in one transaction — an item whose card cannot be opened is kept as `invalid`
   * with the reason (`GET /v1/transactions?state=invalid`), never dropped.
   */
  async forward(terminalId: string, req: TransactionsForward): Promise<TransactionsForwardResult> {
    const known = new Map<string, CloudTransactionRow>();
    for (const item of req.items) {
      const row = await this.o.store.transactions.get(terminalId, item.id);
      if (row) known.set(item.id, row);
    }
    const sealed = req.items.filter((i) => !known.has(i.id) && i.card !== null);
    const opened = await this.o.envelopes.open(sealed.map((i) => i.card!));
    const cards = new Map(sealed.map((item, k) => [item, opened[k]!]));
    const now = this.o.now();
    const results: TransactionsForwardResult['results'] = [];
    const invalid: string[] = [];
    await this.o.store.transaction(async () => {
      for (const item of req.items) {
        const before = known.get(item.id);
        if (before) {
          await this.o.store.transactions.countRedelivery(terminalId, item.id);
          results.push(
            before.status === 'invalid'
              ? { id: item.id, status: 'invalid', reason: before.reason ?? UNOPENABLE_CARD }
              : { id: item.id, status: 'duplicate' },
          );
          continue;
        }
        const card = cards.get(item);
        const unopenable = card !== undefined && 'error' in card;
        const declined = item.amount % 100 === DECLINE_SUFFIX;
        const status = unopenable
          ? 'invalid'
          : item.expired
            ? 'expired'
            : declined
              ? 'declined'
              : 'authorised';
        const outcome = await this.o.store.transactions.insert({
          terminalId,
          id: item.id,
          seq: item.seq,
          amount: item.amount,
          currency: item.currency,
          createdAt: item.createdAt,
          receivedAt: now,
          offline: item.offline,
          expired: item.expired,
          cardLast4: card && 'last4' in card ? card.last4 : null,
          status,
          reason:
            status === 'invalid'
              ? UNOPENABLE_CARD
              : status === 'declined'
                ? 'insufficient funds'
                : status === 'expired'
                  ? 'expired on the terminal before it reached the cloud'
                  : null,
        });
        if (status === 'invalid' && outcome === 'received') {
          results.push({ id: item.id, status: 'invalid', reason: UNOPENABLE_CARD });
          invalid.push(item.id);
        } else {
          results.push({ id: item.id, status: outcome });
        }
      }
    });
    // One line per batch, not per item: a batch of garbage must not become 500 log lines.
    if (invalid.length > 0)
      this.o.log.warn(
        { terminalId, count: invalid.length, ids: invalid.slice(0, 5) },
        `forwarded transactions kept as invalid: ${UNOPENABLE_CARD}`,
      );
    return { results };
  }

  /** Decisions not yet delivered to the terminal, oldest first. */
  async pendingResults(terminalId: string, limit = MAX_FORWARD_BATCH): Promise<TransactionResult['results']> {
    return (await this.o.store.transactions.undelivered(terminalId, RESULT_STATUSES, limit)).map((r) => ({
      id: r.id,
      status: r.status as 'authorised' | 'declined',
      ...(r.reason ? { reason: r.reason } : {}),
    }));
  }

  async markDelivered(terminalId: string, ids: string[]): Promise<void> {
    await this.o.store.transaction(async () => this.o.store.transactions.markDelivered(terminalId, ids));
  }

  /**
   * \`GET /v1/transactions?terminalId&state&limit&starting_after\`: in the order received. With
   * \`limit\` (or \`starting_after\`) a page by keyset with \`has_more\`; without, every one (the
   * list as it was before paging).
   */
  async list(query: URLSearchParams): Promise<ListOf<TransactionView>> {
    const terminalId = query.get('terminalId');
    if (terminalId !== null && !(await this.o.store.terminals.get(terminalId)))
      throw new Refusal('not_found', `no terminal ${terminalId}`);
    const state = query.get('state');
    if (state !== null && !(TRANSACTION_STATUSES as readonly string[]).includes(state))
      throw new Refusal('invalid_request', `state must be one of ${TRANSACTION_STATUSES.join(', ')}`);
    const view = (r: CloudTransactionRow): TransactionView => ({
      id: r.id,
      object: 'transaction',
      terminalId: r.terminalId,
      seq: r.seq,
      amount: r.amount,
      currency: r.currency,
      createdAt: unixSecondsOfIso(r.createdAt),
      receivedAt: unixSeconds(r.receivedAt),
      offline: r.offline,
      status: r.status,
      reason: r.reason,
      card: r.cardLast4 ? { last4: r.cardLast4 } : null,
      deliveries: r.deliveries,
    });
    if (!query.has('limit') && !query.has('starting_after'))
      return {
        object: 'list',
        data: (await this.o.store.transactions.list(terminalId, state)).map(view),
        has_more: false,
      };
    const page = pageOf(query);
    const filter = { terminalId, status: state };
    await checkCursor(page, async (id) =>
      terminalId === null
        ? (await this.o.store.transactions.byId(id)) !== undefined
        : (await this.o.store.transactions.get(terminalId, id)) !== undefined,
    );
    return await listPage(page, async (p) => await this.o.store.transactions.page(filter, p), view);
  }
}
