import type {
  ConfigStore,
  DiagnosticsStore,
  LocationRow,
  LocationStore,
  NewTerminal,
  TerminalConfigRow,
  TerminalRow,
  TerminalStore,
} from '../store-types.js';
import { bit, type Db, prepareAll } from './statements.js';

export class SqliteLocations implements LocationStore {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: 'INSERT INTO locations (id, name, created_at) VALUES (@id, @name, @createdAt)',
      get: 'SELECT id, name, created_at AS createdAt FROM locations WHERE id = @id',
      list: 'SELECT id, name, created_at AS createdAt FROM locations ORDER BY created_at, id',
    });
  }
  insert(row: LocationRow): void {
    this.s.insert.run(row);
  }
  get(id: string): LocationRow | undefined {
    return this.s.get.get({ id }) as LocationRow | undefined;
  }
  list(): LocationRow[] {
    return this.s.list.all() as LocationRow[];
  }
}

const TERMINAL_COLUMNS = `seq, id, name, location_id AS locationId, model, serial_number AS serialNumber,
  software_version AS softwareVersion, created_at AS createdAt, deactivated_at AS deactivatedAt,
  cert_fingerprint AS certFingerprint, cert_serial AS certSerial, cert_not_after AS certNotAfter,
  last_seen AS lastSeen, closed_cleanly AS closedCleanly, boot_id AS bootId, battery_level AS batteryLevel, health,
  pending_fingerprint AS pendingFingerprint, pending_serial AS pendingSerial, pending_not_after AS pendingNotAfter,
  deactivation_reason AS deactivationReason, announced_status AS announcedStatus`;

type StoredTerminal = Omit<TerminalRow, 'closedCleanly'> & { closedCleanly: number };
const terminal = (r: StoredTerminal | undefined): TerminalRow | undefined =>
  r && { ...r, closedCleanly: r.closedCleanly === 1 };

