import { createHash } from 'node:crypto';
import { type SealedCard, sealCard } from '../../protocol/card-envelope.js';
import type { TerminalConfig } from '../../protocol/config-schema.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator, describeIssues } from '../../protocol/schema-validation.js';
import { TransactionInput } from '../../protocol/transactions.js';
import type { EventBus } from '../events/event-bus.js';
import { type TransactionRecord, toRecord } from './transaction-record.js';
import { LEGACY_FINGERPRINT, type TransactionRow, type TransactionStore } from './transaction-store.js';

/**
 * Intake of the POS app's transactions: validate, answer a repeat with the first answer, refuse
 * what the offline limits do not allow, seal card data, and commit (synchronous=FULL) before
 * answering. Refusals change nothing stored.
 */

export interface QueueOptions {
  store: TransactionStore;
  events: EventBus;
  now(): number;
  online(): boolean;
  offlineMode(): TerminalConfig['offlineMode'];
  locked(): boolean;
  /** The cloud deactivated this terminal (null: it did not): every new sale is refused. */
  deactivated?(): { at: string; reason: string } | null;
  /** The cloud's data public key (PEM), or null if this identity has none; read per sale (renewal may change it). */
  dataPublicKey(): string | null;
  /** Told when there is something new to forward. */
  onStored(): void;
  /** Called before a new sale is committed (the store's schema record marks the first one after a snapshot). */
  beforeStore?(): void;
}

const inputValidator = compileValidator(TransactionInput);
/** Finished rows deleted per try when the store is full (a few hundred KB: room for many sales). */
const EVICT_BATCH = 200;

function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_WRITE';
}

/**
 * What tells a repeat from a conflict: the request's fields that are not secret — id, amount,
 * currency, the createdAt it gave, and of a card only its last four digits. Nothing derived from
 * the full card number is stored (a keyed hash of it beside its key let a PAN be brute-forced from
 * agent.db in seconds), so a repeat that differs only in the middle digits or the expiry is
 * answered as a repeat.
 */
export function requestFingerprint(tx: {
  id: string;
  amount: number;
  currency: string;
  createdAt?: string | undefined;
  card?: { pan: string } | undefined;
}): string {
  const last4 = tx.card ? tx.card.pan.replace(/\D/g, '').slice(-4) : null;
  const digest = createHash('sha256')
    .update(JSON.stringify([tx.id, tx.amount, tx.currency, tx.createdAt ?? null, last4]))
    .digest('hex');
  return `v2:${digest}`;
}

export class TransactionQueue {
  constructor(private readonly o: QueueOptions) {}

  /** `201` with the new record, `200` with the current one for a repeat; throws QueueError otherwise. */
  submit(body: unknown): { status: 200 | 201; record: TransactionRecord } {
    const check = inputValidator.check(body);
    if (!check.ok) {
      throw new Refusal('invalid_transaction', `invalid transaction: ${describeIssues(check.issues)}`);
    }
    const tx = check.value;
    const bodyHash = requestFingerprint(tx);
    const locked = this.o.locked();
    const online = this.o.online();
    const deactivated = this.o.deactivated?.() ?? null;
    // A repeat is answered like the first time even when the terminal is now locked, offline or
    // deactivated, so look first on those paths; on the common path the insert itself finds a
    // repeat (one statement).
    if (locked || !online || deactivated) {
      const existing = this.o.store.get(tx.id);
      if (existing) return this.repeat(existing, bodyHash, tx);
    }
    // A sale a deactivated terminal took could never be delivered: refuse it, with the reason.
    if (deactivated)
      throw new Refusal(
        'terminal_deactivated',
        `this terminal was deactivated by its fleet operator (${deactivated.reason}, ${deactivated.at}); it takes no sales until it is enrolled again`,
      );
    if (locked)
      throw new Refusal(
        'terminal_locked',
        'this terminal is locked by its fleet operator; no new transactions',
      );
    if (!online) this.checkOfflineLimits(tx.amount, tx.currency);
    let sealed: SealedCard | null = null;
    if (tx.card) {
      const dataKey = this.o.dataPublicKey();
      if (!dataKey) {
        throw new Refusal(
          'card_unsupported',
          'this terminal has no cloud data key to seal card data to; re-enroll it',
        );
      }
      sealed = sealCard(tx.card, dataKey);
    }
    const now = new Date(this.o.now()).toISOString();
    this.o.beforeStore?.();
    const seq = this.insertMakingRoom({
      id: tx.id,
      amount: tx.amount,
      currency: tx.currency,
      createdAt: tx.createdAt ?? now,
      storedAt: now,
      offline: !online,
      bodyHash,
      sealedCard: sealed,
    });
    if (seq === null) return this.repeat(this.o.store.get(tx.id)!, bodyHash, tx);
    // The answer is built from what was just committed: no second read on the hot path.
    const record: TransactionRecord = {
      id: tx.id,
      amount: tx.amount,
      currency: tx.currency,
      state: 'stored',
      seq,
      createdAt: tx.createdAt ?? now,
      updatedAt: now,
      offline: !online,
      ...(sealed ? { card: { sealed: true as const } } : {}),
    };
    this.o.events.publish('transaction', record);
    this.o.onStored();
    return { status: 201, record };
  }

