import { randomBytes, randomInt } from 'node:crypto';
import type { Static, TSchema } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import {
  type ConfigLayer,
  configValidator,
  effectiveConfig,
  layerValidator,
  mergePatch,
  type TerminalConfig,
} from '../protocol/config-schema.js';
import { EnrollErrorCode, EnrollRequest, type EnrollResponse } from '../protocol/enrollment.js';
import type { ConfigApplied } from '../protocol/messages.js';
import {
  compileValidator,
  describeIssues,
  type SchemaIssue,
  type Validator,
} from '../protocol/schema-validation.js';
import { AttemptLimiter } from './attempt-limiter.js';
import type { CloudStore, LocationRow, TerminalRow } from './cloud-store.js';
import { CsrRejectedError, type FleetCa } from './fleet-ca.js';
import { ApiError } from './http-json.js';
import { deriveTerminalStatus, type StatusThresholds, type TerminalStatus } from './terminal-status.js';

/** The fleet's application logic between the REST API / gateway and the store. */
export interface FleetServiceOptions {
  store: CloudStore;
  ca: FleetCa;
  now(): number;
  cloudUrl(): string;
  thresholds: StatusThresholds;
  certDays: number;
  isConnected(terminalId: string): boolean;
  enrollAttempts: { maxFailures: number; windowMs: number };
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Defaults at the bottom of every terminal's config (the cloud's own heartbeat/ping flags included). */
  configDefaults: TerminalConfig;
  /** The cloud's data public key (PEM), handed to terminals at enrollment to seal card data to. */
  dataPublicKey: string;
  /** Told which terminals' desired config changed, to push it to those connected. */
  onConfigChanged(terminalIds: string[]): void;
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

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** No 0/O, 1/I/L: codes are typed on a terminal keypad by people reading a screen. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

function newId(prefix: string): string {
  let s = '';
  for (let i = 0; i < 14; i++) s += BASE62[randomInt(BASE62.length)];
  return `${prefix}_${s}`;
}

export function newEnrollmentCode(): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

