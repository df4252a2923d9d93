import type { TransactionResult } from '../../protocol/messages.js';
import { RpcError, RpcErrorCode } from '../../protocol/rpc-errors.js';
import type { ForwardedTransaction } from '../../protocol/transactions.js';
import { MAX_FORWARD_BATCH } from '../../protocol/transactions.js';
import type { EventBus } from '../events/event-bus.js';
import { sleepUnless } from '../interruptible-sleep.js';
import type { OnlineLink } from '../link/cloud-link.js';
import { WakeSignal } from '../wake-signal.js';
import { type TransactionRecord, toRecord } from './transaction-record.js';
import type { TransactionRow, TransactionStore } from './transaction-store.js';

const RETRY_AFTER_MS = 1000;
/** Forwarded records kept for their decision's event (two batches' worth). */
const FORWARDED_KEPT = 2 * MAX_FORWARD_BATCH;

/**
 * Forwards the queue in `seq` order, one batch in flight, after `Hello`. A batch is marked
 * `sending` before it goes; answers are applied per item; a link that drops mid-batch leaves
 * the rows `sending` and they go again on the next link — the cloud stores by (terminal, id), so
 * a resend is answered `duplicate`, never stored twice.
 */
export interface ForwarderOptions {
  store: TransactionStore;
  events: EventBus;
  now(): number;
  log: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

function toWire(r: TransactionRow): ForwardedTransaction {
  return {
    id: r.id,
    seq: r.seq,
    amount: r.amount,
    currency: r.currency,
    createdAt: r.createdAt,
    storedAt: r.storedAt,
    offline: r.offline === 1,
    expired: r.state === 'expired',
    card: r.sealedCard ? (JSON.parse(r.sealedCard) as ForwardedTransaction['card']) : null,
  };
}

export class TransactionForwarder {
  private readonly pending = new WakeSignal();

  constructor(private readonly o: ForwarderOptions) {}

  wake(): void {
    this.pending.wake();
  }

  async runWhileOnline(link: OnlineLink): Promise<void> {
    while (!link.signal.aborted) {
      try {
        if ((await this.forwardBatch(link)) === 'next link') return;
      } catch (err) {
        // The store failed (no descriptor left, disk trouble): log, wait a moment, go on.
        this.o.log.error({ err }, 'transactions not forwarded; retrying');
        await sleepUnless(RETRY_AFTER_MS, link.signal);
      }
    }
  }

  /** One batch in flight, or a wait for something new to forward. */
  private async forwardBatch(link: OnlineLink): Promise<'more' | 'next link'> {
    const rows = this.o.store.toForward(MAX_FORWARD_BATCH);
    if (rows.length === 0) {
      await this.pending.wait(link.signal);
      return 'more';
    }
    const iso = () => new Date(this.o.now()).toISOString();
    this.o.store.markSending(
      rows.filter((r) => r.state === 'stored').map((r) => r.id),
      iso(),
    );
    let answer: Awaited<ReturnType<typeof link.session.call<'TransactionsForward'>>>;
    try {
      answer = await link.session.call('TransactionsForward', { items: rows.map(toWire) });
    } catch (err) {
      const code = err instanceof RpcError ? err.code : RpcErrorCode.InternalError;
      if (code !== RpcErrorCode.Disconnected) {
        this.o.log.warn(
          { code, err: (err as Error).message, batch: rows.length },
          'transactions not forwarded; retrying on the next link',
        );
      }
      return 'next link'; // rows stay sending/stored; the next link sends them again
    }
    const at = iso();
    const changed = new Set(this.o.store.applyForwardResults(answer.results, at));
    for (const r of answer.results.filter((x) => x.status === 'invalid')) {
      this.o.log.error(
        { id: r.id, reason: r.reason },
        'the cloud refused a transaction as invalid; kept as failed',
      );
    }
    // The new state of each row follows from the answer: its event needs no read back.
    const sent = new Map(rows.map((r) => [r.id, r]));
    for (const r of answer.results) {
      const row = sent.get(r.id);
      if (!row || !changed.has(r.id)) continue;
      const record: TransactionRecord = {
        ...toRecord(row),
        state: r.status === 'invalid' ? 'failed' : row.state === 'expired' ? 'expired' : 'received',
        updatedAt: at,
        ...(r.status === 'invalid' ? { reason: r.reason ?? 'refused by the cloud' } : {}),
      };
      this.o.events.publish('transaction', record);
      if (record.state === 'received') this.remember(record);
    }
    return 'more';
  }

  /**
   * Records just forwarded, by id: the decision usually follows within the second, and its event
   * is this record with the new state — no read of the store. Bounded; a miss reads the store.
   */
  private readonly forwarded = new Map<string, TransactionRecord>();

  private remember(record: TransactionRecord): void {
    this.forwarded.set(record.id, record);
    if (this.forwarded.size > FORWARDED_KEPT) this.forwarded.delete(this.forwarded.keys().next().value!);
  }

  /**
   * `TransactionResult` from the cloud: authorised or declined. Idempotent. Every change goes on
   * the bus, listened to or not (an app that reconnects replays what it missed): one read for all.
   */
  applyResults(req: TransactionResult): Record<string, never> {
    const at = new Date(this.o.now()).toISOString();
    const changed = new Set(this.o.store.applyDecisions(req.results, at));
    const unknown: string[] = [];
    for (const r of req.results) {
      if (!changed.has(r.id)) continue;
      const known = this.forwarded.get(r.id);
      if (!known) {
        unknown.push(r.id);
        continue;
      }
      this.forwarded.delete(r.id);
      this.o.events.publish('transaction', {
        ...known,
        state: r.status,
        updatedAt: at,
        ...(r.reason ? { reason: r.reason } : {}),
      });
    }
    for (const row of this.o.store.getMany(unknown)) this.o.events.publish('transaction', toRecord(row));
    return {};
  }
}
