import Database from 'better-sqlite3';
import { migrate } from '../protocol/sqlite-migrations.js';
import type { LinkSnapshot, LinkState } from './link-state.js';

/**
 * The agent's one SQLite file (WAL, synchronous=FULL), opened once by the daemon. Migrations are
 * numbered here and applied at start, each in a transaction.
 */
const MIGRATIONS = [
  `
  CREATE TABLE link_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    since TEXT NOT NULL,
    reason TEXT,
    last_heartbeat_at TEXT,
    last_online_at TEXT
  );
  INSERT INTO link_status (id, state, since) VALUES (1, 'offline', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface StoredLinkStatus extends LinkSnapshot {
  lastOnlineAt: string | null;
}

const LINK_COLUMNS = `state, since, reason, last_heartbeat_at AS lastHeartbeatAt, last_online_at AS lastOnlineAt`;

/** What diagnostics and the CLI may read while the daemon is down (or running): read-only. */
export interface AgentStoreReader {
  linkStatus(): StoredLinkStatus;
  close(): void;
}

export class AgentStore implements AgentStoreReader {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // An acknowledgement to the POS app or the cloud depends on a commit being on disk.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db, MIGRATIONS);
    this.stmt = {
      link: this.db.prepare(`SELECT ${LINK_COLUMNS} FROM link_status WHERE id = 1`),
      setState: this.db.prepare(
        `UPDATE link_status SET state = @state, since = @since, reason = @reason,
         last_online_at = CASE WHEN @state = 'online' THEN @since ELSE last_online_at END WHERE id = 1`,
      ),
      heartbeat: this.db.prepare('UPDATE link_status SET last_heartbeat_at = ? WHERE id = 1'),
    };
  }

  linkStatus(): StoredLinkStatus {
    return this.stmt.link.get() as StoredLinkStatus;
  }

  recordLinkState(state: LinkState, since: string, reason: string | null): void {
    this.stmt.setState.run({ state, since, reason });
  }

  recordHeartbeat(at: string): void {
    this.stmt.heartbeat.run(at);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Opens the store read-only for the CLI and diagnostics; null when it does not exist yet. Never blocks the daemon. */
export function openStoreReadOnly(file: string): AgentStoreReader | null {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    if (/unable to open|does not exist/i.test((err as Error).message)) return null;
    throw err;
  }
  const version = Number(db.pragma('user_version', { simple: true }));
  if (version < 1) {
    db.close();
    return null;
  }
  const link = db.prepare(`SELECT ${LINK_COLUMNS} FROM link_status WHERE id = 1`);
  return {
    linkStatus: () => link.get() as StoredLinkStatus,
    close: () => db.close(),
  };
}