/** Codes are accepted in any case, with or without the dash or spaces. */
export function normaliseEnrollmentCode(input: string): string {
  const s = input.toUpperCase().replace(/[\s-]/g, '');
  return s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4)}` : s;
}

const LocationCreate = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false },
);
const CodeCreate = Type.Object(
  {
    locationId: Type.String({ minLength: 1 }),
    terminalName: Type.String({ minLength: 1, maxLength: 100 }),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86_400 })),
  },
  { additionalProperties: false },
);
const ConnectedQuery = Type.Object(
  { locationId: Type.Optional(Type.String()), uniqueTerminalId: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

const validators = {
  location: compileValidator(LocationCreate),
  code: compileValidator(CodeCreate),
  enroll: compileValidator(EnrollRequest),
  connected: compileValidator(ConnectedQuery),
};

function parse<T extends TSchema>(v: Validator<T>, body: unknown, code = 'invalid_request'): Static<T> {
  const r = v.check(body);
  if (!r.ok) throw new ApiError(400, code, describeIssues(r.issues));
  return r.value;
}

export const DEFAULT_CODE_TTL_SECONDS = 3600;

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
}

export class FleetService {
  private readonly limiter: AttemptLimiter;

  constructor(private readonly o: FleetServiceOptions) {
    this.limiter = new AttemptLimiter(o.enrollAttempts.maxFailures, o.enrollAttempts.windowMs);
  }

  createLocation(body: unknown): LocationRow & { object: 'location' } {
    const { name } = parse(validators.location, body);
    const row = { id: newId('loc'), name, createdAt: Math.floor(this.o.now() / 1000) };
    this.o.store.insertLocation(row);
    return { ...row, object: 'location' };
  }

  getLocation(id: string): LocationRow & { object: 'location' } {
    const row = this.o.store.getLocation(id);
    if (!row) throw new ApiError(404, 'not_found', `no location ${id}`);
    return { ...row, object: 'location' };
  }

  createEnrollmentCode(body: unknown): {
    code: string;
    qrPayload: string;
    expiresAt: string;
    locationId: string;
    terminalName: string;
  } {
    const req = parse(validators.code, body);
    if (!this.o.store.getLocation(req.locationId))
      throw new ApiError(404, 'not_found', `no location ${req.locationId}`);
    const now = this.o.now();
    const expiresAt = now + (req.ttlSeconds ?? DEFAULT_CODE_TTL_SECONDS) * 1000;
    const code = newEnrollmentCode();
    this.o.store.insertEnrollmentCode({
      code,
      locationId: req.locationId,
      terminalName: req.terminalName,
      createdAt: now,
      expiresAt,
    });
    const qr = new URLSearchParams({ cloud: this.o.cloudUrl(), code, ca: this.o.ca.fingerprint });
    return {
      code,
      qrPayload: `posagent://enroll?${qr.toString()}`,
      expiresAt: new Date(expiresAt).toISOString(),
      locationId: req.locationId,
      terminalName: req.terminalName,
    };
  }

  /** The agent-facing enrollment: code + CSR → certificate. Failed guesses are rate-limited per source. */
  enroll(body: unknown, source: string): EnrollResponse {
    const now = this.o.now();
    const wait = this.limiter.retryAfterMs(source, now);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new ApiError(
        429,
        EnrollErrorCode.rateLimited,
        `too many failed enrollment attempts from this address; try again in ${seconds} s`,
        {
          'retry-after': String(seconds),
        },
      );
    }
    const req = parse(validators.enroll, body, EnrollErrorCode.invalidRequest);
    const code = normaliseEnrollmentCode(req.code);
    const row = this.o.store.getEnrollmentCode(code);
    const refuse = (status: number, errCode: string, message: string): never => {
      this.limiter.recordFailure(source, now);
      this.o.log.warn({ source, code: errCode }, 'enrollment refused');
      throw new ApiError(status, errCode, message);
    };
    if (!row)
      return refuse(
        404,
        EnrollErrorCode.invalidCode,
        `enrollment code ${code} is not recognised: check it was typed exactly as shown`,
      );
    if (row.usedAt !== null) {
      return refuse(
        409,
        EnrollErrorCode.codeUsed,
        `enrollment code ${code} was already used at ${new Date(row.usedAt).toISOString()}; generate a new code`,
      );
    }
    if (row.expiresAt <= now) {
      return refuse(
        410,
        EnrollErrorCode.codeExpired,
        `enrollment code ${code} expired at ${new Date(row.expiresAt).toISOString()}; generate a new code`,
      );
    }
    const terminalId = newId('term');
    let issued: ReturnType<FleetCa['issueClientCertificate']>;
    try {
      issued = this.o.ca.issueClientCertificate(req.csr, terminalId, new Date(now), this.o.certDays);
    } catch (err) {
      if (err instanceof CsrRejectedError) throw new ApiError(400, EnrollErrorCode.invalidCsr, err.message);
      throw err;
    }
    const created = this.o.store.claimCodeAndCreateTerminal(code, {
      id: terminalId,
      name: row.terminalName,
      locationId: row.locationId,
      model: req.model ?? null,
      serialNumber: req.serialNumber ?? null,
      softwareVersion: req.softwareVersion ?? null,
      createdAt: now,
      certFingerprint: issued.fingerprint,
      certSerial: issued.serialNumber,
      certNotAfter: issued.notAfter.getTime(),
    });
    if (!created)
      return refuse(
        409,
        EnrollErrorCode.codeUsed,
        `enrollment code ${code} was already used; generate a new code`,
      );
    this.o.log.info({ terminalId, locationId: row.locationId }, 'terminal enrolled');
    return {
      terminalId,
      locationId: row.locationId,
      name: row.terminalName,
      certificate: issued.certificatePem,
      fleetCa: this.o.ca.certificatePem,
      cloudUrl: this.o.cloudUrl(),
      dataPublicKey: this.o.dataPublicKey,
    };
  }

  // ---- configuration: defaults ← location template ← terminal overrides ----

  private configIssues(issues: SchemaIssue[]): string {
    return `invalid configuration: ${describeIssues(issues)}`;
  }

  private effective(template: unknown, overrides: unknown): unknown {
    return effectiveConfig(template, overrides, this.o.configDefaults);
  }

  private templateOf(locationId: string): unknown {
    return JSON.parse(this.o.store.getTemplate(locationId) ?? '{}');
  }

  /** `PUT /v1/locations/{id}/terminal-config`: replaces the template; every terminal there gets a new version. */
  setLocationTemplate(
    locationId: string,
    body: unknown,
  ): { locationId: string; template: ConfigLayer; terminals: number } {
    if (!this.o.store.getLocation(locationId))
      throw new ApiError(404, 'not_found', `no location ${locationId}`);
    const check = layerValidator.check(body);
    if (!check.ok) throw new ApiError(400, 'invalid_config', this.configIssues(check.issues));
    const ids = this.o.store.terminalIdsAt(locationId);
    const changes = ids.map((terminalId) => {
      const overrides = this.overridesOf(terminalId);
      return {
        terminalId,
        overrides: JSON.stringify(overrides),
        desired: JSON.stringify(this.effective(check.value, overrides)),
      };
    });
    this.o.store.setDesiredConfigs(this.o.now(), changes, {
      locationId,
      template: JSON.stringify(check.value),
    });
    this.o.onConfigChanged(ids);
    return { locationId, template: check.value, terminals: ids.length };
  }

  getLocationTemplate(locationId: string): { locationId: string; template: unknown } {
    if (!this.o.store.getLocation(locationId))
      throw new ApiError(404, 'not_found', `no location ${locationId}`);
    return { locationId, template: this.templateOf(locationId) };
  }

  private overridesOf(terminalId: string): ConfigLayer {
    const row = this.o.store.getTerminalConfig(terminalId);
    return row ? (JSON.parse(row.overrides) as ConfigLayer) : {};
  }

  /**
   * `POST /v1/terminals/{id}/configure`: a JSON merge patch onto the terminal's overrides
   * (`null` removes an override, so the template or default shows through again).
   * `validate: false` is for developers who want to see a terminal refuse a bad config: the
   * reference cloud then stores and pushes it as is.
   */
  configureTerminal(terminalId: string, body: unknown, validate = true): TerminalView {
    const row = this.o.store.getTerminal(terminalId);
    if (!row) throw new ApiError(404, 'not_found', `no terminal ${terminalId}`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ApiError(400, 'invalid_config', 'the configuration must be a JSON object');
    }
    const overrides = mergePatch(this.overridesOf(terminalId), body);
    const template = this.templateOf(row.locationId);
    const desired = this.effective(template, overrides);
    if (validate) {
      const layer = layerValidator.check(overrides);
      if (!layer.ok) throw new ApiError(400, 'invalid_config', this.configIssues(layer.issues));
      const full = configValidator.check(desired);
      if (!full.ok) throw new ApiError(400, 'invalid_config', this.configIssues(full.issues));
    }
    this.o.store.setDesiredConfigs(this.o.now(), [
      { terminalId, overrides: JSON.stringify(overrides), desired: JSON.stringify(desired) },
    ]);
    this.o.onConfigChanged([terminalId]);
    return this.getTerminal(terminalId);
  }

  /** The desired config of a terminal, made on first use from its location's template. */
  desiredConfig(terminalId: string): { version: number; config: Record<string, unknown> } | null {
    let c = this.o.store.getTerminalConfig(terminalId);
    if (!c) {
      const row = this.o.store.getTerminal(terminalId);
      if (!row) return null;
      const template = this.templateOf(row.locationId);
      this.o.store.setDesiredConfigs(this.o.now(), [
        { terminalId, overrides: '{}', desired: JSON.stringify(this.effective(template, {})) },
      ]);
      c = this.o.store.getTerminalConfig(terminalId)!;
    }
    return { version: c.version, config: JSON.parse(c.desired) as Record<string, unknown> };
  }

  getTerminalConfig(terminalId: string): TerminalConfigView {
    if (!this.o.store.getTerminal(terminalId))
      throw new ApiError(404, 'not_found', `no terminal ${terminalId}`);
    this.desiredConfig(terminalId);
    const c = this.o.store.getTerminalConfig(terminalId)!;
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
    this.o.store.recordConfigAck(
      terminalId,
      ack.version,
      ack.status,
      ack.status === 'rejected' ? JSON.stringify(ack.errors) : null,
      ack.appliedVersion,
      this.o.now(),
    );
    this.o.log[ack.status === 'applied' ? 'info' : 'warn'](
      { terminalId, version: ack.version, errors: ack.errors },
      `config ${ack.status}`,
    );
  }

  terminalView(row: TerminalRow): TerminalView {
    const connected = this.o.isConnected(row.id);
    const status = deriveTerminalStatus(
      {
        deactivated: row.deactivatedAt !== null,
        lastSeenMs: row.lastSeen,
        connected,
        closedCleanly: row.closedCleanly === 1,
      },
      this.o.now(),
      this.o.thresholds,
    );
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
        const c = this.o.store.getTerminalConfig(row.id);
        return c
          ? { version: c.version, appliedVersion: c.appliedVersion, status: c.status }
          : { version: null, appliedVersion: null, status: null };
      })(),
      locked: false,
      health: row.health === null ? null : JSON.parse(row.health),
    };
  }

  getTerminal(id: string): TerminalView {
    const row = this.o.store.getTerminal(id);
    if (!row) throw new ApiError(404, 'not_found', `no terminal ${id}`);
    return this.terminalView(row);
  }

  listTerminals(query: URLSearchParams): { object: 'list'; data: TerminalView[]; has_more: boolean } {
    const limitRaw = query.get('limit');
    const limit = limitRaw === null ? 10 : Number(limitRaw);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
      throw new ApiError(400, 'invalid_request', 'limit must be an integer from 1 to 100');
    }
    const status = query.get('status');
    const statuses = ['online', 'offline', 'needs_attention', 'provisioning', 'deactivated'];
    if (status !== null && !statuses.includes(status)) {
      throw new ApiError(400, 'invalid_request', `status must be one of ${statuses.join(', ')}`);
    }
    let views = this.o.store.listTerminals(query.get('locationId')).map((r) => this.terminalView(r));
    if (status !== null) views = views.filter((v) => v.status === status);
    const after = query.get('starting_after');
    if (after !== null) {
      const i = views.findIndex((v) => v.id === after);
      if (i < 0) throw new ApiError(400, 'invalid_request', `starting_after ${after} is not in this list`);
      views = views.slice(i + 1);
    }
    return { object: 'list', data: views.slice(0, limit), has_more: views.length > limit };
  }

  connectedTerminals(body: unknown, connectedIds: Iterable<string>): { uniqueTerminalIds: string[] } {
    const q = parse(validators.connected, body);
    const ids: string[] = [];
    for (const id of connectedIds) {
      if (q.uniqueTerminalId !== undefined && id !== q.uniqueTerminalId) continue;
      if (q.locationId !== undefined && this.o.store.getTerminal(id)?.locationId !== q.locationId) continue;
      ids.push(id);
    }
    return { uniqueTerminalIds: ids.sort() };
  }
}

export function newAdminToken(): string {
  return randomBytes(32).toString('hex');
}
