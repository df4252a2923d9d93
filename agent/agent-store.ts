import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { TerminalConfig } from '../protocol/config-schema.js';
import type { AgentToCloudAction } from '../protocol/messages.js';
import {
  type Migration,
  type MigrationResult,
  migrate,
  oldestReaderAfter,
  readSchemaInfo,
} from '../protocol/sqlite-migrations.js';
import type { StoreSchemaNote } from '../release/layout.js';
import { ACTION_MIGRATION, ActionStore, type LockState, lockReader } from './actions/action-store.js';
import type { LinkSnapshot, LinkState } from './link/link-state.js';
import { withoutFsync } from './sqlite-durability.js';
import { snapshotName } from './store-schema.js';
import { LEGACY_FINGERPRINT, TransactionStore } from './transactions/transaction-store.js';

/**
 * The agent's one SQLite file (WAL, synchronous=FULL), opened once by the daemon. Migrations are
 * numbered here and applied at start, each in a transaction. A step older releases cannot live with
 * (it changes or drops what they read) is written `{sql, oldestReader}` (protocol/sqlite-migrations.ts):
 * the store then takes a snapshot before it, for a rollback (agent/store-schema.ts). Every step so
 * far is additive: any release since the record existed opens the store of a newer one.
 */
const MIGRATIONS: Migration[] = [
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
  `
  CREATE TABLE applied_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    config TEXT NOT NULL,
    applied_at TEXT NOT NULL
  );
  CREATE TABLE config_rejection (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    errors TEXT NOT NULL,
    rejected_at TEXT NOT NULL
  );
  -- What the agent must tell the cloud, written before it is sent, deleted when the cloud answers.
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE transactions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, -- the forwarding order; AUTOINCREMENT never reuses a number
    id TEXT NOT NULL UNIQUE,               -- the POS app's idempotency key
    amount INTEGER NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state TEXT NOT NULL,
    offline INTEGER NOT NULL,
    body_hash TEXT NOT NULL,
    sealed_card TEXT,                      -- sealed to the cloud's data key; never in clear
    reason TEXT,
    reported INTEGER NOT NULL DEFAULT 0    -- an expired transaction the cloud was told about
  );
  CREATE INDEX transactions_state ON transactions(state, seq);
  -- What the cloud does not have yet, in forwarding order. The WHERE is the exact predicate of
  -- the forwarding and summary queries, so SQLite walks this small index instead of the table.
  CREATE INDEX transactions_unsent ON transactions(seq)
    WHERE state IN ('stored', 'sending') OR (state = 'expired' AND reported = 0);
  CREATE TABLE device_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL);
  `,
  `
  -- The last time the cloud told us (Hello answer): a device without a real-time clock that boots
  -- in 1970 can tell that its clock is behind it.
  ALTER TABLE link_status ADD COLUMN trusted_time TEXT;
  `,
  ACTION_MIGRATION,
  `
  -- The cloud deactivated this terminal (Deactivate, or 403 terminal_deactivated at the link): no
  -- link and no sales for that terminal id until the device is enrolled again (a new identity).
  CREATE TABLE deactivation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    terminal_id TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL
  );
  `,
];
const DEACTIVATION_VERSION = MIGRATIONS.length;

/** The schema this software knows (the build writes it into the release: dist/bin/store-schema.json). */
export const AGENT_STORE_SCHEMA = MIGRATIONS.length;
const DEACTIVATION_SQL = 'SELECT terminal_id AS terminalId, at, reason FROM deactivation WHERE id = 1';

/** The cloud deactivated the terminal with this id. */
export interface Deactivation {
  terminalId: string;
  at: string;
  reason: string;
}

export interface StoredLinkStatus extends LinkSnapshot {
  lastOnlineAt: string | null;
  trustedTime: string | null;
}

export interface AppliedConfig {
  version: number;
  config: TerminalConfig;
  appliedAt: string;
}

export interface ConfigRejection {
  version: number;
  errors: { path: string; message: string }[];
  rejectedAt: string;
}

export interface OutboxItem {
  seq: number;
  action: AgentToCloudAction;
  payload: unknown;
}

const LINK_COLUMNS = `state, since, reason, last_heartbeat_at AS lastHeartbeatAt, last_online_at AS lastOnlineAt,
  trusted_time AS trustedTime`;

