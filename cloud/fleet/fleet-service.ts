import { Type } from '@sinclair/typebox';
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
import { parseBody } from '../body-validation.js';
import type { CloudBus, ConfigPush } from '../cloud-events.js';
import { newId } from '../fleet-ids.js';
import type { CloudStore, LocationRow, TerminalRow } from '../store/store-types.js';
import { withAnswer, withDesired } from './config-rollout.js';
import { deriveTerminalStatus, type StatusThresholds, type TerminalStatus } from './terminal-status.js';

/** The fleet's application logic between the REST API / gateway and the store. */
export interface FleetServiceOptions {
  store: CloudStore;
  now(): number;
  thresholds: StatusThresholds;
  /** Who is connected, and the diagnostics call over a link (cloud/gateway/agent-links.ts). */
  links: {
    isConnected(terminalId: string): boolean;
    requestDiagnostics(terminalId: string): Promise<DiagnosticsReport>;
  };
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

const LocationCreate = Type.Object({ name: DisplayName }, { additionalProperties: false });
const TerminalUpdate = Type.Object(
  {
    name: Type.Optional(DisplayName),
    locationId: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
const Deactivation = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 500 })) },
  { additionalProperties: false },
);
const ConnectedQuery = Type.Object(
  { locationId: Type.Optional(Type.String()), uniqueTerminalId: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

const validators = {
  location: compileValidator(LocationCreate),
  update: compileValidator(TerminalUpdate),
  deactivate: compileValidator(Deactivation),
  connected: compileValidator(ConnectedQuery),
};

export interface TerminalView {
  id: string;
  object: 'terminal';
  name: string;
  model: string | null;
  serialNumber: string | null;
  status: TerminalStatus;
  connected: boolean;
  lastSeen: number | null;
  locationId: string;
  softwareVersion: string | null;
  batteryLevel: number | null;
  createdAt: number;
  certificate: { notAfter: string };
  config: { version: number | null; appliedVersion: number | null; status: string | null };
  locked: boolean;
  health: unknown;
  deactivatedAt?: number;
  deactivationReason?: string | null;
}

export class FleetService {
  constructor(private readonly o: FleetServiceOptions) {}

  createLocation(body: unknown): LocationRow & { object: 'location' } {
    const { name } = parseBody(validators.location, body);
    const row = { id: newId('loc'), name, createdAt: Math.floor(this.o.now() / 1000) };
    this.o.store.locations.insert(row);
    return { ...row, object: 'location' };
  }

  getLocation(id: string): LocationRow & { object: 'location' } {
    const row = this.o.store.locations.get(id);
    if (!row) throw new Refusal('not_found', `no location ${id}`);
    return { ...row, object: 'location' };
  }

  // ---- configuration: defaults ← location template ← terminal overrides ----

  private configIssues(issues: SchemaIssue[]): string {
    return `invalid configuration: ${describeIssues(issues)}`;
  }

  private effective(template: unknown, overrides: unknown): unknown {
    return effectiveConfig(template, overrides, this.o.configDefaults);
  }

  private templateOf(locationId: string): unknown {
    return JSON.parse(this.o.store.configs.template(locationId) ?? '{}');
  }

  /** `PUT /v1/locations/{id}/terminal-config`: replaces the template; every terminal there gets a new version. */
  setLocationTemplate(
    locationId: string,
    body: unknown,
  ): { locationId: string; template: ConfigLayer; terminals: number } {
    if (!this.o.store.locations.get(locationId)) throw new Refusal('not_found', `no location ${locationId}`);
    const check = layerValidator.check(body);
    if (!check.ok) throw new Refusal('invalid_config', this.configIssues(check.issues));
    const ids = this.o.store.terminals.idsAt(locationId);
    const changes = ids.map((terminalId) => {
      const overrides = this.overridesOf(terminalId);
      return {
        terminalId,
        overrides: JSON.stringify(overrides),
        desired: JSON.stringify(this.effective(check.value, overrides)),
      };
    });
    const pushes = this.setDesired(changes, { locationId, template: JSON.stringify(check.value) });
    this.o.events.emit('config.desired', { pushes });
    return { locationId, template: check.value, terminals: ids.length };
  }

  /**
   * New desired configs, each with a fresh version, in one transaction (a template change touches
   * every terminal of its location); the template is stored first when given.
   */
  private setDesired(
    changes: { terminalId: string; overrides: string; desired: string }[],
    template?: { locationId: string; template: string },
  ): ConfigPush[] {
    const now = this.o.now();
    const configs = this.o.store.configs;
    return this.o.store.transaction(() => {
      if (template) configs.setTemplate(template.locationId, template.template, now);
      return changes.map((c) => {
        const version = configs.nextVersion();
        configs.put(withDesired(configs.get(c.terminalId), c.terminalId, { ...c, version }, now));
        return {
          terminalId: c.terminalId,
          version,
          config: JSON.parse(c.desired) as Record<string, unknown>,
        };
      });
    });
  }

  getLocationTemplate(locationId: string): { locationId: string; template: unknown } {
    if (!this.o.store.locations.get(locationId)) throw new Refusal('not_found', `no location ${locationId}`);
    return { locationId, template: this.templateOf(locationId) };
  }

  private overridesOf(terminalId: string): ConfigLayer {
    const row = this.o.store.configs.get(terminalId);
    return row ? (JSON.parse(row.overrides) as ConfigLayer) : {};
  }

  /**
   * `POST /v1/terminals/{id}/configure`: a JSON merge patch onto the terminal's overrides
   * (`null` removes an override, so the template or default shows through again).
   * `validate: false` is for developers who want to see a terminal refuse a bad config: the
   * reference cloud then stores and pushes it as is.
   */
  configureTerminal(terminalId: string, body: unknown, validate = true): TerminalView {
    const row = this.o.store.terminals.get(terminalId);
    if (!row) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new Refusal('invalid_config', 'the configuration must be a JSON object');
    }
    let overrides: unknown;
    try {
      overrides = mergePatch(this.overridesOf(terminalId), body);
    } catch (err) {
      if (err instanceof RangeError) throw new Refusal('invalid_config', err.message);
      throw err;
    }
    const template = this.templateOf(row.locationId);
    const desired = this.effective(template, overrides);
    if (validate) {
      const layer = layerValidator.check(overrides);
      if (!layer.ok) throw new Refusal('invalid_config', this.configIssues(layer.issues));
      const full = configValidator.check(desired);
      if (!full.ok) throw new Refusal('invalid_config', this.configIssues(full.issues));
    }
    const pushes = this.setDesired([
      { terminalId, overrides: JSON.stringify(overrides), desired: JSON.stringify(desired) },
    ]);
    this.o.events.emit('config.desired', { pushes });
    return this.getTerminal(terminalId);
  }

  /** The desired config of a terminal (made from its location's template if it has none: at start, at Hello). */
  desiredConfig(terminalId: string): { version: number; config: Record<string, unknown> } | null {
    let c = this.o.store.configs.get(terminalId);
    if (!c) {
      const row = this.o.store.terminals.get(terminalId);
      if (!row) return null;
      const template = this.templateOf(row.locationId);
      this.setDesired([
        { terminalId, overrides: '{}', desired: JSON.stringify(this.effective(template, {})) },
      ]);
      c = this.o.store.configs.get(terminalId)!;
    }
    return { version: c.version, config: JSON.parse(c.desired) as Record<string, unknown> };
  }

  /**
   * Every terminal has its desired config from its enrollment on (`enrolled`); one enrolled by an
   * older cloud that never connected gets it here, at start — so that no GET has to write one.
   */
  start(): void {
    for (const t of this.o.store.terminals.list(null))
      if (!this.o.store.configs.get(t.id)) this.desiredConfig(t.id);
  }

  /** `GET /v1/terminals/{id}/config`: reads only. */
  getTerminalConfig(terminalId: string): TerminalConfigView {
    if (!this.o.store.terminals.get(terminalId)) throw new Refusal('not_found', `no terminal ${terminalId}`);
    const c = this.o.store.configs.get(terminalId);
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

  recordConfigAck(terminalId: string, ack: ConfigApplied): void {
    const answer = {
      version: ack.version,
      status: ack.status,
      errors: ack.status === 'rejected' ? JSON.stringify(ack.errors) : null,
      appliedVersion: ack.appliedVersion,
    };
    this.o.store.transaction(() => {
      const next = withAnswer(this.o.store.configs.get(terminalId), answer, this.o.now());
      if (next) this.o.store.configs.put(next);
    });
    this.o.log[ack.status === 'applied' ? 'info' : 'warn'](
      { terminalId, version: ack.version, errors: ack.errors },
      `config ${ack.status}`,
    );
  }

  status(row: TerminalRow): TerminalStatus {
    return deriveTerminalStatus(
      {
        deactivated: row.deactivatedAt !== null,
        lastSeenMs: row.lastSeen,
        connected: this.o.links.isConnected(row.id),
        closedCleanly: row.closedCleanly,
      },
      this.o.now(),
      this.o.thresholds,
    );
  }

  /** The terminal's profile as the device is told it (name, store and the store's name). */
  terminalProfile(terminalId: string): TerminalProfile | null {
    const row = this.o.store.terminals.get(terminalId);
    if (!row) return null;
    const location = this.o.store.locations.get(row.locationId);
    return {
      name: row.name,
      locationId: row.locationId,
      ...(location ? { locationName: location.name } : {}),
    };
  }

  // ---- lifecycle ----

  /** `POST /v1/terminals/{id}/deactivate`: its certificate is refused from now on. Idempotent. */
  deactivate(terminalId: string, body: unknown): TerminalView {
    const req = parseBody(validators.deactivate, body);
    if (!this.o.store.terminals.get(terminalId)) throw new Refusal('not_found', `no terminal ${terminalId}`);
    this.deactivateTerminal(terminalId, req.reason ?? 'deactivated by the fleet operator');
    return this.getTerminal(terminalId);
  }

  deactivateTerminal(terminalId: string, reason: string): void {
    this.o.store.transaction(() => {
      if (this.o.store.terminals.deactivate(terminalId, this.o.now(), reason)) {
        this.o.events.emit('terminal.deactivated', { terminalId, reason });
        this.o.log.info({ terminalId, reason }, 'terminal deactivated');
      }
    });
  }

  /** `POST /v1/terminals/{id} {name?, locationId?}`: rename or move; a move re-layers its config. */
  updateTerminal(terminalId: string, body: unknown): TerminalView {
    const req = parseBody(validators.update, body);
    const row = this.o.store.terminals.get(terminalId);
    if (!row) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (req.locationId !== undefined && !this.o.store.locations.get(req.locationId))
      throw new Refusal('not_found', `no location ${req.locationId}`);
    const moved = req.locationId !== undefined && req.locationId !== row.locationId;
    const pushes = this.o.store.transaction(() => {
      this.o.store.terminals.update(terminalId, req);
      return moved ? [this.relayer(terminalId, this.overridesOf(terminalId))] : [];
    });
    if (moved) this.o.events.emit('config.desired', { pushes });
    if (moved || (req.name !== undefined && req.name !== row.name))
      this.o.events.emit('terminal.profile', { terminalId });
    return this.getTerminal(terminalId);
  }

  /**
   * A terminal was enrolled (inside the creating transaction): its first desired config, from its
   * location's template — a replacement takes over the old terminal's overrides (its name and
   * location came with the code), and the old terminal is deactivated.
   */
  enrolled(terminalId: string, replaces: string | null): void {
    this.relayer(terminalId, replaces ? this.overridesOf(replaces) : {});
    if (replaces) this.deactivateTerminal(replaces, `replaced by terminal ${terminalId}`);
  }

  private relayer(terminalId: string, overrides: ConfigLayer): ConfigPush {
    const row = this.o.store.terminals.get(terminalId)!;
    const desired = this.effective(this.templateOf(row.locationId), overrides);
    return this.setDesired([
      { terminalId, overrides: JSON.stringify(overrides), desired: JSON.stringify(desired) },
    ])[0]!;
  }

  terminalView(row: TerminalRow): TerminalView {
    const connected = this.o.links.isConnected(row.id);
    const status = this.status(row);
    return {
      id: row.id,
      object: 'terminal',
      name: row.name,
      model: row.model,
      serialNumber: row.serialNumber,
      status,
      connected,
      lastSeen: row.lastSeen === null ? null : Math.floor(row.lastSeen / 1000),
      locationId: row.locationId,
      softwareVersion: row.softwareVersion,
      batteryLevel: row.batteryLevel,
      createdAt: Math.floor(row.createdAt / 1000),
      certificate: { notAfter: new Date(row.certNotAfter).toISOString() },
      config: (() => {
        const c = this.o.store.configs.get(row.id);
        return c
          ? { version: c.version, appliedVersion: c.appliedVersion, status: c.status }
          : { version: null, appliedVersion: null, status: null };
      })(),
      locked: this.o.store.terminals.locked(row.id),
      health: row.health === null ? null : JSON.parse(row.health),
      ...(row.deactivatedAt !== null
        ? {
            deactivatedAt: Math.floor(row.deactivatedAt / 1000),
            deactivationReason: row.deactivationReason,
          }
        : {}),
    };
  }

  /** `POST /v1/terminals/{id}/diagnostics`: the terminal runs its checks now; the report is kept. */
  async runDiagnostics(id: string): Promise<Record<string, unknown>> {
    if (!this.o.store.terminals.get(id)) throw new Refusal('not_found', `no terminal ${id}`);
    if (!this.o.links.isConnected(id))
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
    this.o.store.diagnostics.save(id, JSON.stringify(report), now);
    return this.diagnosticsView(id, report, now);
  }

  lastDiagnostics(id: string): Record<string, unknown> {
    const row = this.o.store.diagnostics.last(id);
    if (!row) throw new Refusal('not_found', `no diagnostics report from terminal ${id} yet`);
    return this.diagnosticsView(id, JSON.parse(row.report) as DiagnosticsReport, row.receivedAt);
  }

  private diagnosticsView(terminalId: string, report: DiagnosticsReport, receivedAt: number) {
    return {
      object: 'diagnostics_report',
      terminalId,
      receivedAt: new Date(receivedAt).toISOString(),
      ...report,
    };
  }

  getTerminal(id: string): TerminalView {
    const row = this.o.store.terminals.get(id);
    if (!row) throw new Refusal('not_found', `no terminal ${id}`);
    return this.terminalView(row);
  }

  listTerminals(query: URLSearchParams): { object: 'list'; data: TerminalView[]; has_more: boolean } {
    const limitRaw = query.get('limit');
    const limit = limitRaw === null ? 10 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new Refusal('invalid_request', 'limit must be an integer from 1 to 100');
    }
    const status = query.get('status');
    const statuses = ['online', 'offline', 'needs_attention', 'provisioning', 'deactivated'];
    if (status !== null && !statuses.includes(status)) {
      throw new Refusal('invalid_request', `status must be one of ${statuses.join(', ')}`);
    }
    let views = this.o.store.terminals.list(query.get('locationId')).map((r) => this.terminalView(r));
    if (status !== null) views = views.filter((v) => v.status === status);
    const after = query.get('starting_after');
    if (after !== null) {
      const i = views.findIndex((v) => v.id === after);
      if (i < 0) throw new Refusal('invalid_request', `starting_after ${after} is not in this list`);
      views = views.slice(i + 1);
    }
    return { object: 'list', data: views.slice(0, limit), has_more: views.length > limit };
  }

  connectedTerminals(body: unknown, connectedIds: Iterable<string>): { uniqueTerminalIds: string[] } {
    const q = parseBody(validators.connected, body);
    const ids: string[] = [];
    for (const id of connectedIds) {
      if (q.uniqueTerminalId !== undefined && id !== q.uniqueTerminalId) continue;
      if (q.locationId !== undefined && this.o.store.terminals.get(id)?.locationId !== q.locationId) continue;
      ids.push(id);
    }
    return { uniqueTerminalIds: ids.sort() };
  }
}
