import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import {
  type ActionProgress,
  type ActionState,
  type ActionStatus,
  type ActionType,
  canMove,
  type RunAction,
} from '../../protocol/actions.js';
import { canTakeUpdateStep } from './update-steps.js';

/**
 * SQL for remote actions, the lock and busy leases. Every change of an action's progress is
 * written together with the `ActionStatus` message that tells the cloud (the outbox), in one
 * transaction: the cloud hears of every step, in order, even across a crash.
 */
export interface ActionRow {
  id: string;
  type: ActionType;
  params: Record<string, unknown>;
  state: Exclude<ActionState, 'queued'>;
  step: string | null;
  reason: string | null;
  percent: number | null;
  /** Step data (the boot id before a reboot, the versions and deadline of an update…). */
  detail: Record<string, unknown>;
  receivedAt: string;
  updatedAt: string;
}

export interface ActionChange {
  state?: ActionRow['state'];
  step?: string | null;
  reason?: string | null;
  percent?: number | null;
  detail?: Record<string, unknown>;
}

export interface LockState {
  locked: boolean;
  since: string;
  actionId: string | null;
}

export interface BusyLease {
  leaseId: string;
  reason: string;
  expiresAt: string;
}

const COLUMNS = `id, type, params, state, step, reason, percent, detail, received_at AS receivedAt, updated_at AS updatedAt`;
type RawRow = Omit<ActionRow, 'params' | 'detail'> & { params: string; detail: string };
const parse = (r: RawRow | undefined): ActionRow | undefined =>
  r && { ...r, params: JSON.parse(r.params), detail: JSON.parse(r.detail) };

export const progressOf = (r: ActionRow): ActionProgress => ({
  status: r.state,
  reason: r.reason,
  step: r.step,
  percent: r.percent,
});

/** An update moves its step only as agent/actions/update-steps.ts allows (a defect otherwise). */
function refuseUpdateStep(row: ActionRow, change: Omit<ActionChange, 'state'>): void {
  if (row.type !== 'update' || change.step === undefined || change.step === null) return;
  if (!canTakeUpdateStep(row.step, change.step))
    throw new Error(`update ${row.id} cannot move from step ${row.step ?? 'none'} to ${change.step}`);
}

/** Reads the lock; works on a read-only connection too (the CLI with the daemon down). */
export function lockReader(db: Database.Database): () => LockState {
  const stmt = db.prepare('SELECT locked, since, action_id AS actionId FROM device_lock WHERE id = 1');
  return () => {
    const r = stmt.get() as { locked: number; since: string; actionId: string | null };
    return { locked: r.locked === 1, since: r.since, actionId: r.actionId };
  };
}

export class ActionStore {
  private readonly s;

  constructor(
    private readonly db: Database.Database,
    /** Writes a message for the cloud into the outbox (same connection, so inside our transactions). */
    private readonly enqueue: (action: 'ActionStatus', payload: ActionStatus, at: string) => void,
  ) {
    this.s = {
      insert: db.prepare(`INSERT INTO actions (id, type, params, state, detail, received_at, updated_at)
        VALUES (?, ?, ?, 'processing', '{}', ?, ?) ON CONFLICT (id) DO NOTHING`),
      get: db.prepare(`SELECT ${COLUMNS} FROM actions WHERE id = ?`),
      update:
        db.prepare(`UPDATE actions SET state = @state, step = @step, reason = @reason, percent = @percent,
        detail = @detail, updated_at = @at WHERE id = @id`),
      // Open: still processing, or failed on an update whose rollback has not finished.
      open: db.prepare(
        `SELECT ${COLUMNS} FROM actions WHERE state = 'processing' OR step = 'rolling_back' ORDER BY received_at, id`,
      ),
      lock: lockReader(db),
      setLock: db.prepare('UPDATE device_lock SET locked = ?, since = ?, action_id = ? WHERE id = 1'),
      addLease: db.prepare('INSERT INTO busy_leases (id, reason, expires_at) VALUES (?, ?, ?)'),
      dropLease: db.prepare('DELETE FROM busy_leases WHERE id = ?'),
      leases: db.prepare(
        'SELECT id AS leaseId, reason, expires_at AS expiresAt FROM busy_leases WHERE expires_at > ? ORDER BY expires_at',
      ),
      pruneLeases: db.prepare('DELETE FROM busy_leases WHERE expires_at <= ?'),
    };
  }

