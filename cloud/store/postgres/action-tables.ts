import type { ActionStore, CloudActionRow } from '../store-types.js';
import { type PgExec, pgStatements } from './pg-statements.js';

const COLUMNS = `seq, id, terminal_id AS terminalId, type, params, status, reason, step, percent,
  created_at AS createdAt, updated_at AS updatedAt, expires_at AS expiresAt, delivered_at AS deliveredAt`;

export class PgActions implements ActionStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('actions', {
      insert: `INSERT INTO actions (id, terminal_id, type, params, status, created_at, updated_at, expires_at)
        VALUES (@id, @terminalId, @type, @params, 'queued', @createdAt, @createdAt, @expiresAt)`,
      get: `SELECT ${COLUMNS} FROM actions WHERE id = @id`,
      list: `SELECT ${COLUMNS} FROM actions WHERE terminal_id = @terminalId ORDER BY seq DESC LIMIT @limit`,
      queued: `SELECT ${COLUMNS} FROM actions WHERE terminal_id = @terminalId AND status = 'queued' ORDER BY seq`,
      update: `UPDATE actions SET status = @status, reason = @reason, step = @step, percent = @percent,
        updated_at = @now, delivered_at = coalesce(delivered_at, @deliveredAt) WHERE id = @id`,
      expired: `SELECT ${COLUMNS} FROM actions WHERE status = 'queued' AND expires_at <= @now`,
    });
  }
  async insert(
    row: Pick<CloudActionRow, 'id' | 'terminalId' | 'type' | 'params' | 'createdAt' | 'expiresAt'>,
  ): Promise<void> {
    await this.q.run(this.s.insert, row);
  }
  async get(id: string): Promise<CloudActionRow | undefined> {
    return (await this.q.one(this.s.get, { id })) as CloudActionRow | undefined;
  }
  async list(terminalId: string, limit: number): Promise<CloudActionRow[]> {
    return (await this.q.all(this.s.list, { terminalId, limit })) as CloudActionRow[];
  }
  async queued(terminalId: string): Promise<CloudActionRow[]> {
    return (await this.q.all(this.s.queued, { terminalId })) as CloudActionRow[];
  }
  async expired(now: number): Promise<CloudActionRow[]> {
    return (await this.q.all(this.s.expired, { now })) as CloudActionRow[];
  }
  async update(
    id: string,
    u: Pick<CloudActionRow, 'status' | 'reason' | 'step' | 'percent'>,
    now: number,
    deliveredAt: number | null,
  ): Promise<void> {
    await this.q.run(this.s.update, { id, ...u, now, deliveredAt });
  }
}