/** What diagnostics and the CLI may read while the daemon is down (or running): read-only. */
export interface AgentStoreReader {
  linkStatus(): StoredLinkStatus;
  appliedConfig(): AppliedConfig | null;
  /** The last config the agent refused, and why (null if none). */
  lastRejection(): ConfigRejection | null;
  /** `PRAGMA quick_check`: "ok", or what is damaged. */
  integrity(): string;
  /** Messages written for the cloud and not yet answered by it (config acks…). */
  outboxDepth(): number;
  /** Read methods only: the connection is read-only. Null before the transactions migration. */
  readonly transactions: Pick<TransactionStore, 'get' | 'list' | 'summary'> | null;
  /** Whether the cloud locked the terminal (false before the actions migration). */
  lock(): LockState;
  /** When and why the cloud deactivated a terminal of this device (null if it never did). */
  deactivation(): Deactivation | null;
  close(): void;
}

const APPLIED_SQL = 'SELECT version, config, applied_at AS appliedAt FROM applied_config WHERE id = 1';
const REJECTION_SQL = 'SELECT version, errors, rejected_at AS rejectedAt FROM config_rejection WHERE id = 1';
function readRejection(
  row: { version: number; errors: string; rejectedAt: string } | undefined,
): ConfigRejection | null {
  return row
    ? {
        version: row.version,
        errors: JSON.parse(row.errors) as ConfigRejection['errors'],
        rejectedAt: row.rejectedAt,
      }
    : null;
}
function quickCheck(db: Database.Database): string {
  const rows = db.pragma('quick_check') as { quick_check: string }[];
  return rows.map((r) => r.quick_check).join('; ');
}
function readApplied(
  row: { version: number; config: string; appliedAt: string } | undefined,
): AppliedConfig | null {
  return row
    ? { version: row.version, config: JSON.parse(row.config) as TerminalConfig, appliedAt: row.appliedAt }
    : null;
}

export class AgentStore implements AgentStoreReader {
  private readonly db: Database.Database;
  private readonly stmt;

  readonly transactions: TransactionStore;
  readonly actions: ActionStore;

  /** The schema after opening, and the snapshot taken before a migration older releases cannot open (null: none). */
  readonly schema: MigrationResult;
  readonly snapshot: StoreSchemaNote['snapshot'];

  constructor(
    file: string,
    options: {
      maxBytes?: number;
      /** Another release's steps (tests of a rollback across a migration); this release's by default. */
      migrations?: readonly Migration[];
      now?: () => number;
    } = {},
  ) {
    this.db = openChecked(file);
    this.db.pragma('journal_mode = WAL');
    // An acknowledgement to the POS app or the cloud depends on a commit being on disk.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    // SQLite's own default page cache, 2 MB: better-sqlite3 builds SQLite with 16 MB, which a
    // growing queue fills page by page — the idle daemon's RSS grew ~5 MB in 30 minutes of sales
    // that way (README, "Memory over time"), for a working set of a few recent rows and indexes.
    this.db.pragma('cache_size = -2000');
    // Deleted content is overwritten, not left in free pages (the store once held card-derived hashes).
    this.db.pragma('secure_delete = ON');
    const migrations = options.migrations ?? MIGRATIONS;
    this.snapshot = this.snapshotBeforeBreakingSteps(file, migrations, options.now ?? Date.now);
    this.schema = migrate(this.db, migrations);
    this.eraseCardDerivedData();
    if (options.maxBytes) {
      // A full store refuses new writes (SQLITE_FULL → 507 storage_full) and keeps what it holds.
      const pageSize = Number(this.db.pragma('page_size', { simple: true }));
      this.db.pragma(`max_page_count = ${Math.max(16, Math.floor(options.maxBytes / pageSize))}`);
    }
    this.transactions = new TransactionStore(this.db);
    this.stmt = {
      link: this.db.prepare(`SELECT ${LINK_COLUMNS} FROM link_status WHERE id = 1`),
      setState: this.db.prepare(
        `UPDATE link_status SET state = @state, since = @since, reason = @reason,
         last_online_at = CASE WHEN @state = 'online' THEN @since ELSE last_online_at END WHERE id = 1`,
      ),
      heartbeat: this.db.prepare('UPDATE link_status SET last_heartbeat_at = ? WHERE id = 1'),
      trusted: this.db.prepare('UPDATE link_status SET trusted_time = ? WHERE id = 1'),
      applied: this.db.prepare(APPLIED_SQL),
      setApplied: this.db.prepare(
        'INSERT OR REPLACE INTO applied_config (id, version, config, applied_at) VALUES (1, ?, ?, ?)',
      ),
      rejection: this.db.prepare(REJECTION_SQL),
      setRejection: this.db.prepare(
        'INSERT OR REPLACE INTO config_rejection (id, version, errors, rejected_at) VALUES (1, ?, ?, ?)',
      ),
      enqueue: this.db.prepare('INSERT INTO outbox (action, payload, created_at) VALUES (?, ?, ?)'),
      outbox: this.db.prepare('SELECT seq, action, payload FROM outbox ORDER BY seq LIMIT ?'),
      dequeue: this.db.prepare('DELETE FROM outbox WHERE seq = ?'),
      deactivation: this.db.prepare(DEACTIVATION_SQL),
      setDeactivation: this.db.prepare(
        'INSERT OR REPLACE INTO deactivation (id, terminal_id, at, reason) VALUES (1, ?, ?, ?)',
      ),
    };
    this.actions = new ActionStore(this.db, (action, payload, at) => this.enqueue(action, payload, at));
  }

