import { LINK_SQL } from '../presence-sql.js';
import type {
  ConfigStore,
  DiagnosticsStore,
  HeartbeatWrite,
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
import { bit, type PgExec, pgStatements } from './pg-statements.js';

const ORG_COLUMNS = 'id, slug, name, created_at AS createdAt';

export class PgOrganizations implements OrganizationStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('organizations', {
      insert: `INSERT INTO organizations (id, slug, name, created_at)
        VALUES (@id, @slug, @name, @createdAt) ON CONFLICT DO NOTHING`,
      get: `SELECT ${ORG_COLUMNS} FROM organizations WHERE id = @id`,
      bySlug: `SELECT ${ORG_COLUMNS} FROM organizations WHERE slug = @slug`,
      list: `SELECT ${ORG_COLUMNS} FROM organizations
        WHERE (@after IS NULL OR seq > (SELECT seq FROM organizations WHERE id = @after))
        ORDER BY seq LIMIT @limit`,
      rename: 'UPDATE organizations SET name = @name WHERE id = @id',
      reslug: 'UPDATE organizations SET slug = @slug WHERE id = @id',
    });
  }
  async insert(row: OrganizationRow): Promise<boolean> {
    return (await this.q.run(this.s.insert, row)) === 1;
  }
  async get(id: string): Promise<OrganizationRow | undefined> {
    return (await this.q.one(this.s.get, { id })) as OrganizationRow | undefined;
  }
  async bySlug(slug: string): Promise<OrganizationRow | undefined> {
    return (await this.q.one(this.s.bySlug, { slug })) as OrganizationRow | undefined;
  }
  async list(page: Page): Promise<OrganizationRow[]> {
    return (await this.q.all(this.s.list, page)) as OrganizationRow[];
  }
  async update(id: string, changes: { name?: string; slug?: string }): Promise<boolean> {
    if (changes.slug !== undefined) {
      const current = await this.get(id);
      if (
        current &&
        current.slug !== changes.slug &&
        (await this.q.runOrIgnore(this.s.reslug, { id, slug: changes.slug })) !== 1
      )
        return false;
    }
    if (changes.name !== undefined) await this.q.run(this.s.rename, { id, name: changes.name });
    return true;
  }
}

const LOCATION_COLUMNS = `id, name, created_at AS createdAt, organization_id AS organizationId, active, timezone, address`;
type StoredLocation = Omit<LocationRow, 'active'> & { active: number };
const location = (r: StoredLocation | undefined): LocationRow | undefined =>
  r && { ...r, active: r.active === 1 };

