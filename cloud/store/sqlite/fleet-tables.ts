import { LINK_SQL } from '../presence-sql.js';
import type {
  ConfigStore,
  DiagnosticsStore,
  HeartbeatWrite,
  Immediate,
  LocationRow,
  LocationStore,
  NewTerminal,
  OrganizationRow,
  OrganizationStore,
  Page,
  TerminalConfigRow,
  TerminalFilter,
  TerminalRow,
  TerminalStatusEventRow,
  TerminalStore,
} from '../store-types.js';
import { bit, type Db, prepareAll } from './statements.js';

const ORG_COLUMNS = 'id, slug, name, created_at AS createdAt';

export class SqliteOrganizations implements Immediate<OrganizationStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT OR IGNORE INTO organizations (id, slug, name, created_at)
        VALUES (@id, @slug, @name, @createdAt)`,
      get: `SELECT ${ORG_COLUMNS} FROM organizations WHERE id = @id`,
      bySlug: `SELECT ${ORG_COLUMNS} FROM organizations WHERE slug = @slug`,
      list: `SELECT ${ORG_COLUMNS} FROM organizations
        WHERE (@after IS NULL OR seq > (SELECT seq FROM organizations WHERE id = @after))
        ORDER BY seq LIMIT @limit`,
      rename: 'UPDATE organizations SET name = @name WHERE id = @id',
      reslug: 'UPDATE OR IGNORE organizations SET slug = @slug WHERE id = @id',
    });
  }
  insert(row: OrganizationRow): boolean {
    return this.s.insert.run(row).changes === 1;
  }
  get(id: string): OrganizationRow | undefined {
    return this.s.get.get({ id }) as OrganizationRow | undefined;
  }
  bySlug(slug: string): OrganizationRow | undefined {
    return this.s.bySlug.get({ slug }) as OrganizationRow | undefined;
  }
  list(page: Page): OrganizationRow[] {
    return this.s.list.all(page) as OrganizationRow[];
  }
  update(id: string, changes: { name?: string; slug?: string }): boolean {
    if (changes.slug !== undefined) {
      const current = this.get(id);
      if (
        current &&
        current.slug !== changes.slug &&
        this.s.reslug.run({ id, slug: changes.slug }).changes !== 1
      )
        return false;
    }
    if (changes.name !== undefined) this.s.rename.run({ id, name: changes.name });
    return true;
  }
}

const LOCATION_COLUMNS = `id, name, created_at AS createdAt, organization_id AS organizationId, active, timezone, address`;
type StoredLocation = Omit<LocationRow, 'active'> & { active: number };
const location = (r: StoredLocation | undefined): LocationRow | undefined =>
  r && { ...r, active: r.active === 1 };

export class SqliteLocations implements Immediate<LocationStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT INTO locations (id, name, created_at, seq, organization_id, active, timezone, address)
        VALUES (@id, @name, @createdAt, (SELECT COALESCE(MAX(seq), 0) + 1 FROM locations), @organizationId,
        @active, @timezone, @address)`,
      get: `SELECT ${LOCATION_COLUMNS} FROM locations WHERE id = @id`,
      byName: `SELECT ${LOCATION_COLUMNS} FROM locations WHERE organization_id = @organizationId AND name = @name
        ORDER BY seq LIMIT 1`,
      list: `SELECT ${LOCATION_COLUMNS} FROM locations
        WHERE (@organizationId IS NULL OR organization_id = @organizationId)
          AND (@after IS NULL OR seq > (SELECT seq FROM locations WHERE id = @after))
        ORDER BY seq LIMIT @limit`,
      rename: 'UPDATE locations SET name = @name WHERE id = @id',
      setActive: 'UPDATE locations SET active = @active WHERE id = @id',
      setTimezone: 'UPDATE locations SET timezone = @timezone WHERE id = @id',
      setAddress: 'UPDATE locations SET address = @address WHERE id = @id',
    });
  }
  insert(row: LocationRow): void {
    this.s.insert.run({ ...row, active: bit(row.active) });
  }
  get(id: string): LocationRow | undefined {
    return location(this.s.get.get({ id }) as StoredLocation | undefined);
  }
  byName(organizationId: string, name: string): LocationRow | undefined {
    return location(this.s.byName.get({ organizationId, name }) as StoredLocation | undefined);
  }
  list(organizationId: string | null, page: Page): LocationRow[] {
    return (this.s.list.all({ organizationId, ...page }) as StoredLocation[]).map((r) => location(r)!);
  }
  update(
    id: string,
    changes: { name?: string; active?: boolean; timezone?: string | null; address?: string | null },
  ): void {
    if (changes.name !== undefined) this.s.rename.run({ id, name: changes.name });
    if (changes.active !== undefined) this.s.setActive.run({ id, active: bit(changes.active) });
    if (changes.timezone !== undefined) this.s.setTimezone.run({ id, timezone: changes.timezone });
    if (changes.address !== undefined) this.s.setAddress.run({ id, address: changes.address });
  }
}