  lock(): LockState {
    return this.actions.lock();
  }

  deactivation(): Deactivation | null {
    return (this.stmt.deactivation.get() as Deactivation | undefined) ?? null;
  }

  recordDeactivation(d: Deactivation): void {
    this.stmt.setDeactivation.run(d.terminalId, d.at, d.reason);
  }

  appliedConfig(): AppliedConfig | null {
    return readApplied(
      this.stmt.applied.get() as { version: number; config: string; appliedAt: string } | undefined,
    );
  }

  lastRejection(): ConfigRejection | null {
    return readRejection(this.stmt.rejection.get() as Parameters<typeof readRejection>[0]);
  }

  integrity(): string {
    return quickCheck(this.db);
  }

  /** Applies a config and queues its ack in one transaction: a crash leaves both or neither. */
  applyConfig(version: number, config: TerminalConfig, at: string, ack: unknown): void {
    this.db.transaction(() => {
      this.stmt.setApplied.run(version, JSON.stringify(config), at);
      this.stmt.enqueue.run('ConfigApplied', JSON.stringify(ack), at);
    })();
  }

  /** Records a refused config and queues the refusal for the cloud, in one transaction. */
  rejectConfig(version: number, errors: ConfigRejection['errors'], at: string, ack: unknown): void {
    this.db.transaction(() => {
      this.stmt.setRejection.run(version, JSON.stringify(errors), at);
      this.stmt.enqueue.run('ConfigApplied', JSON.stringify(ack), at);
    })();
  }

  enqueue(action: AgentToCloudAction, payload: unknown, at: string): void {
    this.stmt.enqueue.run(action, JSON.stringify(payload), at);
  }

  /** The oldest undelivered messages, in the order they were written. */
  outbox(limit = 100): OutboxItem[] {
    return (
      this.stmt.outbox.all(limit) as { seq: number; action: AgentToCloudAction; payload: string }[]
    ).map((r) => ({
      seq: r.seq,
      action: r.action,
      payload: JSON.parse(r.payload) as unknown,
    }));
  }

  outboxDepth(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n;
  }

  delivered(seq: number): void {
    this.stmt.dequeue.run(seq);
  }

  /**
   * Earlier versions kept, per sale, an HMAC over the request including the full card number,
   * keyed with a secret in this same file: with a BIN and the last four digits, the middle digits
   * could be brute-forced against it. Erase both (idempotent; not a schema change, so an older
   * release can still open the store), then rewrite the file and the WAL so no page keeps them.
   */
  /**
   * Before steps that leave a store the releases of its present schema cannot open: a copy of the
   * store as it is (`VACUUM INTO`, consistent, no WAL), for the boot guard to put back should this
   * release be rolled back before it took a sale.
   */
  private snapshotBeforeBreakingSteps(
    file: string,
    migrations: readonly Migration[],
    now: () => number,
  ): StoreSchemaNote['snapshot'] {
    const before = readSchemaInfo(this.db);
    if (before.version === 0 || before.version >= migrations.length) return null;
    if (oldestReaderAfter(migrations, migrations.length) <= before.version) return null;
    const name = snapshotName(file, migrations.length);
    const target = join(dirname(file), name);
    rmSync(target, { force: true });
    this.db.prepare('VACUUM INTO ?').run(target);
    return {
      file: name,
      version: before.version,
      oldestReader: before.oldestReader,
      takenAt: new Date(now()).toISOString(),
    };
  }

