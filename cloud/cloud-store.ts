import Database from 'better-sqlite3';
import { migrate } from '../protocol/sqlite-migrations.js';

/** The reference cloud's own SQLite: locations, enrollment codes, terminals. */
const MIGRATIONS = [
  `
  CREATE TABLE locations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE enrollment_codes (
    code TEXT PRIMARY KEY,
    location_id TEXT NOT NULL REFERENCES locations(id),
    terminal_name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    terminal_id TEXT
  );
  CREATE TABLE terminals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    location_id TEXT NOT NULL REFERENCES locations(id),
    model TEXT,
    serial_number TEXT,
    software_version TEXT,
    created_at INTEGER NOT NULL,
    deactivated_at INTEGER,
    cert_fingerprint TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    cert_not_after INTEGER NOT NULL,
    last_seen INTEGER,
    closed_cleanly INTEGER NOT NULL DEFAULT 0,
    boot_id TEXT,
    battery_level INTEGER,
    health TEXT
  );
  CREATE INDEX terminals_location ON terminals(location_id, seq);
  `,
  `
  CREATE TABLE location_configs (
    location_id TEXT PRIMARY KEY REFERENCES locations(id),
    template TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE terminal_configs (
    terminal_id TEXT PRIMARY KEY REFERENCES terminals(id),
    overrides TEXT NOT NULL,
    desired TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_version INTEGER,
    status TEXT NOT NULL,
    errors TEXT,
    updated_at INTEGER NOT NULL
  );
  -- One counter for every config version the cloud hands out: versions only ever go up.
  CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  INSERT INTO counters (name, value) VALUES ('config_version', 0);
  `,
  `
  CREATE TABLE transactions (
    rseq INTEGER PRIMARY KEY AUTOINCREMENT, -- the order the cloud received them in
    terminal_id TEXT NOT NULL REFERENCES terminals(id),
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    offline INTEGER NOT NULL,
    expired INTEGER NOT NULL,
    card_last4 TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    result_delivered INTEGER NOT NULL DEFAULT 0,
    deliveries INTEGER NOT NULL DEFAULT 1,
    UNIQUE (terminal_id, id)
  );
  CREATE INDEX transactions_undelivered ON transactions(terminal_id, result_delivered, rseq);
  `,
];

export interface CloudTransactionRow {
  rseq: number;
  terminalId: string;
  id: string;
  seq: number;
  amount: number;
  currency: string;
  createdAt: string;
  receivedAt: number;
  offline: number;
  expired: number;
  cardLast4: string | null;
  status: 'authorised' | 'declined' | 'expired' | 'invalid';
  reason: string | null;
  resultDelivered: number;
  deliveries: number;
}

const TX_COLUMNS = `rseq, terminal_id AS terminalId, id, seq, amount, currency, created_at AS createdAt,
  received_at AS receivedAt, offline, expired, card_last4 AS cardLast4, status, reason,
  result_delivered AS resultDelivered, deliveries`;

export interface TerminalConfigRow {
  terminalId: string;
  overrides: string;
  desired: string;
  version: number;
  appliedVersion: number | null;
  status: 'pending' | 'applied' | 'rejected';
  errors: string | null;
  updatedAt: number;
}

export interface LocationRow {
  id: string;
  name: string;
  createdAt: number;
}
export interface EnrollmentCodeRow {
  code: string;
  locationId: string;
  terminalName: string;
  createdAt: number;
  expiresAt: number;
  usedAt: number | null;
  terminalId: string | null;
}
export interface TerminalRow {
  seq: number;
  id: string;
  name: string;
  locationId: string;
  model: string | null;
  serialNumber: string | null;
  softwareVersion: string | null;
  createdAt: number;
  deactivatedAt: number | null;
  certFingerprint: string;
  certSerial: string;
  certNotAfter: number;
  lastSeen: number | null;
  closedCleanly: number;
  bootId: string | null;
  batteryLevel: number | null;
  health: string | null;
}
export type NewTerminal = Pick<
  TerminalRow,
  | 'id'
  | 'name'
  | 'locationId'
  | 'model'
  | 'serialNumber'
  | 'softwareVersion'
  | 'createdAt'
  | 'certFingerprint'
  | 'certSerial'
  | 'certNotAfter'
>;

const TERMINAL_COLUMNS = `seq, id, name, location_id AS locationId, model, serial_number AS serialNumber,
  software_version AS softwareVersion, created_at AS createdAt, deactivated_at AS deactivatedAt,
  cert_fingerprint AS certFingerprint, cert_serial AS certSerial, cert_not_after AS certNotAfter,
  last_seen AS lastSeen, closed_cleanly AS closedCleanly, boot_id AS bootId, battery_level AS batteryLevel, health`;