  /**
   * Records an action the cloud asked for, with its first status, before it is acknowledged.
   * A repeat of the same id changes nothing and returns the stored row (`isNew` false).
   */
  receive(a: RunAction, at: string): { row: ActionRow; isNew: boolean } {
    return this.db.transaction(() => {
      const isNew = this.s.insert.run(a.actionId, a.type, JSON.stringify(a.params), at, at).changes === 1;
      const row = this.get(a.actionId)!;
      if (isNew) this.enqueue('ActionStatus', { actionId: row.id, ...progressOf(row), at }, at);
      return { row, isNew };
    })();
  }

  get(id: string): ActionRow | undefined {
    return parse(this.s.get.get(id) as RawRow | undefined);
  }

  open(): ActionRow[] {
    return (this.s.open.all() as RawRow[]).map((r) => parse(r)!);
  }

  /**
   * Moves an action on and queues the status for the cloud, in one transaction. Throws when the
   * lifecycle does not allow it (a final action never changes). `also` runs inside the transaction.
   */
  progress(id: string, change: ActionChange, at: string, also?: () => void): ActionRow {
    return this.db.transaction(() => {
      const row = this.get(id);
      if (!row) throw new Error(`no action ${id}`);
      const state = change.state ?? row.state;
      if (!canMove(row.state, state))
        throw new Error(`action ${id} is ${row.state}; it cannot become ${state}`);
      refuseUpdateStep(row, change);
      const next = this.write(row, change, state, at);
      also?.();
      this.enqueue('ActionStatus', { actionId: id, ...progressOf(next), at }, at);
      return next;
    })();
  }

  /** Notes a step the cloud need not hear about (e.g. a finished rollback on a failed update). */
  note(id: string, change: Omit<ActionChange, 'state'>, at: string): ActionRow {
    const row = this.get(id);
    if (!row) throw new Error(`no action ${id}`);
    refuseUpdateStep(row, change);
    return this.write(row, change, row.state, at);
  }

  private write(row: ActionRow, change: ActionChange, state: ActionRow['state'], at: string): ActionRow {
    const next: ActionRow = {
      ...row,
      state,
      step: change.step === undefined ? row.step : change.step,
      reason: change.reason === undefined ? row.reason : change.reason,
      percent: change.percent === undefined ? row.percent : change.percent,
      detail: change.detail ? { ...row.detail, ...change.detail } : row.detail,
      updatedAt: at,
    };
    this.s.update.run({
      id: row.id,
      state,
      step: next.step,
      reason: next.reason,
      percent: next.percent,
      detail: JSON.stringify(next.detail),
      at,
    });
    return next;
  }

  lock(): LockState {
    return this.s.lock();
  }

  /** Locks or unlocks and completes the action that asked, in one transaction. */
  setLocked(id: string, locked: boolean, at: string): ActionRow {
    return this.progress(id, { state: 'completed', step: null, reason: null }, at, () => {
      this.s.setLock.run(locked ? 1 : 0, at, id);
    });
  }

  addLease(reason: string, expiresAt: string): BusyLease {
    const leaseId = randomUUID();
    this.s.addLease.run(leaseId, reason, expiresAt);
    return { leaseId, reason, expiresAt };
  }

  dropLease(leaseId: string): boolean {
    return this.s.dropLease.run(leaseId).changes === 1;
  }

  /** Leases still held at `at`, soonest to expire first; expired ones are deleted. */
  leases(at: string): BusyLease[] {
    this.s.pruneLeases.run(at);
    return this.s.leases.all(at) as BusyLease[];
  }
}

export const ACTION_MIGRATION = `
  -- Remote actions by the cloud's id (a repeat is answered, never run twice), the lock, busy leases.
  CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    step TEXT,
    reason TEXT,
    percent INTEGER,
    detail TEXT NOT NULL,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
  );
  CREATE TABLE device_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    locked INTEGER NOT NULL,
    since TEXT NOT NULL,
    action_id TEXT
  );
  INSERT INTO device_lock (id, locked, since) VALUES (1, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
  CREATE TABLE busy_leases (id TEXT PRIMARY KEY, reason TEXT NOT NULL, expires_at TEXT NOT NULL);
`;
