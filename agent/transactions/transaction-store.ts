import type Database from 'better-sqlite3';
import type { SealedCard } from '../../protocol/card-envelope.js';
import type { TransactionState } from '../../protocol/transactions.js';
import { withoutFsync } from '../sqlite-durability.js';
import { TRANSACTION_TRANSITIONS, type TransactionEvent } from './transaction-state.js';

/**
 * SQL for the transactions table. Every state change is a guarded UPDATE whose allowed
 * from-states come from the state machine's table, so storage cannot take a transition the
 * machine does not have. Ordered by `seq`, an explicit AUTOINCREMENT column, never by luck.
 */
/** What rows stored before the non-secret request fingerprint carry (their keyed hashes were erased at start). */
export const LEGACY_FINGERPRINT = 'v1-erased';

export interface TransactionRow {
  seq: number;
  id: string;
  amount: number;
  currency: string;
  createdAt: string;
  storedAt: string;
  updatedAt: string;
  state: TransactionState;
  offline: number;
  bodyHash: string;
  sealedCard: string | null;
  reason: string | null;
  reported: number;
}

const COLUMNS = `seq, id, amount, currency, created_at AS createdAt, stored_at AS storedAt, updated_at AS updatedAt,
  state, offline, body_hash AS bodyHash, sealed_card AS sealedCard, reason, reported`;

/** Not yet with the cloud: exactly the predicate of the partial index transactions_unsent. */
const UNSENT = "state IN ('stored', 'sending') OR (state = 'expired' AND reported = 0)";

/** With the cloud and decided (or reported as expired): what retention prunes and a full store gives up first. */
const FINISHED = "(state IN ('authorised', 'declined', 'failed') OR (state = 'expired' AND reported = 1))";

function fromStates(event: TransactionEvent, to: TransactionState): string {
  const from = Object.entries(TRANSACTION_TRANSITIONS)
    .filter(([, evs]) => evs[event]?.includes(to))
    .map(([s]) => `'${s}'`);
  return `(${from.join(', ')})`;
}

export class TransactionStore {
  private readonly s;

  constructor(private readonly db: Database.Database) {
    this.s = {
      // INSERT … SELECT … WHERE NOT EXISTS, not ON CONFLICT DO NOTHING: SQLite draws an AUTOINCREMENT
      // number before it finds the conflict, so every repeat and conflict left a gap in `seq`.
      insert:
        db.prepare(`INSERT INTO transactions (id, amount, currency, created_at, stored_at, updated_at, state, offline,
        body_hash, sealed_card) SELECT @id, @amount, @currency, @createdAt, @storedAt, @storedAt, 'stored', @offline,
        @bodyHash, @sealedCard WHERE NOT EXISTS (SELECT 1 FROM transactions WHERE id = @id)`),
      get: db.prepare(`SELECT ${COLUMNS} FROM transactions WHERE id = ?`),
      getMany: db.prepare(
        `SELECT ${COLUMNS} FROM transactions WHERE id IN (SELECT value FROM json_each(?)) ORDER BY seq`,
      ),
      list: db.prepare(
        `SELECT ${COLUMNS} FROM transactions WHERE (@state IS NULL OR state = @state) ORDER BY seq DESC LIMIT @limit`,
      ),
      // INDEXED BY: left alone, the planner ORs two index searches and sorts every unsent row per batch.
      summary:
        db.prepare(`SELECT count(*) AS stored, min(stored_at) AS oldestAt FROM transactions INDEXED BY transactions_unsent
        WHERE ${UNSENT}`),
      offlineUsage:
        db.prepare(`SELECT count(*) AS count, coalesce(sum(CASE WHEN currency = ? THEN amount ELSE 0 END), 0) AS total
        FROM transactions WHERE offline = 1 AND state IN ('stored', 'sending')`),
      toForward: db.prepare(`SELECT ${COLUMNS} FROM transactions INDEXED BY transactions_unsent
        WHERE ${UNSENT} ORDER BY seq LIMIT ?`),
      sending: db.prepare(
        `UPDATE transactions SET state = 'sending', updated_at = ? WHERE id = ? AND state IN ${fromStates('forward', 'sending')}`,
      ),
      received: db.prepare(
        `UPDATE transactions SET state = 'received', updated_at = ? WHERE id = ? AND state IN ${fromStates('received', 'received')}`,
      ),
      failed: db.prepare(
        `UPDATE transactions SET state = 'failed', reason = ?, updated_at = ? WHERE id = ? AND state IN ${fromStates('invalid', 'failed')}`,
      ),
      reported: db.prepare(
        "UPDATE transactions SET reported = 1, updated_at = ? WHERE id = ? AND state = 'expired'",
      ),
      authorised: db.prepare(
        `UPDATE transactions SET state = 'authorised', reason = ?, updated_at = ? WHERE id = ? AND state IN ${fromStates('decided', 'authorised')}`,
      ),
      declined: db.prepare(
        `UPDATE transactions SET state = 'declined', reason = ?, updated_at = ? WHERE id = ? AND state IN ${fromStates('decided', 'declined')}`,
      ),
      expire: db.prepare(`UPDATE transactions SET state = 'expired', updated_at = @now,
        reason = 'not received by the cloud within maxAgeHours' WHERE stored_at < @cutoff AND state IN ${fromStates('expire', 'expired')}
        RETURNING ${COLUMNS}`),
      prune:
        db.prepare(`DELETE FROM transactions WHERE seq IN (SELECT seq FROM transactions WHERE updated_at < @cutoff
        AND ${FINISHED} ORDER BY seq LIMIT @batch)`),
      // NOT INDEXED: walk the table in seq order and stop at `batch` finished rows — the oldest rows are
      // the finished ones, so this reads little; a state index would collect and sort every finished row.
      evict: db.prepare(`DELETE FROM transactions WHERE seq IN (SELECT seq FROM transactions NOT INDEXED
        WHERE ${FINISHED} ORDER BY seq LIMIT ?)`),
    };
  }

