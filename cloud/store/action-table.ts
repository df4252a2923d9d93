import type Database from 'better-sqlite3';
import type { ActionState, ActionType } from '../../protocol/actions.js';

/** SQL for terminal actions and published releases in the cloud's store. */
export const ACTIONS_MIGRATION = `
  CREATE TABLE actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- delivery order
    id TEXT NOT NULL UNIQUE,
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    type TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    step TEXT,
    percent INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    delivered_at INTEGER
  );
  CREATE INDEX actions_by_terminal ON actions(terminal_id, seq);
  CREATE INDEX actions_queued ON actions(expires_at) WHERE status = 'queued';
  CREATE TABLE releases (
    version TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    signature TEXT NOT NULL,
    file TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  ALTER TABLE terminals ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
`;

export interface CloudActionRow {
  seq: number;
  id: string;
  terminalId: string;
  type: ActionType;
  params: string;
  status: ActionState;
  reason: string | null;
  step: string | null;
  percent: number | null;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  deliveredAt: number | null;
}

/** A release may carry the release key's permission to install it over a newer version. */
export const DOWNGRADE_MIGRATION = `
  ALTER TABLE releases ADD COLUMN downgrade_signature TEXT;
  ALTER TABLE releases ADD COLUMN downgrade_from TEXT;
`;

export interface ReleaseRow {
  version: string;
  sha256: string;
  size: number;
  signature: string;
  file: string;
  createdAt: number;
  downgradeSignature?: string | null;
  downgradeFrom?: string | null;
}

const COLUMNS = `seq, id, terminal_id AS terminalId, type, params, status, reason, step, percent,
  created_at AS createdAt, updated_at AS updatedAt, expires_at AS expiresAt, delivered_at AS deliveredAt`;
const RELEASE_COLUMNS =
  'version, sha256, size, signature, file, created_at AS createdAt, downgrade_signature AS downgradeSignature, downgrade_from AS downgradeFrom';

export class CloudActionTable {
  private readonly s;

  constructor(private readonly db: Database.Database) {
    this.s = {
      insert:
        db.prepare(`INSERT INTO actions (id, terminal_id, type, params, status, created_at, updated_at, expires_at)
        VALUES (@id, @terminalId, @type, @params, 'queued', @createdAt, @createdAt, @expiresAt)`),
      get: db.prepare(`SELECT ${COLUMNS} FROM actions WHERE id = ?`),
      list: db.prepare(`SELECT ${COLUMNS} FROM actions WHERE terminal_id = ? ORDER BY seq DESC LIMIT ?`),
      queued: db.prepare(
        `SELECT ${COLUMNS} FROM actions WHERE terminal_id = ? AND status = 'queued' ORDER BY seq`,
      ),
      update:
        db.prepare(`UPDATE actions SET status = @status, reason = @reason, step = @step, percent = @percent,
        updated_at = @now, delivered_at = coalesce(delivered_at, @deliveredAt) WHERE id = @id`),
      expired: db.prepare(`SELECT ${COLUMNS} FROM actions WHERE status = 'queued' AND expires_at <= ?`),
      setLocked: db.prepare('UPDATE terminals SET locked = ? WHERE id = ?'),
      locked: db.prepare('SELECT locked FROM terminals WHERE id = ?'),
      insertRelease: db.prepare(`INSERT INTO releases (version, sha256, size, signature, file, created_at)
        VALUES (@version, @sha256, @size, @signature, @file, @createdAt)`),
      getRelease: db.prepare(`SELECT ${RELEASE_COLUMNS} FROM releases WHERE version = ?`),
      listReleases: db.prepare(`SELECT ${RELEASE_COLUMNS} FROM releases ORDER BY created_at DESC, version`),
    };
  }

  insert(
    row: Pick<CloudActionRow, 'id' | 'terminalId' | 'type' | 'params' | 'createdAt' | 'expiresAt'>,
  ): void {
    this.s.insert.run(row);
  }

  get(id: string): CloudActionRow | undefined {
    return this.s.get.get(id) as CloudActionRow | undefined;
  }

  list(terminalId: string, limit: number): CloudActionRow[] {
    return this.s.list.all(terminalId, limit) as CloudActionRow[];
  }

  queued(terminalId: string): CloudActionRow[] {
    return this.s.queued.all(terminalId) as CloudActionRow[];
  }

  update(
    id: string,
    u: Pick<CloudActionRow, 'status' | 'reason' | 'step' | 'percent'>,
    now: number,
    delivered: boolean,
  ): void {
    this.s.update.run({ id, ...u, now, deliveredAt: delivered ? now : null });
  }

  expired(now: number): CloudActionRow[] {
    return this.s.expired.all(now) as CloudActionRow[];
  }

  setLocked(terminalId: string, locked: boolean): void {
    this.s.setLocked.run(locked ? 1 : 0, terminalId);
  }

  locked(terminalId: string): boolean {
    return (this.s.locked.get(terminalId) as { locked: number } | undefined)?.locked === 1;
  }

  insertRelease(row: ReleaseRow): void {
    this.s.insertRelease.run(row);
  }

  setDowngradeSignature(version: string, signature: string, from: string): void {
    this.db
      .prepare('UPDATE releases SET downgrade_signature = ?, downgrade_from = ? WHERE version = ?')
      .run(signature, from, version);
  }

  getRelease(version: string): ReleaseRow | undefined {
    return this.s.getRelease.get(version) as ReleaseRow | undefined;
  }

  listReleases(): ReleaseRow[] {
    return this.s.listReleases.all() as ReleaseRow[];
  }
}