const TERMINAL_COLUMNS = `seq, id, name, location_id AS locationId, model, serial_number AS serialNumber,
  software_version AS softwareVersion, created_at AS createdAt, deactivated_at AS deactivatedAt,
  cert_fingerprint AS certFingerprint, cert_serial AS certSerial, cert_not_after AS certNotAfter,
  last_seen AS lastSeen, closed_cleanly AS closedCleanly, boot_id AS bootId, battery_level AS batteryLevel, health,
  pending_fingerprint AS pendingFingerprint, pending_serial AS pendingSerial, pending_not_after AS pendingNotAfter,
  deactivation_reason AS deactivationReason, announced_status AS announcedStatus, announced_at AS announcedAt,
  problem, problem_at AS problemAt, clock_skew_ms AS clockSkewMs, replaces, replaced_by AS replacedBy,
  link_gateway AS linkGateway, link_version AS linkVersion`;
const EVENT_COLUMNS = `seq, terminal_id AS terminalId, at, status, previous_status AS previousStatus, reason`;

type StoredTerminal = Omit<TerminalRow, 'closedCleanly'> & { closedCleanly: number };
const terminal = (r: StoredTerminal | undefined): TerminalRow | undefined =>
  r && { ...r, closedCleanly: r.closedCleanly === 1 };

