import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import {
  type ConfigLayer,
  configValidator,
  effectiveConfig,
  layerValidator,
  mergePatch,
  type TerminalConfig,
} from '../../protocol/config-schema.js';
import { DisplayName } from '../../protocol/formats.js';
import type { ConfigApplied, DiagnosticsReport, TerminalProfile } from '../../protocol/messages.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator, describeIssues, type SchemaIssue } from '../../protocol/schema-validation.js';
import { CloseCode } from '../../protocol/version.js';
import { isFormBody, parseBody } from '../body-validation.js';
import type { CloudBus, ConfigPush } from '../cloud-events.js';
import { checkCursor, type ListOf, listPage, pageOf } from '../list-page.js';
import { unixSeconds } from '../rest-time.js';
import type { CloudStore, TerminalRow, TerminalStatusEventRow } from '../store/store-types.js';
import { withAnswer, withDesired } from './config-rollout.js';
import { type LocationView, OrganizationService } from './organization-service.js';
import {
  type StatusReason,
  type StatusThresholds,
  statusWithReason,
  TERMINAL_STATUSES,
  type TerminalStatus,
} from './terminal-status.js';

/** The fleet's application logic between the REST API / gateway and the store. */
export interface FleetServiceOptions {
  store: CloudStore;
  now(): number;
  thresholds: StatusThresholds;
  /** Who is connected, and the diagnostics call over a link (cloud/gateway/agent-links.ts). */
  links: {
    /** Its link is open on some gateway (cloud/gateway/link-router.ts: presence, leases). */
    connected(row: Pick<TerminalRow, 'id' | 'linkGateway'>): boolean;
    requestDiagnostics(terminalId: string): Promise<DiagnosticsReport>;
    ping(
      terminalId: string,
      timeoutMs: number,
    ): Promise<{ connected: false } | { connected: true; answered: boolean; rttMs: number; error?: string }>;
    rotateCertificate(terminalId: string): Promise<{ accepted: true }>;
    close(terminalId: string, code: number, reason: string): Promise<boolean>;
    whenHello(terminalId: string, timeoutMs: number): Promise<boolean>;
  };
  /** How long `activate` waits for the new terminal's first Hello (VINR answers it online). */
  activateWaitMs?: number;
  /** Where it says what changed: desired configs to push, renames and moves, deactivations. */
  events: CloudBus;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Defaults at the bottom of every terminal's config (the cloud's own heartbeat/ping flags included). */
  configDefaults: TerminalConfig;
}

export interface TerminalConfigView {
  version: number;
  desired: unknown;
  overrides: unknown;
  appliedVersion: number | null;
  status: 'pending' | 'applied' | 'rejected';
  error?: string;
  errors?: { path: string; message: string }[];
}