  private eraseCardDerivedData(): void {
    const erased = this.db.transaction(() => {
      const keys = this.db.prepare("DELETE FROM device_secrets WHERE name = 'idempotency'").run().changes;
      const rows = this.db
        .prepare(
          `UPDATE transactions SET body_hash = '${LEGACY_FINGERPRINT}' WHERE body_hash NOT LIKE 'v2:%' AND body_hash <> '${LEGACY_FINGERPRINT}'`,
        )
        .run().changes;
      return keys + rows;
    })();
    if (erased > 0) {
      this.db.exec('VACUUM');
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    }
  }

  linkStatus(): StoredLinkStatus {
    return this.stmt.link.get() as StoredLinkStatus;
  }

  // The link's state, its last heartbeat and the cloud's last time are what status shows; the
  // daemon starts from none of them. A power cut may lose the latest (an older one is shown, the
  // clock check has an older floor), so they are committed without an fsync: each was one on the
  // way to Online (agent/sqlite-durability.ts).
  recordLinkState(state: LinkState, since: string, reason: string | null): void {
    withoutFsync(this.db, () => this.stmt.setState.run({ state, since, reason }));
  }

  recordHeartbeat(at: string): void {
    withoutFsync(this.db, () => this.stmt.heartbeat.run(at));
  }

  recordTrustedTime(at: string): void {
    withoutFsync(this.db, () => this.stmt.trusted.run(at));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

export class StoreDamagedError extends Error {
  override readonly name = 'StoreDamagedError';
}

/**
 * Opens the store and checks it before anything is written: a damaged or foreign file is reported
 * with what to do, and left exactly as it is (it may hold unsent transactions).
 */
function openChecked(file: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(file);
    const verdict = quickCheck(db);
    if (verdict !== 'ok') throw new Error(verdict);
    return db;
  } catch (err) {
    db?.close();
    // Only a damaged or foreign file is "damaged"; anything else (permissions, a missing dir) is itself.
    const code = (err as { code?: string }).code;
    if (code !== undefined && !/^SQLITE_(NOTADB|CORRUPT)/.test(code)) throw err;
    throw new StoreDamagedError(
      `the store ${file} is damaged or is not a posagent store (${(err as Error).message}); it was left untouched — do not delete it (it may hold unsent transactions): run posagent diagnostics --bundle FILE and escalate`,
    );
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
  const link = db.prepare(
    `SELECT ${version >= 4 ? LINK_COLUMNS : `${LINK_COLUMNS.replace(/,\s*trusted_time AS trustedTime/, '')}, NULL AS trustedTime`} FROM link_status WHERE id = 1`,
  );
  const applied = version >= 2 ? db.prepare(APPLIED_SQL) : null;
  const rejection = version >= 2 ? db.prepare(REJECTION_SQL) : null;
  return {
    linkStatus: () => link.get() as StoredLinkStatus,
    appliedConfig: () =>
      readApplied(applied?.get() as { version: number; config: string; appliedAt: string } | undefined),
    lastRejection: () => readRejection(rejection?.get() as Parameters<typeof readRejection>[0]),
    integrity: () => quickCheck(db),
    transactions: version >= 3 ? new TransactionStore(db) : null,
    lock:
      version >= 5
        ? lockReader(db)
        : () => ({ locked: false, since: new Date(0).toISOString(), actionId: null }),
    outboxDepth: () =>
      version >= 2 ? (db.prepare('SELECT count(*) AS n FROM outbox').get() as { n: number }).n : 0,
    deactivation: () =>
      version >= DEACTIVATION_VERSION
        ? ((db.prepare(DEACTIVATION_SQL).get() as Deactivation | undefined) ?? null)
        : null,
    close: () => db.close(),
  };
}
