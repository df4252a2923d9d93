import type {
  AuditRow,
  AuditStore,
  OperatorRole,
  OperatorRow,
  OperatorStore,
  PortalSessionRow,
  PortalSessionStore,
} from '../store-types.js';
import { type PgExec, pgStatements } from './pg-statements.js';

const OPERATOR_COLUMNS = 'name, role, password_hash AS passwordHash, created_at AS createdAt';
const SESSION_COLUMNS = `token_hash AS tokenHash, operator, csrf_token AS csrfToken, created_at AS createdAt,
  last_seen_at AS lastSeenAt`;
const AUDIT_COLUMNS = 'seq, at, operator, action, target, outcome, detail';

export class PgOperators implements OperatorStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('operators', {
      insert: `INSERT INTO operators (name, role, password_hash, created_at)
        VALUES (@name, @role, @passwordHash, @createdAt) ON CONFLICT (name) DO NOTHING`,
      get: `SELECT ${OPERATOR_COLUMNS} FROM operators WHERE name = @name`,
      list: `SELECT ${OPERATOR_COLUMNS} FROM operators ORDER BY name`,
      setPassword: 'UPDATE operators SET password_hash = @passwordHash WHERE name = @name',
      setRole: 'UPDATE operators SET role = @role WHERE name = @name',
      remove: 'DELETE FROM operators WHERE name = @name',
    });
  }
  async insert(row: OperatorRow): Promise<boolean> {
    return (await this.q.run(this.s.insert, row)) === 1;
  }
  async get(name: string): Promise<OperatorRow | undefined> {
    return (await this.q.one(this.s.get, { name })) as OperatorRow | undefined;
  }
  async list(): Promise<OperatorRow[]> {
    return (await this.q.all(this.s.list)) as OperatorRow[];
  }
  async setPassword(name: string, passwordHash: string): Promise<boolean> {
    return (await this.q.run(this.s.setPassword, { name, passwordHash })) === 1;
  }
  async setRole(name: string, role: OperatorRole): Promise<boolean> {
    return (await this.q.run(this.s.setRole, { name, role })) === 1;
  }
  async remove(name: string): Promise<boolean> {
    return (await this.q.run(this.s.remove, { name })) === 1;
  }
}

export class PgPortalSessions implements PortalSessionStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('portalsessions', {
      insert: `INSERT INTO portal_sessions (token_hash, operator, csrf_token, created_at, last_seen_at)
        VALUES (@tokenHash, @operator, @csrfToken, @createdAt, @lastSeenAt)`,
      get: `SELECT ${SESSION_COLUMNS} FROM portal_sessions WHERE token_hash = @tokenHash`,
      touch: 'UPDATE portal_sessions SET last_seen_at = @at WHERE token_hash = @tokenHash',
      remove: 'DELETE FROM portal_sessions WHERE token_hash = @tokenHash',
      removeOperator: 'DELETE FROM portal_sessions WHERE operator = @name',
      prune: 'DELETE FROM portal_sessions WHERE last_seen_at < @idleBefore OR created_at < @createdBefore',
    });
  }
  async insert(row: PortalSessionRow): Promise<void> {
    await this.q.run(this.s.insert, row);
  }
  async get(tokenHash: string): Promise<PortalSessionRow | undefined> {
    return (await this.q.one(this.s.get, { tokenHash })) as PortalSessionRow | undefined;
  }
  async touch(tokenHash: string, at: number): Promise<void> {
    await this.q.run(this.s.touch, { tokenHash, at });
  }
  async remove(tokenHash: string): Promise<void> {
    await this.q.run(this.s.remove, { tokenHash });
  }
  async removeOperator(name: string): Promise<number> {
    return await this.q.run(this.s.removeOperator, { name });
  }
  async prune(idleBefore: number, createdBefore: number): Promise<number> {
    return await this.q.run(this.s.prune, { idleBefore, createdBefore });
  }
}

export class PgAudit implements AuditStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('audit', {
      record: `INSERT INTO audit_log (at, operator, action, target, outcome, detail)
        VALUES (@at, @operator, @action, @target, @outcome, @detail)`,
      forTarget: `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE target = @target ORDER BY seq DESC LIMIT @limit`,
      recent: `SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT @limit`,
    });
  }
  async record(row: Omit<AuditRow, 'seq'>): Promise<void> {
    await this.q.run(this.s.record, row);
  }
  async forTarget(target: string, limit: number): Promise<AuditRow[]> {
    return (await this.q.all(this.s.forTarget, { target, limit })) as AuditRow[];
  }
  async recent(limit: number): Promise<AuditRow[]> {
    return (await this.q.all(this.s.recent, { limit })) as AuditRow[];
  }
}