const TerminalUpdate = Type.Object(
  {
    name: Type.Optional(DisplayName),
    /** VINR's name for `name`. */
    displayName: Type.Optional(DisplayName),
    locationId: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
const CheckConnection = Type.Object(
  { timeoutMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 30_000 })) },
  { additionalProperties: false },
);
const Revocation = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
const Deactivation = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
const ConnectedQuery = Type.Object(
  {
    merchantAccount: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    store: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
    locationId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    uniqueTerminalId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

const validators = {
  update: compileValidator(TerminalUpdate),
  deactivate: compileValidator(Deactivation),
  checkConnection: compileValidator(CheckConnection),
  revoke: compileValidator(Revocation),
  connected: compileValidator(ConnectedQuery),
};

export interface TerminalView {
  id: string;
  object: 'terminal';
  name: string;
  model: string | null;
  serialNumber: string | null;
  status: TerminalStatus;
  /** Why it has this status (`certificate_expired`, `clock`, `no_heartbeat`, …); null when nothing to say. */
  statusReason: StatusReason | null;
  /** Unix seconds: when the status began (as announced), null before the first announcement. */
  statusSince: number | null;
  connected: boolean;
  lastSeen: number | null;
  locationId: string;
  organizationId: string | null;
  softwareVersion: string | null;
  batteryLevel: number | null;
  createdAt: number;
  /** Unix seconds, as every REST time. */
  certificate: { notAfter: number; serial: string };
  config: { version: number | null; appliedVersion: number | null; status: string | null };
  locked: boolean;
  health: unknown;
  deactivatedAt?: number;
  deactivationReason?: string | null;
  /** Replacement links, both ways (PeakPOS: old and new records stay apart). */
  replaces: string | null;
  replacedBy: string | null;
}

export interface TerminalEventView {
  id: string;
  object: 'terminal_event';
  terminalId: string;
  status: string;
  previousStatus: string | null;
  reason: string | null;
  /** Unix seconds. */
  at: number;
}

function eventView(e: TerminalStatusEventRow & { id: string }): TerminalEventView {
  return {
    id: e.id,
    object: 'terminal_event',
    terminalId: e.terminalId,
    status: e.status,
    previousStatus: e.previousStatus,
    reason: e.reason,
    at: Math.floor(e.at / 1000),
  };
}

/** `tev_12` → 12; anything else is not an event of this list. */
function eventSeqOf(cursor: string): number {
  const m = /^tev_([1-9]\d{0,15})$/.exec(cursor);
  if (!m) throw new Refusal('invalid_request', `starting_after ${cursor} is not an event id (tev_…)`);
  return Number(m[1]);
}

export class FleetService {
  /** Organizations and stores, their counts from this service's statuses. */
  readonly organizations: OrganizationService;

  constructor(private readonly o: FleetServiceOptions) {
    this.organizations = new OrganizationService({
      store: o.store,
      now: o.now,
      statusOf: (row) => this.status(row),
    });
  }

  async createLocation(body: unknown): Promise<LocationView> {
    return await this.organizations.createLocation(body);
  }

  async getLocation(id: string): Promise<LocationView> {
    return await this.organizations.getLocation(id);
  }

  // ---- configuration: defaults ← location template ← terminal overrides ----

  private configIssues(issues: SchemaIssue[]): string {
    return `invalid configuration: ${describeIssues(issues)}`;
  }

  /** The layers merged; a maintenance window that names no time zone is in the store's (issue 24). */
  private effective(template: unknown, overrides: unknown, timezone: string | null): unknown {
    const e = effectiveConfig(template, overrides, this.o.configDefaults) as { maintenance?: unknown };
    const m = e?.maintenance;
    if (timezone && typeof m === 'object' && m !== null && !('timezone' in m))
      return { ...e, maintenance: { ...m, timezone } };
    return e;
  }

  private async timezoneOf(locationId: string): Promise<string | null> {
    return (await this.o.store.locations.get(locationId))?.timezone ?? null;
  }

  private async templateOf(locationId: string): Promise<unknown> {
    return JSON.parse((await this.o.store.configs.template(locationId)) ?? '{}');
  }

  /** `PUT /v1/locations/{id}/terminal-config`: replaces the template; every terminal there gets a new version. */
  async setLocationTemplate(
    locationId: string,
    body: unknown,
  ): Promise<{ locationId: string; template: ConfigLayer; terminals: number }> {
    if (!(await this.o.store.locations.get(locationId)))
      throw new Refusal('not_found', `no location ${locationId}`);
    const check = layerValidator.check(body);
    if (!check.ok) throw new Refusal('invalid_config', this.configIssues(check.issues));
    const ids = await this.o.store.terminals.idsAt(locationId);
    const timezone = await this.timezoneOf(locationId);
    const changes: { terminalId: string; overrides: string; desired: string }[] = [];
    for (const terminalId of ids) {
      const overrides = await this.overridesOf(terminalId);
      changes.push({
        terminalId,
        overrides: JSON.stringify(overrides),
        desired: JSON.stringify(this.effective(check.value, overrides, timezone)),
      });
    }
    const pushes = await this.setDesired(changes, { locationId, template: JSON.stringify(check.value) });
    await this.o.events.emit('config.desired', { pushes });
    return { locationId, template: check.value, terminals: ids.length };
  }

  /**
   * New desired configs, each with a fresh version, in one transaction (a template change touches
   * every terminal of its location); the template is stored first when given.
   */
  private async setDesired(
    changes: { terminalId: string; overrides: string; desired: string }[],
    template?: { locationId: string; template: string },
  ): Promise<ConfigPush[]> {
    const now = this.o.now();
    const configs = this.o.store.configs;
    return await this.o.store.transaction(async () => {
      if (template) await configs.setTemplate(template.locationId, template.template, now);
      const pushes: ConfigPush[] = [];
      for (const c of changes) {
        const version = await configs.nextVersion();
        await configs.put(withDesired(await configs.get(c.terminalId), c.terminalId, { ...c, version }, now));
        pushes.push({
          terminalId: c.terminalId,
          version,
          config: JSON.parse(c.desired) as Record<string, unknown>,
        });
      }
      return pushes;
    });
  }

  async getLocationTemplate(locationId: string): Promise<{ locationId: string; template: unknown }> {
    if (!(await this.o.store.locations.get(locationId)))
      throw new Refusal('not_found', `no location ${locationId}`);
    return { locationId, template: await this.templateOf(locationId) };
  }

  private async overridesOf(terminalId: string): Promise<ConfigLayer> {
    const row = await this.o.store.configs.get(terminalId);
    return row ? (JSON.parse(row.overrides) as ConfigLayer) : {};
  }

  /**
   * `POST /v1/terminals/{id}/configure`: a JSON merge patch onto the terminal's overrides
   * (`null` removes an override, so the template or default shows through again).
   * `validate: false` is for developers who want to see a terminal refuse a bad config: the
   * reference cloud then stores and pushes it as is.
   */
  async configureTerminal(terminalId: string, body: unknown, validate = true): Promise<TerminalView> {
    const row = await this.o.store.terminals.get(terminalId);
    if (!row) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new Refusal('invalid_config', 'the configuration must be a JSON object');
    }
    // A form body (tip[mode]=percentage&tip[suggestions][]=10) has strings where the schema wants numbers.
    if (isFormBody(body)) body = Value.Convert(layerValidator.schema, body);
    let overrides: unknown;
    try {
      overrides = mergePatch(await this.overridesOf(terminalId), body);
    } catch (err) {
      if (err instanceof RangeError) throw new Refusal('invalid_config', err.message);
      throw err;
    }
    const template = await this.templateOf(row.locationId);
    const desired = this.effective(template, overrides, await this.timezoneOf(row.locationId));
    if (validate) {
      const layer = layerValidator.check(overrides);
      if (!layer.ok) throw new Refusal('invalid_config', this.configIssues(layer.issues));
      const full = configValidator.check(desired);
      if (!full.ok) throw new Refusal('invalid_config', this.configIssues(full.issues));
    }
    const pushes = await this.setDesired([
      { terminalId, overrides: JSON.stringify(overrides), desired: JSON.stringify(desired) },
    ]);
    await this.o.events.emit('config.desired', { pushes });
    return await this.getTerminal(terminalId);
  }

  /** The desired config of a terminal (made from its location's template if it has none: at start, at Hello). */
  async desiredConfig(
    terminalId: string,
  ): Promise<{ version: number; config: Record<string, unknown> } | null> {
    let c = await this.o.store.configs.get(terminalId);
    if (!c) {
      const row = await this.o.store.terminals.get(terminalId);
      if (!row) return null;
      const template = await this.templateOf(row.locationId);
      await this.setDesired([
        {
          terminalId,
          overrides: '{}',
          desired: JSON.stringify(this.effective(template, {}, await this.timezoneOf(row.locationId))),
        },
      ]);
      c = (await this.o.store.configs.get(terminalId))!;
    }
    return { version: c.version, config: JSON.parse(c.desired) as Record<string, unknown> };
  }

  /**
   * Every terminal has its desired config from its enrollment on (`enrolled`); one enrolled by an
   * older cloud that never connected gets it here, at start — so that no GET has to write one.
   */
  async start(): Promise<void> {
    for (const t of await this.o.store.terminals.list(null))
      if (!(await this.o.store.configs.get(t.id))) await this.desiredConfig(t.id);
  }

  /** `GET /v1/terminals/{id}/config`: reads only. */
  async getTerminalConfig(terminalId: string): Promise<TerminalConfigView> {
    if (!(await this.o.store.terminals.get(terminalId)))
      throw new Refusal('not_found', `no terminal ${terminalId}`);
    const c = await this.o.store.configs.get(terminalId);
    if (!c) throw new Refusal('not_found', `terminal ${terminalId} has no configuration yet`);
    const errors = c.errors ? (JSON.parse(c.errors) as { path: string; message: string }[]) : undefined;
    return {
      version: c.version,
      desired: JSON.parse(c.desired),
      overrides: JSON.parse(c.overrides),
      appliedVersion: c.appliedVersion,
      status: c.status,
      ...(errors
        ? {
            errors,
            error: `terminal refused version ${c.version}: ${errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`,
          }
        : {}),
    };
  }

  async recordConfigAck(terminalId: string, ack: ConfigApplied): Promise<void> {
    const answer = {
      version: ack.version,
      status: ack.status,
      errors: ack.status === 'rejected' ? JSON.stringify(ack.errors) : null,
      appliedVersion: ack.appliedVersion,
    };
    await this.o.store.transaction(async () => {
      const next = withAnswer(await this.o.store.configs.get(terminalId), answer, this.o.now());
      if (next) await this.o.store.configs.put(next);
    });
    this.o.log[ack.status === 'applied' ? 'info' : 'warn'](
      { terminalId, version: ack.version, errors: ack.errors },
      `config ${ack.status}`,
    );
  }

  status(row: TerminalRow): TerminalStatus {
    return this.statusWithReason(row).status;
  }

  statusWithReason(row: TerminalRow): ReturnType<typeof statusWithReason> {
    return statusWithReason(
      {
        deactivated: row.deactivatedAt !== null,
        lastSeenMs: row.lastSeen,
        connected: this.o.links.connected(row),
        closedCleanly: row.closedCleanly,
        certNotAfterMs: row.certNotAfter,
        problem: row.problem,
        clockSkewMs: row.clockSkewMs,
      },
      this.o.now(),
      this.o.thresholds,
    );
  }

  /** The terminal's profile as the device is told it (name, store and the store's name). */
  async terminalProfile(terminalId: string): Promise<TerminalProfile | null> {
    const row = await this.o.store.terminals.get(terminalId);
    if (!row) return null;
    const location = await this.o.store.locations.get(row.locationId);
    const org = location ? await this.o.store.organizations.get(location.organizationId) : undefined;
    return {
      name: row.name,
      locationId: row.locationId,
      ...(location ? { locationName: location.name } : {}),
      ...(org ? { organizationId: org.id, organizationSlug: org.slug, organizationName: org.name } : {}),
    };
  }

  // ---- lifecycle ----

  /** `POST /v1/terminals/{id}/deactivate`: its certificate is refused from now on. Idempotent. */
  async deactivate(terminalId: string, body: unknown): Promise<TerminalView> {
    const req = parseBody(validators.deactivate, body);
    if (!(await this.o.store.terminals.get(terminalId)))
      throw new Refusal('not_found', `no terminal ${terminalId}`);
    await this.deactivateTerminal(terminalId, req.reason ?? 'deactivated by the fleet operator');
    return await this.getTerminal(terminalId);
  }

  async deactivateTerminal(terminalId: string, reason: string): Promise<void> {
    await this.o.store.transaction(async () => {
      if (await this.o.store.terminals.deactivate(terminalId, this.o.now(), reason)) {
        await this.o.events.emit('terminal.deactivated', { terminalId, reason });
        this.o.log.info({ terminalId, reason }, 'terminal deactivated');
      }
    });
  }

  /** `POST /v1/terminals/{id} {name?, locationId?}`: rename or move; a move re-layers its config. */
  async updateTerminal(terminalId: string, body: unknown): Promise<TerminalView> {
    const { displayName, ...rest } = parseBody(validators.update, body);
    if (displayName !== undefined && rest.name !== undefined && displayName !== rest.name)
      throw new Refusal('invalid_request', 'name and displayName are the same field: give one');
    const req = { ...rest, ...(displayName !== undefined ? { name: displayName } : {}) };
    const row = await this.o.store.terminals.get(terminalId);
    if (!row) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (req.locationId !== undefined && req.locationId !== row.locationId)
      await this.organizations.activeLocation(req.locationId);
    const moved = req.locationId !== undefined && req.locationId !== row.locationId;
    const pushes = await this.o.store.transaction(async () => {
      await this.o.store.terminals.update(terminalId, req);
      return moved ? [await this.relayer(terminalId, await this.overridesOf(terminalId))] : [];
    });
    if (moved) await this.o.events.emit('config.desired', { pushes });
    if (moved || (req.name !== undefined && req.name !== row.name))
      await this.o.events.emit('terminal.profile', { terminalId });
    return await this.getTerminal(terminalId);
  }

  /**
   * A terminal was enrolled (inside the creating transaction): its first desired config, from its
   * location's template — a replacement takes over the old terminal's overrides (its name and
   * location came with the code), and the old terminal is deactivated.
   */
  async enrolled(terminalId: string, replaces: string | null): Promise<void> {
    await this.relayer(terminalId, replaces ? await this.overridesOf(replaces) : {});
    if (replaces) {
      await this.o.store.terminals.setReplacedBy(replaces, terminalId);
      await this.deactivateTerminal(replaces, `replaced by terminal ${terminalId}`);
    }
  }

  private async relayer(terminalId: string, overrides: ConfigLayer): Promise<ConfigPush> {
    const row = (await this.o.store.terminals.get(terminalId))!;
    const desired = this.effective(
      await this.templateOf(row.locationId),
      overrides,
      await this.timezoneOf(row.locationId),
    );
    return (
      await this.setDesired([
        { terminalId, overrides: JSON.stringify(overrides), desired: JSON.stringify(desired) },
      ])
    )[0]!;
  }

  async terminalView(row: TerminalRow): Promise<TerminalView> {
    const connected = this.o.links.connected(row);
    const { status, reason, sinceMs } = this.statusWithReason(row);
    const since = status === row.announcedStatus ? row.announcedAt : (sinceMs ?? this.o.now());
    return {
      id: row.id,
      object: 'terminal',
      name: row.name,
      model: row.model,
      serialNumber: row.serialNumber,
      status,
      statusReason: reason === 'heartbeat' ? null : reason,
      statusSince: since === null ? null : Math.floor(since / 1000),
      connected,
      lastSeen: row.lastSeen === null ? null : Math.floor(row.lastSeen / 1000),
      locationId: row.locationId,
      organizationId: (await this.o.store.locations.get(row.locationId))?.organizationId ?? null,
      softwareVersion: row.softwareVersion,
      batteryLevel: row.batteryLevel,
      createdAt: Math.floor(row.createdAt / 1000),
      certificate: { notAfter: unixSeconds(row.certNotAfter), serial: row.certSerial },
      config: await (async () => {
        const c = await this.o.store.configs.get(row.id);
        return c
          ? { version: c.version, appliedVersion: c.appliedVersion, status: c.status }
          : { version: null, appliedVersion: null, status: null };
      })(),
      locked: await this.o.store.terminals.locked(row.id),
      health: row.health === null ? null : JSON.parse(row.health),
      ...(row.deactivatedAt !== null
        ? {
            deactivatedAt: Math.floor(row.deactivatedAt / 1000),
            deactivationReason: row.deactivationReason,
          }
        : {}),
      replaces: row.replaces,
      replacedBy: row.replacedBy,
    };
  }

  /** `POST /v1/terminals/{id}/diagnostics`: the terminal runs its checks now; the report is kept. */
  async runDiagnostics(id: string): Promise<Record<string, unknown>> {
    const found = await this.o.store.terminals.get(id);
    if (!found) throw new Refusal('not_found', `no terminal ${id}`);
    if (!this.o.links.connected(found))
      throw new Refusal(
        'terminal_offline',
        `terminal ${id} is not connected; GET …/diagnostics returns its last report`,
      );
    let report: DiagnosticsReport;
    try {
      report = await this.o.links.requestDiagnostics(id);
    } catch (err) {
      throw new Refusal(
        'diagnostics_failed',
        `the terminal did not return a report: ${(err as Error).message}`,
      );
    }
    const now = this.o.now();
    await this.o.store.diagnostics.save(id, JSON.stringify(report), now);
    return this.diagnosticsView(id, report, now);
  }

  async lastDiagnostics(id: string): Promise<Record<string, unknown>> {
    const row = await this.o.store.diagnostics.last(id);
    if (!row) throw new Refusal('not_found', `no diagnostics report from terminal ${id} yet`);
    return this.diagnosticsView(id, JSON.parse(row.report) as DiagnosticsReport, row.receivedAt);
  }

  private diagnosticsView(terminalId: string, report: DiagnosticsReport, receivedAt: number) {
    return {
      object: 'diagnostics_report',
      terminalId,
      receivedAt: unixSeconds(receivedAt),
      ...report,
    };
  }

  private async terminalRow(id: string): Promise<TerminalRow> {
    const row = await this.o.store.terminals.get(id);
    if (!row) throw new Refusal('not_found', `no terminal ${id}`);
    return row;
  }

  /** `GET /v1/terminals/{id}/events`: its status history, newest first. */
  async terminalEvents(id: string, query: URLSearchParams): Promise<ListOf<TerminalEventView>> {
    await this.terminalRow(id);
    const page = pageOf(query, 20);
    return await listPage(
      page,
      async (p) =>
        (
          await this.o.store.terminals.events(id, {
            limit: p.limit,
            beforeSeq: p.after === null ? null : eventSeqOf(p.after),
          })
        ).map((e) => ({ ...e, id: `tev_${e.seq}` })),
      eventView,
    );
  }

  /**
   * `GET /v1/terminals/{id}/escalation`: everything the PeakPOS guide says an escalation includes
   * — org slug, store name, terminal name and identifiers, last heartbeat, certificate expiry —
   * with the status and its reason, the store's counts and the recent status changes.
   */
  async escalation(id: string): Promise<Record<string, unknown>> {
    const row = await this.terminalRow(id);
    const view = await this.terminalView(row);
    const location = await this.o.store.locations.get(row.locationId);
    const org = location ? await this.o.store.organizations.get(location.organizationId) : undefined;
    const now = this.o.now();
    const health = row.health ? (JSON.parse(row.health) as { receivedAt?: string }) : null;
    return {
      object: 'escalation',
      generatedAt: Math.floor(now / 1000),
      organization: org ? { id: org.id, slug: org.slug, name: org.name } : null,
      store: location
        ? {
            id: location.id,
            name: location.name,
            active: location.active,
            timezone: location.timezone,
            counts: await this.organizations.counts(location.id),
          }
        : null,
      terminal: {
        id: row.id,
        name: row.name,
        serialNumber: row.serialNumber,
        model: row.model,
        poiid: row.model && row.serialNumber ? `${row.model}-${row.serialNumber}` : null,
        bootId: row.bootId,
        softwareVersion: row.softwareVersion,
        replaces: row.replaces,
        replacedBy: row.replacedBy,
      },
      status: view.status,
      statusReason: view.statusReason,
      statusSince: view.statusSince,
      connected: view.connected,
      lastHeartbeat: health?.receivedAt ? Math.floor(Date.parse(health.receivedAt) / 1000) : null,
      lastSeen: view.lastSeen,
      neverHeartbeated: row.lastSeen === null,
      certificate: {
        notAfter: view.certificate.notAfter,
        daysLeft: Math.floor((row.certNotAfter - now) / 86_400_000),
        expired: row.certNotAfter <= now,
      },
      clockSkewSec: row.clockSkewMs === null ? null : Math.round(row.clockSkewMs / 1000),
      recentEvents: (await this.o.store.terminals.events(id, { limit: 10, beforeSeq: null })).map((e) =>
        eventView({ ...e, id: `tev_${e.seq}` }),
      ),
    };
  }

  /**
   * \`POST /v1/terminals/{id}/revoke-certificate\`: its link closes at once and its certificate
   * (and a pending one) is refused from then on; the terminal shows \`error\`
   * (certificate_revoked) until it is reprovisioned.
   */
  async revokeCertificate(id: string, body: unknown): Promise<TerminalView> {
    const req = parseBody(validators.revoke, body);
    const row = await this.terminalRow(id);
    if (row.deactivatedAt !== null)
      throw new Refusal(
        'terminal_deactivated',
        `terminal ${id} is deactivated; its certificate is refused already`,
      );
    const now = this.o.now();
    await this.o.store.transaction(async () => {
      await this.o.store.terminals.revokeCertificate(id, row.certFingerprint, now);
      if (row.pendingFingerprint)
        await this.o.store.terminals.revokeCertificate(id, row.pendingFingerprint, now);
      await this.o.store.terminals.setProblem(id, 'certificate_revoked', now);
    });
    await this.o.links.close(id, CloseCode.refused, 'certificate revoked');
    this.o.log.info({ terminalId: id, reason: req.reason }, 'terminal certificate revoked');
    await this.o.events.emit('terminal.status', { terminalId: id });
    return await this.getTerminal(id);
  }

  /** \`POST /v1/terminals/{id}/rotate-certificate\`: an online terminal renews its certificate now. */
  async rotateCertificate(id: string): Promise<Record<string, unknown>> {
    const row = await this.terminalRow(id);
    if (row.deactivatedAt !== null)
      throw new Refusal('terminal_deactivated', `terminal ${id} is deactivated`);
    if (!this.o.links.connected(row))
      throw new Refusal(
        'terminal_offline',
        `terminal ${id} is not connected; it renews by itself when it is, or reprovision it (POST /v1/terminals/${id}/reprovision)`,
      );
    try {
      await this.o.links.rotateCertificate(id);
    } catch (err) {
      throw new Refusal(
        'terminal_unreachable',
        `the terminal did not take the request: ${(err as Error).message}`,
      );
    }
    return {
      object: 'certificate_rotation',
      terminalId: id,
      status: 'requested',
      previous: { notAfter: unixSeconds(row.certNotAfter), serial: row.certSerial },
    };
  }

  /**
   * \`POST /v1/terminals/{id}/check-connection\` (Adyen "Check connection"): a real round trip
   * over the link, not the cached flag — connected and answering (with the RTT), connected but
   * not answering, or disconnected.
   */
  async checkConnection(id: string, body: unknown): Promise<Record<string, unknown>> {
    const req = parseBody(validators.checkConnection, body);
    await this.terminalRow(id);
    const timeoutMs = req.timeoutMs ?? 5000;
    const r = await this.o.links.ping(id, timeoutMs);
    const at = Math.floor(this.o.now() / 1000);
    if (!r.connected)
      return {
        object: 'connection_check',
        terminalId: id,
        connected: false,
        reason: 'no link: the terminal is turned off or cannot reach the cloud',
        checkedAt: at,
      };
    if (!r.answered)
      return {
        object: 'connection_check',
        terminalId: id,
        connected: false,
        linkOpen: true,
        reason: r.error
          ? `the link is open but the terminal did not answer: ${r.error}`
          : `the link is open but the terminal did not answer within ${timeoutMs} ms`,
        checkedAt: at,
      };
    return { object: 'connection_check', terminalId: id, connected: true, rttMs: r.rttMs, checkedAt: at };
  }

  /**
   * \`POST /v1/terminals/activate\` answers with the terminal once it is online: it waits for the
   * device's first Hello at most \`activateWaitMs\` (\`?wait=<seconds>\`, 0–60, overrides), then
   * answers with whatever status it has (provisioning when the device has not come yet).
   */
  activateWaitOf(query: URLSearchParams): number {
    const raw = query.get('wait');
    if (raw !== null && !(/^\d{1,2}$/.test(raw) && Number(raw) <= 60))
      throw new Refusal('invalid_request', 'wait must be whole seconds from 0 to 60');
    return raw === null ? (this.o.activateWaitMs ?? 15_000) : Number(raw) * 1000;
  }

  async activated(terminalId: string, waitMs: number): Promise<TerminalView> {
    await this.o.links.whenHello(terminalId, waitMs);
    return await this.getTerminal(terminalId);
  }

  async getTerminal(id: string): Promise<TerminalView> {
    const row = await this.o.store.terminals.get(id);
    if (!row) throw new Refusal('not_found', `no terminal ${id}`);
    return await this.terminalView(row);
  }

  /**
   * `GET /v1/terminals?locationId&organizationId&status&q&limit&starting_after`: newest first,
   * paged by keyset in the store (a terminal whose status changes between two pages is neither
   * lost nor repeated); `status` is derived, so it is filtered here, batch by batch.
   */
  async listTerminals(query: URLSearchParams): Promise<ListOf<TerminalView>> {
    const page = pageOf(query);
    const status = query.get('status');
    if (status !== null && !TERMINAL_STATUSES.includes(status as TerminalStatus))
      throw new Refusal('invalid_request', `status must be one of ${TERMINAL_STATUSES.join(', ')}`);
    const locationId = query.get('locationId');
    const location = locationId === null ? null : await this.organizations.location(locationId);
    const org = query.get('organizationId');
    const organization = org === null ? null : await this.organizations.organization(org);
    if (location && organization && location.organizationId !== organization.id)
      throw new Refusal(
        'invalid_request',
        `location ${location.id} belongs to organization ${location.organizationId}, not ${organization.id}`,
      );
    const search = query.get('q') ?? query.get('search');
    if (search !== null && (search.length < 1 || search.length > 100))
      throw new Refusal('invalid_request', 'q (a serial, a name or a POIID) must be 1–100 characters');
    await checkCursor(page, async (id) => (await this.o.store.terminals.get(id)) !== undefined);
    const filter = { locationId, organizationId: organization?.id ?? null, search };
    return await listPage(
      page,
      async (p) => await this.o.store.terminals.page(filter, p),
      async (r) => await this.terminalView(r),
      status === null ? undefined : (r) => this.status(r) === status,
    );
  }

  /**
   * \`POST /v1/connectedTerminals\`: the terminals with a live link. Asked Adyen's way
   * (\`merchantAccount\` = the organization's slug, \`store\` = a store's id or name in it,
   * \`uniqueTerminalId\` = a POIID \`[model]-[serial]\`), it answers in POIIDs; asked our way
   * (\`locationId\`, a terminal id), in our ids. Whatever is named must belong to the merchant account.
   */
  async connectedTerminals(
    body: unknown,
    connectedIds: Iterable<string>,
  ): Promise<{ uniqueTerminalIds: string[] }> {
    const q = parseBody(validators.connected, body);
    const adyen = q.merchantAccount !== undefined;
    if (!adyen && q.store !== undefined)
      throw new Refusal('invalid_request', 'store needs merchantAccount (the organization slug) beside it');
    const org = adyen ? await this.organizations.organization(q.merchantAccount!) : null;
    let locationId = q.locationId ?? null;
    if (org && q.store !== undefined) {
      const store =
        (await this.o.store.locations.get(q.store)) ??
        (await this.o.store.locations.byName(org.id, q.store)) ??
        null;
      if (!store || store.organizationId !== org.id)
        throw new Refusal('not_found', `no store ${q.store} in merchant account ${q.merchantAccount}`);
      locationId = store.id;
    } else if (locationId !== null) {
      const store = await this.organizations.location(locationId);
      if (org && store.organizationId !== org.id)
        throw new Refusal('not_found', `no store ${locationId} in merchant account ${q.merchantAccount}`);
    }
    const poiid = (r: TerminalRow) => (r.model && r.serialNumber ? `${r.model}-${r.serialNumber}` : r.id);
    let only: TerminalRow | null = null;
    if (q.uniqueTerminalId !== undefined) {
      only =
        (await this.o.store.terminals.get(q.uniqueTerminalId)) ??
        (await this.o.store.terminals.page({ search: q.uniqueTerminalId }, { after: null, limit: 2 })).find(
          (r) => poiid(r).toLowerCase() === q.uniqueTerminalId!.toLowerCase() && r.deactivatedAt === null,
        ) ??
        null;
      const inOrg =
        only && (!org || (await this.o.store.locations.get(only.locationId))?.organizationId === org.id);
      if (!only || !inOrg)
        throw new Refusal(
          'not_found',
          `no terminal ${q.uniqueTerminalId}${org ? ` in merchant account ${q.merchantAccount}` : ''}`,
        );
    }
    const ids: string[] = [];
    const connected = new Set(connectedIds);
    const rows = only
      ? [only]
      : await Promise.all([...connected].map((id) => this.o.store.terminals.get(id)));
    for (const r of rows) {
      if (!r || !connected.has(r.id)) continue;
      if (locationId !== null && r.locationId !== locationId) continue;
      if (org && (await this.o.store.locations.get(r.locationId))?.organizationId !== org.id) continue;
      // A specific terminal is answered with the id it was asked by.
      ids.push(only ? q.uniqueTerminalId! : adyen ? poiid(r) : r.id);
    }
    return { uniqueTerminalIds: ids.sort() };
  }
}
