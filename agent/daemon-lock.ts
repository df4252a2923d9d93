import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/**
 * One daemon per state dir. Two daemons on one identity knock each other off the link forever,
 * so the daemon holds an exclusive lock on `<stateDir>/daemon.lock` for its whole life. The lock
 * is SQLite's (an fcntl lock in EXCLUSIVE locking mode): the kernel drops it when the process
 * ends, SIGKILL and power cuts included, so a stale lock file never blocks a start.
 */
export class DaemonLockedError extends Error {
  override readonly name = 'DaemonLockedError';
  constructor(
    readonly stateDir: string,
    readonly pid: number | null,
  ) {
    super(
      `another posagent daemon${pid ? ` (pid ${pid})` : ''} is running on the state dir ${stateDir}; only one may run per terminal — stop it first (systemctl stop posagent)`,
    );
  }
}

export interface DaemonLock {
  release(): void;
}

const lockFile = (stateDir: string) => join(stateDir, 'daemon.lock');
const pidFile = (stateDir: string) => join(stateDir, 'daemon.pid');

function heldBy(stateDir: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(pidFile(stateDir), 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** Takes the lock or throws DaemonLockedError; the state dir must exist. */
export function acquireDaemonLock(stateDir: string): DaemonLock {
  const db = new Database(lockFile(stateDir), { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    // The first write takes the EXCLUSIVE lock; in this mode it is kept until the connection closes.
    db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    db.exec('COMMIT');
  } catch (err) {
    db.close();
    if (isBusy(err)) throw new DaemonLockedError(stateDir, heldBy(stateDir));
    throw err;
  }
  // For the message a second process prints (it cannot read the locked database).
  writeFileSync(pidFile(stateDir), `${process.pid}\n`, { mode: 0o644 });
  return {
    release() {
      if (db.open) db.close();
    },
  };
}

/** Whether a daemon holds the lock on this state dir now (for commands that must not run beside it). */
export function daemonHoldsLock(stateDir: string): { held: boolean; pid: number | null } {
  let db: Database.Database;
  try {
    db = new Database(lockFile(stateDir), { timeout: 0, fileMustExist: true });
  } catch {
    return { held: false, pid: null }; // no lock file: no daemon ever ran here
  }
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return { held: false, pid: null };
  } catch (err) {
    if (isBusy(err)) return { held: true, pid: heldBy(stateDir) };
    throw err;
  } finally {
    db.close();
  }
}
