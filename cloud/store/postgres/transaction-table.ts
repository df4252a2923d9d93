import type { CloudTransactionRow, CloudTransactionStatus, Page, TransactionStore } from '../store-types.js';
import { bit, type PgExec, pgStatements } from './pg-statements.js';

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

export class PgTransactions implements TransactionStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('transactions', {
      insert: `INSERT INTO transactions (terminal_id, id, seq, amount, currency, created_at,
        received_at, offline, expired, card_last4, status, reason) VALUES (@terminalId, @id, @seq, @amount, @currency,
        @createdAt, @receivedAt, @offline, @expired, @cardLast4, @status, @reason) ON CONFLICT DO NOTHING`,
      repeat:
        'UPDATE transactions SET deliveries = deliveries + 1 WHERE terminal_id = @terminalId AND id = @id',
      get: `SELECT ${TX_COLUMNS} FROM transactions WHERE terminal_id = @terminalId AND id = @id`,
      // The statuses come as an array: which results are delivered is the ledger's to say.
      undelivered: `SELECT ${TX_COLUMNS} FROM transactions WHERE terminal_id = @terminalId AND result_delivered = 0
        AND status = ANY(@statuses::text[]) ORDER BY rseq LIMIT @limit`,
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
  async insert(
    r: Omit<CloudTransactionRow, 'rseq' | 'resultDelivered' | 'deliveries'>,
  ): Promise<'received' | 'duplicate'> {
    const inserted =
      (await this.q.run(this.s.insert, { ...r, offline: bit(r.offline), expired: bit(r.expired) })) === 1;
    if (!inserted) await this.q.run(this.s.repeat, { terminalId: r.terminalId, id: r.id });
    return inserted ? 'received' : 'duplicate';
  }
  async get(terminalId: string, id: string): Promise<CloudTransactionRow | undefined> {
    const r = (await this.q.one(this.s.get, { terminalId, id })) as Stored | undefined;
    return r && row(r);
  }
  async countRedelivery(terminalId: string, id: string): Promise<void> {
    await this.q.run(this.s.repeat, { terminalId, id });
  }
  async undelivered(
    terminalId: string,
    statuses: readonly CloudTransactionStatus[],
    limit: number,
  ): Promise<CloudTransactionRow[]> {
    return (
      (await this.q.all(this.s.undelivered, {
        terminalId,
        statuses: [...statuses],
        limit,
      })) as Stored[]
    ).map(row);
  }
  async markDelivered(terminalId: string, ids: readonly string[]): Promise<void> {
    for (const id of ids) await this.q.run(this.s.delivered, { terminalId, id });
  }
  async byId(id: string): Promise<CloudTransactionRow | undefined> {
    const r = (await this.q.one(this.s.byId, { id })) as Stored | undefined;
    return r && row(r);
  }
  async page(
    filter: { terminalId: string | null; status: string | null },
    page: Page,
  ): Promise<CloudTransactionRow[]> {
    return ((await this.q.all(this.s.page, { ...filter, ...page })) as Stored[]).map(row);
  }
  async list(terminalId: string | null, status: string | null): Promise<CloudTransactionRow[]> {
    return ((await this.q.all(this.s.list, { terminalId, status })) as Stored[]).map(row);
  }
}