export class SqliteTerminals implements Immediate<TerminalStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      insert: `INSERT INTO terminals (id, name, location_id, model, serial_number, software_version,
        created_at, cert_fingerprint, cert_serial, cert_not_after, replaces)
        VALUES (@id, @name, @locationId, @model, @serialNumber, @softwareVersion, @createdAt, @certFingerprint,
        @certSerial, @certNotAfter, @replaces)`,
      page: `SELECT ${TERMINAL_COLUMNS} FROM terminals
        WHERE (@locationId IS NULL OR location_id = @locationId)
          AND (@organizationId IS NULL
            OR location_id IN (SELECT id FROM locations WHERE organization_id = @organizationId))
          AND (@search IS NULL OR lower(serial_number) = @search OR lower(name) = @search
            OR (model IS NOT NULL AND serial_number IS NOT NULL AND lower(model || '-' || serial_number) = @search))
          AND (@after IS NULL OR seq < (SELECT seq FROM terminals WHERE id = @after))
        ORDER BY seq DESC LIMIT @limit`,
      at: `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE location_id = @locationId ORDER BY seq`,
      events: `SELECT ${EVENT_COLUMNS} FROM terminal_events
        WHERE terminal_id = @id AND (@beforeSeq IS NULL OR seq < @beforeSeq) ORDER BY seq DESC LIMIT @limit`,
      addEvent: `INSERT INTO terminal_events (terminal_id, at, status, previous_status, reason)
        VALUES (@id, @at, @status, @previous, @reason)`,
      setProblem: 'UPDATE terminals SET problem = @problem, problem_at = @at WHERE id = @id',
      clockSkew: 'UPDATE terminals SET clock_skew_ms = @skewMs WHERE id = @id',
      replacedBy: 'UPDATE terminals SET replaced_by = @by WHERE id = @id',
      revoke: `INSERT OR IGNORE INTO revoked_certificates (fingerprint, terminal_id, revoked_at)
        VALUES (@fingerprint, @id, @at)`,
      dropPendingIfRevoked: `UPDATE terminals SET pending_fingerprint = NULL, pending_serial = NULL,
        pending_not_after = NULL WHERE id = @id AND pending_fingerprint = @fingerprint`,
      isRevoked: 'SELECT 1 FROM revoked_certificates WHERE fingerprint = @fingerprint',
      get: `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = @id`,
      getMany: `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id IN (SELECT value FROM json_each(@ids))`,
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
      // Only from the status the caller read: of two gateways announcing one change, one wins.
      announced: `UPDATE terminals SET announced_status = @status, announced_at = @at
        WHERE id = @id AND announced_status IS @previous`,
      setLocked: 'UPDATE terminals SET locked = @locked WHERE id = @id',
      locked: 'SELECT locked FROM terminals WHERE id = @id',
      ...LINK_SQL,
      heartbeats: `UPDATE terminals SET last_seen = b.at, closed_cleanly = 0, battery_level = b.battery,
        health = b.health, clock_skew_ms = b.skew
        FROM (SELECT json_extract(value, '$.id') AS id, json_extract(value, '$.at') AS at,
          json_extract(value, '$.batteryLevel') AS battery, json_extract(value, '$.health') AS health,
          json_extract(value, '$.clockSkewMs') AS skew FROM json_each(@beats)) AS b
        WHERE terminals.id = b.id`,
    });
  }
  insert(t: NewTerminal): void {
    this.s.insert.run({ ...t, replaces: t.replaces ?? null });
  }
  page(filter: TerminalFilter, page: Page): TerminalRow[] {
    return (
      this.s.page.all({
        locationId: filter.locationId ?? null,
        organizationId: filter.organizationId ?? null,
        search: filter.search ? filter.search.toLowerCase() : null,
        ...page,
      }) as StoredTerminal[]
    ).map((r) => terminal(r)!);
  }
  at(locationId: string): TerminalRow[] {
    return (this.s.at.all({ locationId }) as StoredTerminal[]).map((r) => terminal(r)!);
  }
  events(id: string, page: { beforeSeq: number | null; limit: number }): TerminalStatusEventRow[] {
    return this.s.events.all({ id, ...page }) as TerminalStatusEventRow[];
  }
  setProblem(id: string, problem: string | null, at: number | null): void {
    this.s.setProblem.run({ id, problem, at });
  }
  recordClockSkew(id: string, skewMs: number): void {
    this.s.clockSkew.run({ id, skewMs: Math.round(skewMs) });
  }
  setReplacedBy(id: string, by: string): void {
    this.s.replacedBy.run({ id, by });
  }
  revokeCertificate(id: string, fingerprint: string, at: number): void {
    this.s.revoke.run({ id, fingerprint, at });
    this.s.dropPendingIfRevoked.run({ id, fingerprint });
  }
  isRevoked(fingerprint: string): boolean {
    return this.s.isRevoked.get({ fingerprint }) !== undefined;
  }
  get(id: string): TerminalRow | undefined {
    return terminal(this.s.get.get({ id }) as StoredTerminal | undefined);
  }
  getMany(ids: readonly string[]): TerminalRow[] {
    if (ids.length === 0) return [];
    return (this.s.getMany.all({ ids: JSON.stringify(ids) }) as StoredTerminal[]).map((r) => terminal(r)!);
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
  recordHeartbeats(beats: readonly HeartbeatWrite[]): number {
    if (beats.length === 0) return 0;
    const rounded = beats.map((b) => ({ ...b, clockSkewMs: Math.round(b.clockSkewMs) }));
    return this.s.heartbeats.run({ beats: JSON.stringify(rounded) }).changes;
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
  setAnnouncedStatus(
    id: string,
    previous: string | null,
    status: string,
    at: number,
    reason: string | null,
  ): boolean {
    if (this.s.announced.run({ id, status, at, previous }).changes !== 1) return false;
    this.s.addEvent.run({ id, at, status, previous, reason });
    return true;
  }
  setLocked(id: string, locked: boolean): void {
    this.s.setLocked.run({ id, locked: bit(locked) });
  }
  locked(id: string): boolean {
    return (this.s.locked.get({ id }) as { locked: number } | undefined)?.locked === 1;
  }
  registerLink(id: string, gatewayId: string, version: number): boolean {
    return this.s.registerLink.run({ id, gatewayId, version }).changes === 1;
  }
  releaseLink(id: string, version: number): boolean {
    return this.s.releaseLink.run({ id, version }).changes === 1;
  }
}

export class SqliteConfigs implements Immediate<ConfigStore> {
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

export class SqliteDiagnostics implements Immediate<DiagnosticsStore> {
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