export class PgLocations implements LocationStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('locations', {
      insert: `INSERT INTO locations (id, name, created_at, organization_id, active, timezone, address)
        VALUES (@id, @name, @createdAt, @organizationId, @active, @timezone, @address)`,
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
  async insert(row: LocationRow): Promise<void> {
    await this.q.run(this.s.insert, { ...row, active: bit(row.active) });
  }
  async get(id: string): Promise<LocationRow | undefined> {
    return location((await this.q.one(this.s.get, { id })) as StoredLocation | undefined);
  }
  async byName(organizationId: string, name: string): Promise<LocationRow | undefined> {
    return location(
      (await this.q.one(this.s.byName, { organizationId, name })) as StoredLocation | undefined,
    );
  }
  async list(organizationId: string | null, page: Page): Promise<LocationRow[]> {
    return ((await this.q.all(this.s.list, { organizationId, ...page })) as StoredLocation[]).map(
      (r) => location(r)!,
    );
  }
  async update(
    id: string,
    changes: { name?: string; active?: boolean; timezone?: string | null; address?: string | null },
  ): Promise<void> {
    if (changes.name !== undefined) await this.q.run(this.s.rename, { id, name: changes.name });
    if (changes.active !== undefined) await this.q.run(this.s.setActive, { id, active: bit(changes.active) });
    if (changes.timezone !== undefined)
      await this.q.run(this.s.setTimezone, { id, timezone: changes.timezone });
    if (changes.address !== undefined) await this.q.run(this.s.setAddress, { id, address: changes.address });
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

export class PgTerminals implements TerminalStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('terminals', {
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
      revoke: `INSERT INTO revoked_certificates (fingerprint, terminal_id, revoked_at)
        VALUES (@fingerprint, @id, @at) ON CONFLICT DO NOTHING`,
      dropPendingIfRevoked: `UPDATE terminals SET pending_fingerprint = NULL, pending_serial = NULL,
        pending_not_after = NULL WHERE id = @id AND pending_fingerprint = @fingerprint`,
      isRevoked: 'SELECT 1 FROM revoked_certificates WHERE fingerprint = @fingerprint',
      get: `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id = @id`,
      getMany: `SELECT ${TERMINAL_COLUMNS} FROM terminals WHERE id IN (SELECT jsonb_array_elements_text(@ids::jsonb))`,
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
        WHERE id = @id AND announced_status IS NOT DISTINCT FROM @previous`,
      setLocked: 'UPDATE terminals SET locked = @locked WHERE id = @id',
      locked: 'SELECT locked FROM terminals WHERE id = @id',
      ...LINK_SQL,
      heartbeats: `UPDATE terminals t SET last_seen = b.at, closed_cleanly = 0, battery_level = b.battery,
        health = b.health, clock_skew_ms = b.skew
        FROM jsonb_to_recordset(@beats::jsonb) AS b(id text, at bigint, battery integer, health text, skew bigint)
        WHERE t.id = b.id`,
    });
  }
  async insert(t: NewTerminal): Promise<void> {
    await this.q.run(this.s.insert, { ...t, replaces: t.replaces ?? null });
  }
  async page(filter: TerminalFilter, page: Page): Promise<TerminalRow[]> {
    return (
      (await this.q.all(this.s.page, {
        locationId: filter.locationId ?? null,
        organizationId: filter.organizationId ?? null,
        search: filter.search ? filter.search.toLowerCase() : null,
        ...page,
      })) as StoredTerminal[]
    ).map((r) => terminal(r)!);
  }
  async at(locationId: string): Promise<TerminalRow[]> {
    return ((await this.q.all(this.s.at, { locationId })) as StoredTerminal[]).map((r) => terminal(r)!);
  }
  async events(
    id: string,
    page: { beforeSeq: number | null; limit: number },
  ): Promise<TerminalStatusEventRow[]> {
    return (await this.q.all(this.s.events, { id, ...page })) as TerminalStatusEventRow[];
  }
  async setProblem(id: string, problem: string | null, at: number | null): Promise<void> {
    await this.q.run(this.s.setProblem, { id, problem, at });
  }
  async recordClockSkew(id: string, skewMs: number): Promise<void> {
    await this.q.run(this.s.clockSkew, { id, skewMs: Math.round(skewMs) });
  }
  async setReplacedBy(id: string, by: string): Promise<void> {
    await this.q.run(this.s.replacedBy, { id, by });
  }
  async revokeCertificate(id: string, fingerprint: string, at: number): Promise<void> {
    await this.q.run(this.s.revoke, { id, fingerprint, at });
    await this.q.run(this.s.dropPendingIfRevoked, { id, fingerprint });
  }
  async isRevoked(fingerprint: string): Promise<boolean> {
    return (await this.q.one(this.s.isRevoked, { fingerprint })) !== undefined;
  }
  async get(id: string): Promise<TerminalRow | undefined> {
    return terminal((await this.q.one(this.s.get, { id })) as StoredTerminal | undefined);
  }
  async getMany(ids: readonly string[]): Promise<TerminalRow[]> {
    if (ids.length === 0) return [];
    return ((await this.q.all(this.s.getMany, { ids: JSON.stringify(ids) })) as StoredTerminal[]).map(
      (r) => terminal(r)!,
    );
  }
  async list(locationId: string | null): Promise<TerminalRow[]> {
    return ((await this.q.all(this.s.list, { locationId })) as StoredTerminal[]).map((r) => terminal(r)!);
  }
  async idsAt(locationId: string): Promise<string[]> {
    return ((await this.q.all(this.s.idsAt, { locationId })) as { id: string }[]).map((r) => r.id);
  }
  async recordHello(
    id: string,
    now: number,
    hello: { bootId: string; softwareVersion: string; model: string | null; serialNumber: string | null },
  ): Promise<void> {
    await this.q.run(this.s.hello, { id, now, ...hello });
  }
  async recordHeartbeat(id: string, now: number, batteryLevel: number | null, health: string): Promise<void> {
    await this.q.run(this.s.heartbeat, { id, now, batteryLevel, health });
  }
  async recordHeartbeats(beats: readonly HeartbeatWrite[]): Promise<number> {
    if (beats.length === 0) return 0;
    const rows = beats.map((b) => ({
      id: b.id,
      at: b.at,
      battery: b.batteryLevel,
      health: b.health,
      skew: Math.round(b.clockSkewMs),
    }));
    return await this.q.run(this.s.heartbeats, { beats: JSON.stringify(rows) });
  }
  async recordDisconnect(id: string, closedCleanly: boolean): Promise<void> {
    await this.q.run(this.s.disconnected, { id, closedCleanly: bit(closedCleanly) });
  }
  async serialInUse(serial: string, exceptTerminalId: string): Promise<boolean> {
    return (await this.q.one(this.s.serialInUse, { serial, except: exceptTerminalId })) !== undefined;
  }
  async setPendingCertificate(
    id: string,
    fingerprint: string,
    serial: string,
    notAfter: number,
  ): Promise<void> {
    await this.q.run(this.s.setPending, { id, fingerprint, serial, notAfter });
  }
  async promotePendingCertificate(id: string): Promise<void> {
    await this.q.run(this.s.promote, { id });
  }
  async deactivate(id: string, now: number, reason: string): Promise<boolean> {
    return (await this.q.run(this.s.deactivate, { id, now, reason })) === 1;
  }
  async update(id: string, changes: { name?: string; locationId?: string }): Promise<void> {
    if (changes.name !== undefined) await this.q.run(this.s.rename, { id, name: changes.name });
    if (changes.locationId !== undefined)
      await this.q.run(this.s.move, { id, locationId: changes.locationId });
  }
  async setAnnouncedStatus(
    id: string,
    previous: string | null,
    status: string,
    at: number,
    reason: string | null,
  ): Promise<boolean> {
    if ((await this.q.run(this.s.announced, { id, status, at, previous })) !== 1) return false;
    await this.q.run(this.s.addEvent, { id, at, status, previous, reason });
    return true;
  }
  async setLocked(id: string, locked: boolean): Promise<void> {
    await this.q.run(this.s.setLocked, { id, locked: bit(locked) });
  }
  async locked(id: string): Promise<boolean> {
    return ((await this.q.one(this.s.locked, { id })) as { locked: number } | undefined)?.locked === 1;
  }
  async registerLink(id: string, gatewayId: string, version: number): Promise<boolean> {
    return (await this.q.run(this.s.registerLink, { id, gatewayId, version })) === 1;
  }
  async releaseLink(id: string, version: number): Promise<boolean> {
    return (await this.q.run(this.s.releaseLink, { id, version })) === 1;
  }
}

export class PgConfigs implements ConfigStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('configs', {
      template: 'SELECT template FROM location_configs WHERE location_id = @locationId',
      setTemplate: `INSERT INTO location_configs (location_id, template, updated_at)
        VALUES (@locationId, @template, @now)
        ON CONFLICT (location_id) DO UPDATE SET template = EXCLUDED.template, updated_at = EXCLUDED.updated_at`,
      get: `SELECT terminal_id AS terminalId, overrides, desired, version, applied_version AS appliedVersion,
        status, errors, updated_at AS updatedAt FROM terminal_configs WHERE terminal_id = @terminalId`,
      nextVersion: "UPDATE counters SET value = value + 1 WHERE name = 'config_version' RETURNING value",
      put: `INSERT INTO terminal_configs (terminal_id, overrides, desired, version, applied_version, status, errors,
        updated_at) VALUES (@terminalId, @overrides, @desired, @version, @appliedVersion, @status, @errors, @updatedAt)
        ON CONFLICT(terminal_id) DO UPDATE SET overrides = @overrides, desired = @desired, version = @version,
        applied_version = @appliedVersion, status = @status, errors = @errors, updated_at = @updatedAt`,
    });
  }
  async template(locationId: string): Promise<string | null> {
    return (
      ((await this.q.one(this.s.template, { locationId })) as { template: string } | undefined)?.template ??
      null
    );
  }
  async setTemplate(locationId: string, template: string, now: number): Promise<void> {
    await this.q.run(this.s.setTemplate, { locationId, template, now });
  }
  async get(terminalId: string): Promise<TerminalConfigRow | undefined> {
    return (await this.q.one(this.s.get, { terminalId })) as TerminalConfigRow | undefined;
  }
  async nextVersion(): Promise<number> {
    return ((await this.q.one(this.s.nextVersion)) as { value: number }).value;
  }
  async put(row: TerminalConfigRow): Promise<void> {
    await this.q.run(this.s.put, row);
  }
}

export class PgDiagnostics implements DiagnosticsStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('diagnostics', {
      save: `INSERT INTO diagnostics_reports (terminal_id, report, received_at)
        VALUES (@terminalId, @report, @now)
        ON CONFLICT (terminal_id) DO UPDATE SET report = EXCLUDED.report, received_at = EXCLUDED.received_at`,
      last: 'SELECT report, received_at AS receivedAt FROM diagnostics_reports WHERE terminal_id = @terminalId',
    });
  }
  async save(terminalId: string, report: string, now: number): Promise<void> {
    await this.q.run(this.s.save, { terminalId, report, now });
  }
  async last(terminalId: string): Promise<{ report: string; receivedAt: number } | undefined> {
    return (await this.q.one(this.s.last, { terminalId })) as
      | { report: string; receivedAt: number }
      | undefined;
  }
}
