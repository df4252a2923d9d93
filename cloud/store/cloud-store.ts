import Database from 'better-sqlite3';
import { migrate } from '../../protocol/sqlite-migrations.js';
import { ACTIONS_MIGRATION, CloudActionTable, DOWNGRADE_MIGRATION } from './action-table.js';
import { ATTESTATION_MIGRATION, AttestationTable } from './attestation-table.js';
import { ENROLLMENT_LIMITS_MIGRATION, EnrollmentLimitsTable } from './enrollment-limits-table.js';

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
  `
  -- Renewal: the new certificate is pending until the terminal first connects with it; until
  -- then the old one still works, so a device that lost power mid-renewal is never locked out.
  ALTER TABLE terminals ADD COLUMN pending_fingerprint TEXT;
  ALTER TABLE terminals ADD COLUMN pending_serial TEXT;
  ALTER TABLE terminals ADD COLUMN pending_not_after INTEGER;
  ALTER TABLE terminals ADD COLUMN deactivation_reason TEXT;
  -- The status last announced to webhooks (status is derived; this is what was last said).
  ALTER TABLE terminals ADD COLUMN announced_status TEXT;
  ALTER TABLE enrollment_codes ADD COLUMN replaces TEXT;
  CREATE TABLE preregistrations (
    serial_number TEXT PRIMARY KEY,
    location_id TEXT NOT NULL REFERENCES locations(id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    claimed_at INTEGER,
    terminal_id TEXT,
    refused_claims INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE pairings (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    activation_code TEXT NOT NULL UNIQUE,
    csr TEXT NOT NULL,
    serial_number TEXT,
    model TEXT,
    software_version TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    activated_at INTEGER,
    terminal_id TEXT,
    enrollment TEXT
  );
  CREATE TABLE webhook_endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  -- The webhook outbox: an event and its deliveries are written in the transaction that caused
  -- them, so a cloud restart loses none.
  CREATE TABLE webhook_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE webhook_deliveries (
    event_seq INTEGER NOT NULL REFERENCES webhook_events(seq),
    endpoint_id TEXT NOT NULL REFERENCES webhook_endpoints(id),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at INTEGER,
    failed_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    PRIMARY KEY (event_seq, endpoint_id)
  );
  CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
  `,
  ACTIONS_MIGRATION,
  `
  -- The last diagnostics report each terminal sent (POST /v1/terminals/{id}/diagnostics).
  CREATE TABLE diagnostics_reports (
    terminal_id TEXT PRIMARY KEY REFERENCES terminals(id),
    report TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  `,
  ATTESTATION_MIGRATION,
  DOWNGRADE_MIGRATION,
  ENROLLMENT_LIMITS_MIGRATION,
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
  /** A replacement code: the terminal that enrolls with it takes this one's place. */
  replaces: string | null;
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
  pendingFingerprint: string | null;
  pendingSerial: string | null;
  pendingNotAfter: number | null;
  deactivationReason: string | null;
  announcedStatus: string | null;
}
export interface PreregistrationRow {
  serialNumber: string;
  locationId: string;
  name: string;
  createdAt: number;
  claimedAt: number | null;
  terminalId: string | null;
  refusedClaims: number;
}
export interface PairingRow {
  id: string;
  secretHash: string;
  activationCode: string;
  csr: string;
  serialNumber: string | null;
  model: string | null;
  softwareVersion: string | null;
  createdAt: number;
  expiresAt: number;
  activatedAt: number | null;
  terminalId: string | null;
  enrollment: string | null;
}
export interface WebhookEndpointRow {
  id: string;
  url: string;
  events: string;
  secret: string;
  createdAt: number;
}
export interface WebhookDeliveryRow {
  eventSeq: number;
  eventId: string;
  type: string;
  payload: string;
  createdAt: number;
  endpointId: string;
  url: string;
  secret: string;
  attempts: number;
  nextAttemptAt: number;
  deliveredAt: number | null;
  failedAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
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
  last_seen AS lastSeen, closed_cleanly AS closedCleanly, boot_id AS bootId, battery_level AS batteryLevel, health,
  pending_fingerprint AS pendingFingerprint, pending_serial AS pendingSerial, pending_not_after AS pendingNotAfter,
  deactivation_reason AS deactivationReason, announced_status AS announcedStatus`;
const CODE_COLUMNS = `code, location_id AS locationId, terminal_name AS terminalName, created_at AS createdAt,
  expires_at AS expiresAt, used_at AS usedAt, terminal_id AS terminalId, replaces`;
const PREREG_COLUMNS = `serial_number AS serialNumber, location_id AS locationId, name, created_at AS createdAt,
  claimed_at AS claimedAt, terminal_id AS terminalId, refused_claims AS refusedClaims`;
const PAIRING_COLUMNS = `id, secret_hash AS secretHash, activation_code AS activationCode, csr, serial_number AS serialNumber,
  model, software_version AS softwareVersion, created_at AS createdAt, expires_at AS expiresAt,
  activated_at AS activatedAt, terminal_id AS terminalId, enrollment`;
const DELIVERY_COLUMNS = `d.event_seq AS eventSeq, e.id AS eventId, e.type, e.payload, e.created_at AS createdAt,
  d.endpoint_id AS endpointId, w.url, w.secret, d.attempts, d.next_attempt_at AS nextAttemptAt,
  d.delivered_at AS deliveredAt, d.failed_at AS failedAt, d.last_status AS lastStatus, d.last_error AS lastError`;

export class CloudStore {
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly prepared = new Map<string, Database.Statement>();
  /** Terminal actions and published releases. */
  readonly actions: CloudActionTable;
  /** Manufacturer CAs and what each pre-registration trusts (zero-touch). */
  readonly attestation: AttestationTable;
  /** Failed enrollment attempts, pairing sources, the expiry sweep. */
  readonly enrollLimits: EnrollmentLimitsTable;

  /** A statement prepared once and reused (the lifecycle and webhook queries run per event). */
  private q(sql: string): Database.Statement {
    let st = this.prepared.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.prepared.set(sql, st);
    }
    return st;
  }

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db, MIGRATIONS);
    const d = this.db;
    this.actions = new CloudActionTable(d);
    this.attestation = new AttestationTable(d);
    this.enrollLimits = new EnrollmentLimitsTable(d);
    this.stmt = {
      insertLocation: d.prepare('INSERT INTO locations (id, name, created_at) VALUES (?, ?, ?)'),
      getLocation: d.prepare('SELECT id, name, created_at AS createdAt FROM locations WHERE id = ?'),
      insertCode: d.prepare(
        'INSERT INTO enrollment_codes (code, location_id, terminal_name, created_at, expires_at, replaces) VALUES (?, ?, ?, ?, ?, ?)',
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
        software_version = @softwareVersion, model = COALESCE(@model, model),
        serial_number = COALESCE(serial_number, @serialNumber) WHERE id = @id`),
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
        AND (@status IS NULL OR status = @status) ORDER BY rseq`),
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

  listTransactions(terminalId: string | null, status: string | null = null): CloudTransactionRow[] {
    return this.stmt.listTx.all({ terminalId, status }) as CloudTransactionRow[];
  }

  /** A transaction the cloud has already was forwarded again: counted, nothing else changes. */
  countRedelivery(terminalId: string, id: string): void {
    this.stmt.txRepeat.run(terminalId, id);
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
    this.stmt.insertCode.run(
      row.code,
      row.locationId,
      row.terminalName,
      row.createdAt,
      row.expiresAt,
      row.replaces,
    );
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
  /** A Hello: last seen, boot, version; the model the device reports, and its serial if none was known. */
  recordHello(
    id: string,
    now: number,
    hello: {
      bootId: string;
      softwareVersion: string;
      model?: string | undefined;
      serialNumber?: string | undefined;
    },
  ): void {
    this.stmt.hello.run({
      id,
      now,
      bootId: hello.bootId,
      softwareVersion: hello.softwareVersion,
      model: hello.model ?? null,
      serialNumber: hello.serialNumber ?? null,
    });
  }
  recordHeartbeat(id: string, now: number, batteryLevel: number | null, health: string): void {
    this.stmt.heartbeat.run({ id, now, batteryLevel, health });
  }
  recordDisconnect(id: string, closedCleanly: boolean): void {
    this.stmt.disconnected.run(closedCleanly ? 1 : 0, id);
  }

  saveDiagnostics(terminalId: string, report: string, now: number): void {
    this.q(
      'INSERT OR REPLACE INTO diagnostics_reports (terminal_id, report, received_at) VALUES (?, ?, ?)',
    ).run(terminalId, report, now);
  }

  lastDiagnostics(terminalId: string): { report: string; receivedAt: number } | undefined {
    return this.q(
      'SELECT report, received_at AS receivedAt FROM diagnostics_reports WHERE terminal_id = ?',
    ).get(terminalId) as { report: string; receivedAt: number } | undefined;
  }

  /** Runs `fn` in one SQLite transaction and returns its result. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Creates a terminal (enrollment by pairing or serial: no code to claim). */
  insertTerminal(terminal: NewTerminal): void {
    this.stmt.insertTerminal.run(terminal);
  }

  // ---- certificates ----

  setPendingCertificate(id: string, fingerprint: string, serial: string, notAfter: number): void {
    this.q(
      'UPDATE terminals SET pending_fingerprint = ?, pending_serial = ?, pending_not_after = ? WHERE id = ?',
    ).run(fingerprint, serial, notAfter, id);
  }

  /** The pending certificate becomes the current one; the old one is refused from now on. */
  promotePendingCertificate(id: string): void {
    this.q(`UPDATE terminals SET cert_fingerprint = pending_fingerprint, cert_serial = pending_serial,
        cert_not_after = pending_not_after, pending_fingerprint = NULL, pending_serial = NULL,
        pending_not_after = NULL WHERE id = ? AND pending_fingerprint IS NOT NULL`).run(id);
  }

  // ---- lifecycle ----

  deactivateTerminal(id: string, now: number, reason: string): boolean {
    return (
      this.q(
        'UPDATE terminals SET deactivated_at = ?, deactivation_reason = ? WHERE id = ? AND deactivated_at IS NULL',
      ).run(now, reason, id).changes === 1
    );
  }

  updateTerminal(id: string, changes: { name?: string; locationId?: string }): void {
    if (changes.name !== undefined)
      this.q('UPDATE terminals SET name = ? WHERE id = ?').run(changes.name, id);
    if (changes.locationId !== undefined)
      this.q('UPDATE terminals SET location_id = ? WHERE id = ?').run(changes.locationId, id);
  }

  setAnnouncedStatus(id: string, status: string): void {
    this.q('UPDATE terminals SET announced_status = ? WHERE id = ?').run(status, id);
  }

  // ---- pre-registrations ----

  insertPreregistration(
    row: Omit<PreregistrationRow, 'claimedAt' | 'terminalId' | 'refusedClaims'>,
  ): boolean {
    return (
      this.q(
        `INSERT OR IGNORE INTO preregistrations (serial_number, location_id, name, created_at)
           VALUES (@serialNumber, @locationId, @name, @createdAt)`,
      ).run(row).changes === 1
    );
  }
  getPreregistration(serial: string): PreregistrationRow | undefined {
    return this.q(`SELECT ${PREREG_COLUMNS} FROM preregistrations WHERE serial_number = ?`).get(serial) as
      | PreregistrationRow
      | undefined;
  }
  listPreregistrations(): PreregistrationRow[] {
    return this.q(
      `SELECT ${PREREG_COLUMNS} FROM preregistrations ORDER BY created_at`,
    ).all() as PreregistrationRow[];
  }
  /** Whether a serial is pre-registered, or held by another active terminal. */
  serialInUse(serial: string, exceptTerminalId: string): boolean {
    return (
      this.q(
        `SELECT 1 FROM preregistrations WHERE serial_number = @serial
         UNION ALL SELECT 1 FROM terminals WHERE serial_number = @serial AND id <> @except AND deactivated_at IS NULL
         LIMIT 1`,
      ).get({ serial, except: exceptTerminalId }) !== undefined
    );
  }
  countRefusedClaim(serial: string): void {
    this.q('UPDATE preregistrations SET refused_claims = refused_claims + 1 WHERE serial_number = ?').run(
      serial,
    );
  }
  /** Claims the serial and creates the terminal in one transaction; false if it was claimed meanwhile. */
  claimSerialAndCreateTerminal(serial: string, terminal: NewTerminal): boolean {
    return this.db.transaction(() => {
      const claimed =
        this.q(
          'UPDATE preregistrations SET claimed_at = ?, terminal_id = ? WHERE serial_number = ? AND claimed_at IS NULL',
        ).run(terminal.createdAt, terminal.id, serial).changes === 1;
      if (claimed) this.stmt.insertTerminal.run(terminal);
      return claimed;
    })();
  }

  // ---- pairings ----

  insertPairing(
    row: Omit<PairingRow, 'activatedAt' | 'terminalId' | 'enrollment'> & { source: string },
  ): void {
    this.q(`INSERT INTO pairings (id, secret_hash, activation_code, csr, serial_number, model, software_version,
        created_at, expires_at, source) VALUES (@id, @secretHash, @activationCode, @csr, @serialNumber, @model,
        @softwareVersion, @createdAt, @expiresAt, @source)`).run(row);
  }
  getPairing(id: string): PairingRow | undefined {
    return this.q(`SELECT ${PAIRING_COLUMNS} FROM pairings WHERE id = ?`).get(id) as PairingRow | undefined;
  }
  getPairingByCode(code: string): PairingRow | undefined {
    return this.q(`SELECT ${PAIRING_COLUMNS} FROM pairings WHERE activation_code = ?`).get(code) as
      | PairingRow
      | undefined;
  }
  /** Activates a pending pairing and creates its terminal in one transaction; false if it was activated meanwhile. */
  activatePairing(id: string, terminal: NewTerminal, enrollment: string): boolean {
    return this.db.transaction(() => {
      const done =
        this.q(
          'UPDATE pairings SET activated_at = ?, terminal_id = ?, enrollment = ? WHERE id = ? AND activated_at IS NULL',
        ).run(terminal.createdAt, terminal.id, enrollment, id).changes === 1;
      if (done) this.stmt.insertTerminal.run(terminal);
      return done;
    })();
  }

  // ---- webhooks ----

  insertWebhookEndpoint(row: WebhookEndpointRow): void {
    this.q(
      'INSERT INTO webhook_endpoints (id, url, events, secret, created_at) VALUES (@id, @url, @events, @secret, @createdAt)',
    ).run(row);
  }
  getWebhookEndpoint(id: string): WebhookEndpointRow | undefined {
    return this.q(
      'SELECT id, url, events, secret, created_at AS createdAt FROM webhook_endpoints WHERE id = ?',
    ).get(id) as WebhookEndpointRow | undefined;
  }
  listWebhookEndpoints(): WebhookEndpointRow[] {
    return this.q(
      'SELECT id, url, events, secret, created_at AS createdAt FROM webhook_endpoints ORDER BY created_at',
    ).all() as WebhookEndpointRow[];
  }
  /** Records an event and one delivery per endpoint subscribed to it (call inside the causing transaction). */
  insertWebhookEvent(id: string, type: string, payload: string, now: number): void {
    const seq = this.q('INSERT INTO webhook_events (id, type, payload, created_at) VALUES (?, ?, ?, ?)').run(
      id,
      type,
      payload,
      now,
    ).lastInsertRowid;
    for (const ep of this.listWebhookEndpoints()) {
      if (!(JSON.parse(ep.events) as string[]).includes(type)) continue;
      this.q('INSERT INTO webhook_deliveries (event_seq, endpoint_id, next_attempt_at) VALUES (?, ?, ?)').run(
        seq,
        ep.id,
        now,
      );
    }
  }
  dueWebhookDeliveries(now: number, limit: number): WebhookDeliveryRow[] {
    return this.q(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d
        JOIN webhook_events e ON e.seq = d.event_seq JOIN webhook_endpoints w ON w.id = d.endpoint_id
        WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= ?
        ORDER BY d.event_seq LIMIT ?`).all(now, limit) as WebhookDeliveryRow[];
  }
  nextWebhookAttemptAt(): number | null {
    const r = this.q(
      'SELECT MIN(next_attempt_at) AS at FROM webhook_deliveries WHERE delivered_at IS NULL AND failed_at IS NULL',
    ).get() as { at: number | null };
    return r.at;
  }
  recordWebhookAttempt(
    eventSeq: number,
    endpointId: string,
    r: {
      at: number;
      status: number | null;
      error: string | null;
      delivered: boolean;
      nextAttemptAt: number | null;
    },
  ): void {
    this.q(`UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = @status, last_error = @error,
        delivered_at = CASE WHEN @delivered = 1 THEN @at ELSE NULL END,
        failed_at = CASE WHEN @delivered = 0 AND @nextAttemptAt IS NULL THEN @at ELSE NULL END,
        next_attempt_at = COALESCE(@nextAttemptAt, next_attempt_at)
        WHERE event_seq = @eventSeq AND endpoint_id = @endpointId`).run({
      ...r,
      delivered: r.delivered ? 1 : 0,
      eventSeq,
      endpointId,
    });
  }
  webhookDeliveries(endpointId: string): WebhookDeliveryRow[] {
    return this.q(`SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d
        JOIN webhook_events e ON e.seq = d.event_seq JOIN webhook_endpoints w ON w.id = d.endpoint_id
        WHERE d.endpoint_id = ? ORDER BY d.event_seq`).all(endpointId) as WebhookDeliveryRow[];
  }
}