  /** Inserts a new transaction; null when one with this id exists already (nothing written). */
  insert(row: {
    id: string;
    amount: number;
    currency: string;
    createdAt: string;
    storedAt: string;
    offline: boolean;
    bodyHash: string;
    sealedCard: SealedCard | null;
  }): number | null {
    const r = this.s.insert.run({
      ...row,
      offline: row.offline ? 1 : 0,
      sealedCard: row.sealedCard ? JSON.stringify(row.sealedCard) : null,
    });
    return r.changes === 1 ? Number(r.lastInsertRowid) : null;
  }

  get(id: string): TransactionRow | undefined {
    return this.s.get.get(id) as TransactionRow | undefined;
  }

  /** Several rows in one statement, in seq order (those that exist). */
  getMany(ids: string[]): TransactionRow[] {
    return ids.length === 0 ? [] : (this.s.getMany.all(JSON.stringify(ids)) as TransactionRow[]);
  }

  list(state: TransactionState | null, limit: number): TransactionRow[] {
    return this.s.list.all({ state, limit }) as TransactionRow[];
  }

  /** Transactions the cloud does not have yet (expired ones not yet reported included). */
  summary(): { stored: number; oldestAt: string | null } {
    return this.s.summary.get() as { stored: number; oldestAt: string | null };
  }

  /** What the offline limits count: unsent transactions taken while offline. */
  offlineUsage(currency: string): { count: number; total: number } {
    return this.s.offlineUsage.get(currency) as { count: number; total: number };
  }

  toForward(limit: number): TransactionRow[] {
    return this.s.toForward.all(limit) as TransactionRow[];
  }

  markSending(ids: string[], now: string): void {
    this.relaxed(() => {
      for (const id of ids) this.s.sending.run(now, id);
    });
  }

  /**
   * A write that may be lost in a power cut without harm (`sending`, `received`): if it is, the
   * row is forwarded again and the cloud answers `duplicate` (agent/sqlite-durability.ts).
   */
  private relaxed(fn: () => void): void {
    withoutFsync(this.db, fn);
  }

  /** Applies the cloud's per-item answers in one transaction; returns the ids whose state changed. */
  applyForwardResults(
    results: { id: string; status: 'received' | 'duplicate' | 'invalid'; reason?: string | undefined }[],
    now: string,
  ): string[] {
    const changed: string[] = [];
    this.relaxed(() => {
      for (const r of results) {
        const n =
          r.status === 'invalid'
            ? this.s.failed.run(r.reason ?? 'refused by the cloud', now, r.id).changes
            : this.s.received.run(now, r.id).changes + this.s.reported.run(now, r.id).changes;
        if (n > 0) changed.push(r.id);
      }
    });
    return changed;
  }

  /** Durable (FULL): the cloud marks a decision delivered once we answer, so it must be on disk first. */
  applyDecisions(
    results: { id: string; status: 'authorised' | 'declined'; reason?: string | undefined }[],
    now: string,
  ): string[] {
    const changed: string[] = [];
    this.db.transaction(() => {
      for (const r of results) {
        const stmt = r.status === 'authorised' ? this.s.authorised : this.s.declined;
        if (stmt.run(r.reason ?? null, now, r.id).changes > 0) changed.push(r.id);
      }
    })();
    return changed;
  }

  /** Expires what was stored before `cutoff` and is still not with the cloud; returns those rows, as they are now. */
  expire(cutoff: string, now: string): TransactionRow[] {
    return this.s.expire.all({ cutoff, now }) as TransactionRow[];
  }

  prune(cutoff: string, batch: number): number {
    return this.s.prune.run({ cutoff, batch }).changes;
  }

  /**
   * Deletes up to `batch` of the oldest finished rows, whatever their age: the store is full, and a
   * new sale must not be refused for room that rows the cloud already has and decided are holding.
   * Unsent rows are never touched. Returns how many went.
   */
  evictFinished(batch: number): number {
    return this.s.evict.run(batch).changes;
  }
}