const CODE_COLUMNS = `code, location_id AS locationId, terminal_name AS terminalName, created_at AS createdAt,
  expires_at AS expiresAt, used_at AS usedAt, terminal_id AS terminalId`;

export class CloudStore {
  private readonly db: Database.Database;
  private readonly stmt;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db, MIGRATIONS);
    const d = this.db;
    this.stmt = {
      insertLocation: d.prepare('INSERT INTO locations (id, name, created_at) VALUES (?, ?, ?)'),
      getLocation: d.prepare('SELECT id, name, created_at AS createdAt FROM locations WHERE id = ?'),
      insertCode: d.prepare(
        'INSERT INTO enrollment_codes (code, location_id, terminal_name, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
      ),
      getCode: d.prepare(`SELECT ${CODE_COLUMNS} FROM enrollment_codes WHERE code = ?`),
      useCode: d.prepare(
        'UPDATE enrollment_codes SET used_at = ?, terminal_id = ? WHERE code = ? AND used_at IS NULL',
      ),
      insertTerminal:
        d.prepare(`INSERT INTO terminals (id, name, location_id, model, serial_number, software_version,
        created_at, cert_fingerprint, cert_serial, cert_not_after)
        VALUES (@id, @name, @locationId, @model, @serialNumber, @softwareVersion, @createdAt, @certFingerprint,
        @certSerial, @certNotAfter)`),
      getTerminal: d.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = ?`),
      listTerminals: d.prepare(`SELECT ${TERMINAL_COLUMNS} FROM terminals
        WHERE (@locationId IS NULL OR location_id = @locationId) ORDER BY seq DESC`),
      hello: d.prepare(`UPDATE terminals SET last_seen = @now, closed_cleanly = 0, boot_id = @bootId,
        software_version = @softwareVersion WHERE id = @id`),
      heartbeat:
        d.prepare(`UPDATE terminals SET last_seen = @now, closed_cleanly = 0, battery_level = @batteryLevel,
        health = @health WHERE id = @id`),
      disconnected: d.prepare('UPDATE terminals SET closed_cleanly = ? WHERE id = ?'),
      insertTx:
        d.prepare(`INSERT OR IGNORE INTO transactions (terminal_id, id, seq, amount, currency, created_at,
        received_at, offline, expired, card_last4, status, reason) VALUES (@terminalId, @id, @seq, @amount, @currency,
        @createdAt, @receivedAt, @offline, @expired, @cardLast4, @status, @reason)`),
      txRepeat: d.prepare(
        'UPDATE transactions SET deliveries = deliveries + 1 WHERE terminal_id = ? AND id = ?',
      ),
      getTx: d.prepare(`SELECT ${TX_COLUMNS} FROM transactions WHERE terminal_id = ? AND id = ?`),
      undelivered:
        d.prepare(`SELECT ${TX_COLUMNS} FROM transactions WHERE terminal_id = ? AND result_delivered = 0
        AND status IN ('authorised', 'declined') ORDER BY rseq LIMIT ?`),
      delivered: d.prepare('UPDATE transactions SET result_delivered = 1 WHERE terminal_id = ? AND id = ?'),
      listTx:
        d.prepare(`SELECT ${TX_COLUMNS} FROM transactions WHERE (@terminalId IS NULL OR terminal_id = @terminalId)
        ORDER BY rseq`),
      template: d.prepare('SELECT template FROM location_configs WHERE location_id = ?'),
      setTemplate: d.prepare(
        'INSERT OR REPLACE INTO location_configs (location_id, template, updated_at) VALUES (?, ?, ?)',
      ),
      terminalIdsAt: d.prepare('SELECT id FROM terminals WHERE location_id = ? ORDER BY seq'),
      terminalConfig:
        d.prepare(`SELECT terminal_id AS terminalId, overrides, desired, version, applied_version AS appliedVersion,
        status, errors, updated_at AS updatedAt FROM terminal_configs WHERE terminal_id = ?`),
      nextVersion: d.prepare(
        "UPDATE counters SET value = value + 1 WHERE name = 'config_version' RETURNING value",
      ),
      setDesired:
        d.prepare(`INSERT INTO terminal_configs (terminal_id, overrides, desired, version, status, updated_at)
        VALUES (@terminalId, @overrides, @desired, @version, 'pending', @now)
        ON CONFLICT(terminal_id) DO UPDATE SET overrides = @overrides, desired = @desired, version = @version,
        status = 'pending', errors = NULL, updated_at = @now`),
      ack: d.prepare(`UPDATE terminal_configs SET status = @status, errors = @errors, applied_version = @appliedVersion,
        updated_at = @now WHERE terminal_id = @terminalId AND version = @version`),
      appliedOnly: d.prepare(`UPDATE terminal_configs SET applied_version = @appliedVersion, updated_at = @now
        WHERE terminal_id = @terminalId`),
    };
  }

  /** Stores a forwarded transaction once per (terminal, id); a repeat only counts the delivery. */
  recordTransaction(
    row: Omit<CloudTransactionRow, 'rseq' | 'resultDelivered' | 'deliveries'>,
  ): 'received' | 'duplicate' {
    const inserted = this.stmt.insertTx.run(row).changes === 1;
    if (!inserted) this.stmt.txRepeat.run(row.terminalId, row.id);
    return inserted ? 'received' : 'duplicate';
  }

  transaction(fn: () => void): void {
    this.db.transaction(fn)();
  }

  getTransaction(terminalId: string, id: string): CloudTransactionRow | undefined {
    return this.stmt.getTx.get(terminalId, id) as CloudTransactionRow | undefined;
  }

  undeliveredResults(terminalId: string, limit: number): CloudTransactionRow[] {
    return this.stmt.undelivered.all(terminalId, limit) as CloudTransactionRow[];
  }

  markResultsDelivered(terminalId: string, ids: string[]): void {
    this.db.transaction(() => {
      for (const id of ids) this.stmt.delivered.run(terminalId, id);
    })();
  }

  listTransactions(terminalId: string | null): CloudTransactionRow[] {
    return this.stmt.listTx.all({ terminalId }) as CloudTransactionRow[];
  }

  getTemplate(locationId: string): string | null {
    return (this.stmt.template.get(locationId) as { template: string } | undefined)?.template ?? null;
  }

  terminalIdsAt(locationId: string): string[] {
    return (this.stmt.terminalIdsAt.all(locationId) as { id: string }[]).map((r) => r.id);
  }

  getTerminalConfig(terminalId: string): TerminalConfigRow | undefined {
    return this.stmt.terminalConfig.get(terminalId) as TerminalConfigRow | undefined;
  }

  /**
   * Sets desired configs with fresh versions, in one transaction (a template change touches
   * every terminal of its location). `template` is stored first when given.
   */
  setDesiredConfigs(
    now: number,
    changes: { terminalId: string; overrides: string; desired: string }[],
    template?: { locationId: string; template: string },
  ): Map<string, number> {
    const versions = new Map<string, number>();
    this.db.transaction(() => {
      if (template) this.stmt.setTemplate.run(template.locationId, template.template, now);
      for (const c of changes) {
        const version = (this.stmt.nextVersion.get() as { value: number }).value;
        this.stmt.setDesired.run({ ...c, version, now });
        versions.set(c.terminalId, version);
      }
    })();
    return versions;
  }

  /** Records a terminal's answer to a push; an answer about an outdated version only updates what it runs. */
  recordConfigAck(
    terminalId: string,
    version: number,
    status: 'applied' | 'rejected',
    errors: string | null,
    appliedVersion: number | null,
    now: number,
  ): void {
    const changed = this.stmt.ack.run({ terminalId, version, status, errors, appliedVersion, now }).changes;
    if (changed === 0) this.stmt.appliedOnly.run({ terminalId, appliedVersion, now });
  }

  close(): void {
    this.db.close();
  }

  insertLocation(row: LocationRow): void {
    this.stmt.insertLocation.run(row.id, row.name, row.createdAt);
  }
  getLocation(id: string): LocationRow | undefined {
    return this.stmt.getLocation.get(id) as LocationRow | undefined;
  }
  insertEnrollmentCode(row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId'>): void {
    this.stmt.insertCode.run(row.code, row.locationId, row.terminalName, row.createdAt, row.expiresAt);
  }
  getEnrollmentCode(code: string): EnrollmentCodeRow | undefined {
    return this.stmt.getCode.get(code) as EnrollmentCodeRow | undefined;
  }

  /** Claims the code and creates the terminal in one transaction; false if the code was claimed meanwhile. */
  claimCodeAndCreateTerminal(code: string, terminal: NewTerminal): boolean {
    return this.db.transaction(() => {
      const claimed = this.stmt.useCode.run(terminal.createdAt, terminal.id, code).changes === 1;
      if (!claimed) return false;
      this.stmt.insertTerminal.run(terminal);
      return true;
    })();
  }

  getTerminal(id: string): TerminalRow | undefined {
    return this.stmt.getTerminal.get(id) as TerminalRow | undefined;
  }
  listTerminals(locationId: string | null): TerminalRow[] {
    return this.stmt.listTerminals.all({ locationId }) as TerminalRow[];
  }
  recordHello(id: string, now: number, bootId: string, softwareVersion: string): void {
    this.stmt.hello.run({ id, now, bootId, softwareVersion });
  }
  recordHeartbeat(id: string, now: number, batteryLevel: number | null, health: string): void {
    this.stmt.heartbeat.run({ id, now, batteryLevel, health });
  }
  recordDisconnect(id: string, closedCleanly: boolean): void {
    this.stmt.disconnected.run(closedCleanly ? 1 : 0, id);
  }
}
