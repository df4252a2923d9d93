import type { ActionStore, CloudActionRow, Immediate } from '../store-types.js';
import { type Db, prepareAll } from './statements.js';

const COLUMNS = `seq, id, terminal_id AS terminalId, type, params, status, reason, step, percent,
  created_at AS createdAt, updated_at AS updatedAt, expires_at AS expiresAt, delivered_at AS deliveredAt`;

export class SqliteActions implements Immediate<ActionStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
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
  insert(
    row: Pick<CloudActionRow, 'id' | 'terminalId' | 'type' | 'params' | 'createdAt' | 'expiresAt'>,
  ): void {
    this.s.insert.run(row);
  }
  get(id: string): CloudActionRow | undefined {
    return this.s.get.get({ id }) as CloudActionRow | undefined;
  }
  list(terminalId: string, limit: number): CloudActionRow[] {
    return this.s.list.all({ terminalId, limit }) as CloudActionRow[];
  }
  queued(terminalId: string): CloudActionRow[] {
    return this.s.queued.all({ terminalId }) as CloudActionRow[];
  }
  expired(now: number): CloudActionRow[] {
    return this.s.expired.all({ now }) as CloudActionRow[];
  }
  update(
    id: string,
    u: Pick<CloudActionRow, 'status' | 'reason' | 'step' | 'percent'>,
    now: number,
    deliveredAt: number | null,
  ): void {
    this.s.update.run({ id, ...u, now, deliveredAt });
  }
}