  /**
   * Inserts; when the store is full, the oldest finished rows (with the cloud and decided) give way,
   * a batch at a time, so that only unsent rows can ever fill it. 507 only when none is left.
   */
  private insertMakingRoom(row: Parameters<TransactionStore['insert']>[0]): number | null {
    for (;;) {
      try {
        return this.o.store.insert(row);
      } catch (err) {
        if (!isStorageFull(err)) throw err;
        if (this.o.store.evictFinished(EVICT_BATCH) === 0)
          throw new Refusal(
            'storage_full',
            'the transaction store is full of transactions not yet with the cloud; nothing already stored was touched',
          );
      }
    }
  }

  private repeat(
    existing: TransactionRow,
    bodyHash: string,
    tx: { amount: number; currency: string; card?: unknown },
  ): { status: 200; record: TransactionRecord } {
    // A row stored before this fingerprint existed can only be compared on what it keeps in clear.
    const same =
      existing.bodyHash === LEGACY_FINGERPRINT
        ? existing.amount === tx.amount &&
          existing.currency === tx.currency &&
          (existing.sealedCard !== null) === (tx.card !== undefined)
        : existing.bodyHash === bodyHash;
    if (!same) {
      throw new Refusal(
        'idempotency_conflict',
        `transaction ${existing.id} was already submitted with a different body`,
      );
    }
    return { status: 200, record: toRecord(existing) };
  }

  private checkOfflineLimits(amount: number, currency: string): void {
    const m = this.o.offlineMode();
    const refuse = (message: string) => new Refusal('offline_limit_exceeded', message);
    if (!m.enabled) {
      throw new Refusal(
        'offline_disabled',
        'the cloud is out of reach and offline mode is off for this terminal',
      );
    }
    if (amount > m.maxAmount)
      throw refuse(`amount ${amount} is over the offline limit per transaction (maxAmount ${m.maxAmount})`);
    const usage = this.o.store.offlineUsage(currency);
    if (usage.count >= m.maxQueue)
      throw refuse(
        `${usage.count} offline transactions are waiting: the offline queue is full (maxQueue ${m.maxQueue})`,
      );
    const cap = m.maxTotal[currency];
    if (cap !== undefined && usage.total + amount > cap) {
      throw refuse(
        `offline total for ${currency} would be ${usage.total + amount}, over the limit (maxTotal ${currency} ${cap})`,
      );
    }
  }

  get(id: string): TransactionRecord {
    const row = this.o.store.get(id);
    if (!row) throw new Refusal('not_found', `no transaction ${id}`);
    return toRecord(row);
  }
}