export class SqliteTerminals implements TerminalStore {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT INTO terminals (id, name, location_id, model, serial_number, software_version,
        created_at, cert_fingerprint, cert_serial, cert_not_after)
        VALUES (@id, @name, @locationId, @model, @serialNumber, @softwareVersion, @createdAt, @certFingerprint,
        @certSerial, @certNotAfter)`,
      get: `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = @id`,
      list: `SELECT ${TERMINAL_COLUMNS} FROM terminals
        WHERE (@locationId IS NULL OR location_id = @locationId) ORDER BY seq DESC`,
      idsAt: 'SELECT id FROM terminals WHERE location_id = @locationId ORDER BY seq',
      hello: `UPDATE terminals SET last_seen = @now, closed_cleanly = 0, boot_id = @bootId,
        software_version = @softwareVersion, model = COALESCE(@model, model),
        serial_number = COALESCE(serial_number, @serialNumber) WHERE id = @id`,
      heartbeat: `UPDATE terminals SET last_seen = @now, closed_cleanly = 0, battery_level = @batteryLevel,
        health = @health WHERE id = @id`,
      disconnected: 'UPDATE terminals SET closed_cleanly = @closedCleanly WHERE id = @id',
      serialInUse: `SELECT 1 FROM preregistrations WHERE serial_number = @serial
        UNION ALL SELECT 1 FROM terminals WHERE serial_number = @serial AND id <> @except AND deactivated_at IS NULL
        LIMIT 1`,
      setPending: `UPDATE terminals SET pending_fingerprint = @fingerprint, pending_serial = @serial,
        pending_not_after = @notAfter WHERE id = @id`,
      promote: `UPDATE terminals SET cert_fingerprint = pending_fingerprint, cert_serial = pending_serial,
        cert_not_after = pending_not_after, pending_fingerprint = NULL, pending_serial = NULL,
        pending_not_after = NULL WHERE id = @id AND pending_fingerprint IS NOT NULL`,
      deactivate: `UPDATE terminals SET deactivated_at = @now, deactivation_reason = @reason
        WHERE id = @id AND deactivated_at IS NULL`,
      rename: 'UPDATE terminals SET name = @name WHERE id = @id',
      move: 'UPDATE terminals SET location_id = @locationId WHERE id = @id',
      announced: 'UPDATE terminals SET announced_status = @status WHERE id = @id',
      setLocked: 'UPDATE terminals SET locked = @locked WHERE id = @id',
      locked: 'SELECT locked FROM terminals WHERE id = @id',
    });
  }
  insert(t: NewTerminal): void {
    this.s.insert.run(t);
  }
  get(id: string): TerminalRow | undefined {
    return terminal(this.s.get.get({ id }) as StoredTerminal | undefined);
  }
  list(locationId: string | null): TerminalRow[] {
    return (this.s.list.all({ locationId }) as StoredTerminal[]).map((r) => terminal(r)!);
  }
  idsAt(locationId: string): string[] {
    return (this.s.idsAt.all({ locationId }) as { id: string }[]).map((r) => r.id);
  }
  recordHello(
    id: string,
    now: number,
    hello: { bootId: string; softwareVersion: string; model: string | null; serialNumber: string | null },
  ): void {
    this.s.hello.run({ id, now, ...hello });
  }
  recordHeartbeat(id: string, now: number, batteryLevel: number | null, health: string): void {
    this.s.heartbeat.run({ id, now, batteryLevel, health });
  }
  recordDisconnect(id: string, closedCleanly: boolean): void {
    this.s.disconnected.run({ id, closedCleanly: bit(closedCleanly) });
  }
  serialInUse(serial: string, exceptTerminalId: string): boolean {
    return this.s.serialInUse.get({ serial, except: exceptTerminalId }) !== undefined;
  }
  setPendingCertificate(id: string, fingerprint: string, serial: string, notAfter: number): void {
    this.s.setPending.run({ id, fingerprint, serial, notAfter });
  }
  promotePendingCertificate(id: string): void {
    this.s.promote.run({ id });
  }
  deactivate(id: string, now: number, reason: string): boolean {
    return this.s.deactivate.run({ id, now, reason }).changes === 1;
  }
  update(id: string, changes: { name?: string; locationId?: string }): void {
    if (changes.name !== undefined) this.s.rename.run({ id, name: changes.name });
    if (changes.locationId !== undefined) this.s.move.run({ id, locationId: changes.locationId });
  }
  setAnnouncedStatus(id: string, status: string): void {
    this.s.announced.run({ id, status });
  }
  setLocked(id: string, locked: boolean): void {
    this.s.setLocked.run({ id, locked: bit(locked) });
  }
  locked(id: string): boolean {
    return (this.s.locked.get({ id }) as { locked: number } | undefined)?.locked === 1;
  }
}

export class SqliteConfigs implements ConfigStore {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      template: 'SELECT template FROM location_configs WHERE location_id = @locationId',
      setTemplate: `INSERT OR REPLACE INTO location_configs (location_id, template, updated_at)
        VALUES (@locationId, @template, @now)`,
      get: `SELECT terminal_id AS terminalId, overrides, desired, version, applied_version AS appliedVersion,
        status, errors, updated_at AS updatedAt FROM terminal_configs WHERE terminal_id = @terminalId`,
      nextVersion: "UPDATE counters SET value = value + 1 WHERE name = 'config_version' RETURNING value",
      put: `INSERT INTO terminal_configs (terminal_id, overrides, desired, version, applied_version, status, errors,
        updated_at) VALUES (@terminalId, @overrides, @desired, @version, @appliedVersion, @status, @errors, @updatedAt)
        ON CONFLICT(terminal_id) DO UPDATE SET overrides = @overrides, desired = @desired, version = @version,
        applied_version = @appliedVersion, status = @status, errors = @errors, updated_at = @updatedAt`,
    });
  }
  template(locationId: string): string | null {
    return (this.s.template.get({ locationId }) as { template: string } | undefined)?.template ?? null;
  }
  setTemplate(locationId: string, template: string, now: number): void {
    this.s.setTemplate.run({ locationId, template, now });
  }
  get(terminalId: string): TerminalConfigRow | undefined {
    return this.s.get.get({ terminalId }) as TerminalConfigRow | undefined;
  }
  nextVersion(): number {
    return (this.s.nextVersion.get() as { value: number }).value;
  }
  put(row: TerminalConfigRow): void {
    this.s.put.run(row);
  }
}

export class SqliteDiagnostics implements DiagnosticsStore {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      save: `INSERT OR REPLACE INTO diagnostics_reports (terminal_id, report, received_at)
        VALUES (@terminalId, @report, @now)`,
      last: 'SELECT report, received_at AS receivedAt FROM diagnostics_reports WHERE terminal_id = @terminalId',
    });
  }
  save(terminalId: string, report: string, now: number): void {
    this.s.save.run({ terminalId, report, now });
  }
  last(terminalId: string): { report: string; receivedAt: number } | undefined {
    return this.s.last.get({ terminalId }) as { report: string; receivedAt: number } | undefined;
  }
}
