import type {
  AuditRow,
  AuditStore,
  Immediate,
  OperatorRole,
  OperatorRow,
  OperatorStore,
  PortalSessionRow,
  PortalSessionStore,
} from '../store-types.js';
import { type Db, prepareAll } from './statements.js';

const OPERATOR_COLUMNS = 'name, role, password_hash AS passwordHash, created_at AS createdAt';
const SESSION_COLUMNS = `token_hash AS tokenHash, operator, csrf_token AS csrfToken, created_at AS createdAt,
  last_seen_at AS lastSeenAt`;
const AUDIT_COLUMNS = 'seq, at, operator, action, target, outcome, detail';

export class SqliteOperators implements Immediate<OperatorStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT INTO operators (name, role, password_hash, created_at)
        VALUES (@name, @role, @passwordHash, @createdAt) ON CONFLICT (name) DO NOTHING`,
      get: `SELECT ${OPERATOR_COLUMNS} FROM operators WHERE name = @name`,
      list: `SELECT ${OPERATOR_COLUMNS} FROM operators ORDER BY name`,
      setPassword: 'UPDATE operators SET password_hash = @passwordHash WHERE name = @name',
      setRole: 'UPDATE operators SET role = @role WHERE name = @name',
      remove: 'DELETE FROM operators WHERE name = @name',
    });
  }
  insert(row: OperatorRow): boolean {
    return this.s.insert.run(row).changes === 1;
  }
  get(name: string): OperatorRow | undefined {
    return this.s.get.get({ name }) as OperatorRow | undefined;
  }
  list(): OperatorRow[] {
    return this.s.list.all() as OperatorRow[];
  }
  setPassword(name: string, passwordHash: string): boolean {
    return this.s.setPassword.run({ name, passwordHash }).changes === 1;
  }
  setRole(name: string, role: OperatorRole): boolean {
    return this.s.setRole.run({ name, role }).changes === 1;
  }
  remove(name: string): boolean {
    return this.s.remove.run({ name }).changes === 1;
  }
}

export class SqlitePortalSessions implements Immediate<PortalSessionStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT INTO portal_sessions (token_hash, operator, csrf_token, created_at, last_seen_at)
        VALUES (@tokenHash, @operator, @csrfToken, @createdAt, @lastSeenAt)`,
      get: `SELECT ${SESSION_COLUMNS} FROM portal_sessions WHERE token_hash = @tokenHash`,
      touch: 'UPDATE portal_sessions SET last_seen_at = @at WHERE token_hash = @tokenHash',
      remove: 'DELETE FROM portal_sessions WHERE token_hash = @tokenHash',
      removeOperator: 'DELETE FROM portal_sessions WHERE operator = @name',
      prune: 'DELETE FROM portal_sessions WHERE last_seen_at < @idleBefore OR created_at < @createdBefore',
    });
  }
  insert(row: PortalSessionRow): void {
    this.s.insert.run(row);
  }
  get(tokenHash: string): PortalSessionRow | undefined {
    return this.s.get.get({ tokenHash }) as PortalSessionRow | undefined;
  }
  touch(tokenHash: string, at: number): void {
    this.s.touch.run({ tokenHash, at });
  }
  remove(tokenHash: string): void {
    this.s.remove.run({ tokenHash });
  }
  removeOperator(name: string): number {
    return this.s.removeOperator.run({ name }).changes;
  }
  prune(idleBefore: number, createdBefore: number): number {
    return this.s.prune.run({ idleBefore, createdBefore }).changes;
  }
}

export class SqliteAudit implements Immediate<AuditStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      record: `INSERT INTO audit_log (at, operator, action, target, outcome, detail)
        VALUES (@at, @operator, @action, @target, @outcome, @detail)`,
      forTarget: `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE target = @target ORDER BY seq DESC LIMIT @limit`,
      recent: `SELECT ${AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT @limit`,
    });
  }
  record(row: Omit<AuditRow, 'seq'>): void {
    this.s.record.run(row);
  }
  forTarget(target: string, limit: number): AuditRow[] {
    return this.s.forTarget.all({ target, limit }) as AuditRow[];
  }
  recent(limit: number): AuditRow[] {
    return this.s.recent.all({ limit }) as AuditRow[];
  }
}
