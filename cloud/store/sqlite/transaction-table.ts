import type {
  CloudTransactionRow,
  CloudTransactionStatus,
  Immediate,
  Page,
  TransactionStore,
} from '../store-types.js';
import { bit, type Db, prepareAll } from './statements.js';

const TX_COLUMNS = `rseq, terminal_id AS terminalId, id, seq, amount, currency, created_at AS createdAt,
  received_at AS receivedAt, offline, expired, card_last4 AS cardLast4, status, reason,
  result_delivered AS resultDelivered, deliveries`;

type Stored = Omit<CloudTransactionRow, 'offline' | 'expired' | 'resultDelivered'> & {
  offline: number;
  expired: number;
  resultDelivered: number;
};
const row = (r: Stored): CloudTransactionRow => ({
  ...r,
  offline: r.offline === 1,
  expired: r.expired === 1,
  resultDelivered: r.resultDelivered === 1,
});

export class SqliteTransactions implements Immediate<TransactionStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT OR IGNORE INTO transactions (terminal_id, id, seq, amount, currency, created_at,
        received_at, offline, expired, card_last4, status, reason) VALUES (@terminalId, @id, @seq, @amount, @currency,
        @createdAt, @receivedAt, @offline, @expired, @cardLast4, @status, @reason)`,
      repeat:
        'UPDATE transactions SET deliveries = deliveries + 1 WHERE terminal_id = @terminalId AND id = @id',
      get: `SELECT ${TX_COLUMNS} FROM transactions WHERE terminal_id = @terminalId AND id = @id`,
      // The statuses come as a JSON array: which results are delivered is the ledger's to say.
      undelivered: `SELECT ${TX_COLUMNS} FROM transactions WHERE terminal_id = @terminalId AND result_delivered = 0
        AND status IN (SELECT value FROM json_each(@statuses)) ORDER BY rseq LIMIT @limit`,
      delivered: 'UPDATE transactions SET result_delivered = 1 WHERE terminal_id = @terminalId AND id = @id',
      list: `SELECT ${TX_COLUMNS} FROM transactions WHERE (@terminalId IS NULL OR terminal_id = @terminalId)
        AND (@status IS NULL OR status = @status) ORDER BY rseq`,
      byId: `SELECT ${TX_COLUMNS} FROM transactions WHERE id = @id ORDER BY rseq LIMIT 1`,
      page: `SELECT ${TX_COLUMNS} FROM transactions WHERE (@terminalId IS NULL OR terminal_id = @terminalId)
        AND (@status IS NULL OR status = @status)
        AND (@after IS NULL OR rseq > (SELECT MIN(rseq) FROM transactions WHERE id = @after
          AND (@terminalId IS NULL OR terminal_id = @terminalId)))
        ORDER BY rseq LIMIT @limit`,
    });
  }
  insert(r: Omit<CloudTransactionRow, 'rseq' | 'resultDelivered' | 'deliveries'>): 'received' | 'duplicate' {
    const inserted =
      this.s.insert.run({ ...r, offline: bit(r.offline), expired: bit(r.expired) }).changes === 1;
    if (!inserted) this.s.repeat.run({ terminalId: r.terminalId, id: r.id });
    return inserted ? 'received' : 'duplicate';
  }
  get(terminalId: string, id: string): CloudTransactionRow | undefined {
    const r = this.s.get.get({ terminalId, id }) as Stored | undefined;
    return r && row(r);
  }
  countRedelivery(terminalId: string, id: string): void {
    this.s.repeat.run({ terminalId, id });
  }
  undelivered(
    terminalId: string,
    statuses: readonly CloudTransactionStatus[],
    limit: number,
  ): CloudTransactionRow[] {
    return (
      this.s.undelivered.all({ terminalId, statuses: JSON.stringify(statuses), limit }) as Stored[]
    ).map(row);
  }
  markDelivered(terminalId: string, ids: readonly string[]): void {
    for (const id of ids) this.s.delivered.run({ terminalId, id });
  }
  byId(id: string): CloudTransactionRow | undefined {
    const r = this.s.byId.get({ id }) as Stored | undefined;
    return r && row(r);
  }
  page(filter: { terminalId: string | null; status: string | null }, page: Page): CloudTransactionRow[] {
    return (this.s.page.all({ ...filter, ...page }) as Stored[]).map(row);
  }
  list(terminalId: string | null, status: string | null): CloudTransactionRow[] {
    return (this.s.list.all({ terminalId, status }) as Stored[]).map(row);
  }
}
