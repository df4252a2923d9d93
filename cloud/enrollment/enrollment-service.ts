import { createHash, createPublicKey, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import {
  EnrollErrorCode,
  EnrollRequest,
  type EnrollResponse,
  type FleetCaResponse,
  formatQrPayload,
  PairingPollRequest,
  type PairingPollResponse,
  PairingRequest,
  type PairingResponse,
} from '../../protocol/enrollment.js';
import { DisplayName } from '../../protocol/formats.js';
import type { RenewedCertificate } from '../../protocol/messages.js';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import { parseBody } from '../body-validation.js';
import type { CloudBus } from '../cloud-events.js';
import { newEnrollmentCode, newId, normaliseEnrollmentCode } from '../fleet-ids.js';
import { CsrRejectedError, type FleetCa, type IssuedCertificate } from '../identity/fleet-ca.js';
import { checkCursor, type ListOf, listPage, pageOf } from '../list-page.js';
import { unixSeconds } from '../rest-time.js';
import type {
  CloudStore,
  EnrollmentCodeRow,
  ManufacturerCaRow,
  NewTerminal,
  PreregistrationRow,
  PreregistrationTrust,
} from '../store/store-types.js';
import { startSweep } from '../sweep.js';
import { acceptableKey, verifyAttestation } from './device-attestation.js';
import { type BudgetLimits, type EnrollMethod, EnrollmentBudget } from './enrollment-budget.js';
import { codeState, pairingState } from './enrollment-lifecycle.js';

/**
 * Every way a terminal gets (and renews) its certificate: an enrollment code (typed or from a
 * QR), a pairing code the device shows and someone activates, a pre-registered serial, and
 * renewal over the link. The device's key never comes here: only CSRs.
 */
export interface EnrollmentServiceOptions {
  store: CloudStore;
  ca: FleetCa;
  now(): number;
  cloudUrl(): string;
  certDays: number;
  /** For tests: certificates are issued as if this many seconds ago (already part-way through their life). */
  certIssuedAgoSec?: number;
  pairingTtlSec: number;
  pairingPollMs: number;
  dataPublicKey: string;
  /**
   * Accept pre-registrations that name no factory key or manufacturer CA, and auto-enrollment
   * that proves nothing but a serial. Unsafe: anyone who knows such a serial gets its certificate.
   */
  allowSerialOnly?: boolean;
  /** Failed attempts tolerated per method, per source and across all (cloud/enrollment-budget.ts). */
  enrollBudget: BudgetLimits;
  /** Pairings one source may start per window, and how many may wait for activation at once. */
  pairingLimits: { perSource: number; windowMs: number; maxPending: number };
  /** How long an unused code is kept after it expired (its refusal still says when it expired). */
  expiredCodeRetentionMs: number;
  /** How often what expired for good is deleted. */
  sweepMs: number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /** Says `terminal.enrolled` inside the transaction that created the terminal (webhook outbox, replacement). */
  events: CloudBus;
}

export const DEFAULT_CODE_TTL_SECONDS = 3600;

/** A request of the right shape whose content is refused (422 at the REST edge, not 400). */
const CONTENT = { kind: 'content' } as const;

const CodeCreate = Type.Object(
  {
    locationId: Type.String({ minLength: 1 }),
    terminalName: DisplayName,
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86_400 })),
  },
  { additionalProperties: false },
);
const ReplaceCreate = Type.Object(
  { ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 86_400 })) },
  { additionalProperties: false },
);
const Activate = Type.Object(
  {
    activationCode: Type.String({ minLength: 1, maxLength: 32 }),
    locationId: Type.String({ minLength: 1 }),
    name: Type.Optional(DisplayName),
  },
  { additionalProperties: false },
);
const PreregistrationCreate = Type.Object(
  {
    serialNumber: Type.String({ minLength: 1, maxLength: 64, pattern: '^[\\x21-\\x7e]+$' }),
    locationId: Type.String({ minLength: 1 }),
    name: Type.Optional(DisplayName),
    /** The device's factory public key (SPKI PEM): its factory certificate must carry this key. */
    devicePublicKey: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    /** A registered manufacturer CA: the factory certificate must chain to it and name the serial. */
    manufacturerCaId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  },
  { additionalProperties: false },
);
const ManufacturerCaCreate = Type.Object(
  {
    name: DisplayName,
    certificate: Type.String({ minLength: 1, maxLength: 16_384, description: 'the CA certificate, PEM' }),
  },
  { additionalProperties: false },
);

const validators = {
  code: compileValidator(CodeCreate),
  replace: compileValidator(ReplaceCreate),
  enroll: compileValidator(EnrollRequest),
  pairing: compileValidator(PairingRequest),
  poll: compileValidator(PairingPollRequest),
  activate: compileValidator(Activate),
  prereg: compileValidator(PreregistrationCreate),
  manufacturerCa: compileValidator(ManufacturerCaCreate),
};

/** A refused CSR is the client's fault: invalid_csr with the reason. */
function refusingBadCsr<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CsrRejectedError) throw new Refusal(EnrollErrorCode.invalidCsr, err.message);
    throw err;
  }
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface EnrollmentCodeView {
  code: string;
  object: 'enrollment_code';
  qrPayload: string;
  /** Unix seconds, as every REST time. */
  expiresAt: number;
  locationId: string;
  terminalName: string;
  status: 'unused' | 'used' | 'revoked' | 'expired';
  /** Unix seconds. */
  createdAt: number;
  usedAt: number | null;
  /** The terminal it enrolled (or, for a reprovision code, will re-enroll). */
  terminalId: string | null;
  replaces?: string;
  reprovisions?: string;
}

export type PreregistrationView = PreregistrationRow & {
  object: 'preregistration';
  /** What proves this serial at zero-touch enrollment. */
  attestation: 'device_public_key' | 'manufacturer_ca' | 'serial_only';
  manufacturerCaId: string | null;
};

export interface ManufacturerCaView {
  id: string;
  object: 'manufacturer_ca';
  name: string;
  fingerprint: string;
  subject: string;
  /** Unix seconds. */
  notAfter: number;
  createdAt: number;
}

function manufacturerCaView(r: ManufacturerCaRow): ManufacturerCaView {
  const c = new X509Certificate(r.certificate);
  return {
    id: r.id,
    object: 'manufacturer_ca',
    name: r.name,
    fingerprint: r.fingerprint,
    subject: c.subject.replace(/\n/g, ', '),
    notAfter: unixSeconds(Date.parse(c.validTo)),
    createdAt: unixSeconds(r.createdAt),
  };
}

export class EnrollmentService {
  private readonly budget: EnrollmentBudget;
  private readonly budgetLog = new Map<string, { at: number; refused: number }>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: EnrollmentServiceOptions) {
    this.budget = new EnrollmentBudget(o.store.enrollmentLimits, o.enrollBudget);
  }

  /** Deletes what has expired for good: old failures, pairings past their life, unused expired codes. */
  async prune(now = this.o.now()): Promise<{ failures: number; pairings: number; codes: number }> {
    return await this.o.store.enrollmentLimits.prune(
      now - this.o.enrollBudget.windowMs,
      // An expired pairing still answers 410 (the device asks for a new code) for one more lifetime.
      now - this.o.pairingTtlSec * 1000,
      now - this.o.expiredCodeRetentionMs,
    );
  }

  start(): void {
    this.sweepTimer = startSweep(
      async () => {
        await this.prune();
      },
      this.o.sweepMs,
      (err) => this.o.log.warn({ err: err.message }, 'enrollment prune failed; tried again at the next'),
    );
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  fleetCa(): FleetCaResponse {
    return { certificate: this.o.ca.certificatePem, fingerprint: this.o.ca.fingerprint };
  }

  // ---- enrollment codes (typed or scanned) ----

  async createEnrollmentCode(body: unknown): Promise<EnrollmentCodeView> {
    const req = parseBody(validators.code, body);
    await this.activeLocation(req.locationId);
    return await this.issueCode(req.locationId, req.terminalName, req.ttlSeconds, null);
  }

  /** A store new terminals may join: it exists and is active (PeakPOS "Store exists and is active"). */
  private async activeLocation(id: string): Promise<void> {
    const row = await this.o.store.locations.get(id);
    if (!row) throw new Refusal('not_found', `no location ${id}`);
    if (!row.active)
      throw new Refusal(
        'location_inactive',
        `location ${id} (${row.name}) is deactivated; reactivate it (POST /v1/locations/${id} {"active": true}) first`,
      );
  }

  /** `GET /v1/enrollment-codes?locationId&limit&starting_after`: newest first, with each one's state. */
  async listEnrollmentCodes(query: URLSearchParams): Promise<ListOf<EnrollmentCodeView>> {
    const page = pageOf(query);
    const locationId = query.get('locationId');
    if (locationId !== null && !(await this.o.store.locations.get(locationId)))
      throw new Refusal('not_found', `no location ${locationId}`);
    await checkCursor(page, async (code) => (await this.o.store.enrollment.getCode(code)) !== undefined);
    return await listPage(
      page,
      async (p) =>
        (await this.o.store.enrollment.listCodes(locationId, p)).map((r) => ({ ...r, id: r.code })),
      (r) => this.codeView(r),
    );
  }

  async getEnrollmentCode(code: string): Promise<EnrollmentCodeView> {
    const row = await this.o.store.enrollment.getCode(normaliseEnrollmentCode(code));
    if (!row) throw new Refusal('not_found', `no enrollment code ${normaliseEnrollmentCode(code)}`);
    return this.codeView(row);
  }

  /** `DELETE /v1/enrollment-codes/{code}`: an unused code can no longer be used. */
  async revokeEnrollmentCode(code: string): Promise<EnrollmentCodeView> {
    const c = normaliseEnrollmentCode(code);
    const row = await this.o.store.enrollment.getCode(c);
    if (!row) throw new Refusal('not_found', `no enrollment code ${c}`);
    const state = codeState(row, this.o.now());
    if (state === 'used')
      throw new Refusal(
        EnrollErrorCode.codeUsed,
        `enrollment code ${c} was used at ${new Date(row.usedAt!).toISOString()} (terminal ${row.terminalId}); deactivate the terminal instead`,
      );
    if (state === 'unused' || state === 'expired') await this.o.store.enrollment.revokeCode(c, this.o.now());
    return await this.getEnrollmentCode(c);
  }

  private codeView(r: EnrollmentCodeRow): EnrollmentCodeView {
    return {
      code: r.code,
      object: 'enrollment_code',
      qrPayload: this.qrPayload(r.code),
      expiresAt: unixSeconds(r.expiresAt),
      locationId: r.locationId,
      terminalName: r.terminalName,
      status: codeState(r, this.o.now()),
      createdAt: Math.floor(r.createdAt / 1000),
      usedAt: r.usedAt === null ? null : Math.floor(r.usedAt / 1000),
      terminalId: r.terminalId ?? r.reprovisions,
      ...(r.replaces ? { replaces: r.replaces } : {}),
      ...(r.reprovisions ? { reprovisions: r.reprovisions } : {}),
    };
  }

  /**
   * \`POST /v1/terminals/{id}/reprovision\`: a code bound to this terminal. Enrolling with it gives
   * the same record (id, name, store, config, history) a new certificate, which supersedes the old
   * one when it is first used (PeakPOS: "Generate a new enrollment code … Confirm heartbeat resumes").
   */
  async reprovisionTerminal(terminalId: string, body: unknown): Promise<EnrollmentCodeView> {
    const req = parseBody(validators.replace, body);
    const row = await this.o.store.terminals.get(terminalId);
    if (!row) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (row.deactivatedAt !== null)
      throw new Refusal(
        'terminal_deactivated',
        `terminal ${terminalId} is deactivated; a new device needs a new terminal (POST /v1/enrollment-codes)`,
      );
    return await this.issueCode(row.locationId, row.name, req.ttlSeconds, null, terminalId);
  }

  /** `POST /v1/terminals/{id}/replace`: a code whose terminal takes this one's name, location and config. */
  async replaceTerminal(terminalId: string, body: unknown): Promise<EnrollmentCodeView> {
    const req = parseBody(validators.replace, body);
    const row = await this.o.store.terminals.get(terminalId);
    if (!row) throw new Refusal('not_found', `no terminal ${terminalId}`);
    if (row.deactivatedAt !== null)
      throw new Refusal('terminal_deactivated', `terminal ${terminalId} is deactivated already`);
    await this.activeLocation(row.locationId);
    return await this.issueCode(row.locationId, row.name, req.ttlSeconds, terminalId);
  }

  private async issueCode(
    locationId: string,
    terminalName: string,
    ttlSeconds: number | undefined,
    replaces: string | null,
    reprovisions: string | null = null,
  ): Promise<EnrollmentCodeView> {
    const now = this.o.now();
    const expiresAt = now + (ttlSeconds ?? DEFAULT_CODE_TTL_SECONDS) * 1000;
    const code = newEnrollmentCode();
    await this.o.store.enrollment.insertCode({
      code,
      locationId,
      terminalName,
      createdAt: now,
      expiresAt,
      replaces,
      reprovisions,
    });
    return this.codeView((await this.o.store.enrollment.getCode(code))!);
  }

  qrPayload(code: string): string {
    return formatQrPayload({ cloud: this.o.cloudUrl(), code, ca: this.o.ca.fingerprint });
  }

  /** The code of a QR image, if the code exists (the REST layer renders the PNG). */
  async qrPayloadOf(code: string): Promise<string> {
    const c = normaliseEnrollmentCode(code);
    if (!(await this.o.store.enrollment.getCode(c)))
      throw new Refusal('not_found', `no enrollment code ${c}`);
    return this.qrPayload(c);
  }

  /** `POST /v1/enroll`: code or pre-registered serial + CSR → certificate. Failures are rate-limited per source. */
  async enroll(body: unknown, source: string): Promise<EnrollResponse> {
    const now = this.o.now();
    const req = parseBody(validators.enroll, body, EnrollErrorCode.invalidRequest);
    // A zero-touch request whose proof holds is not a guess: its budget is checked only when it fails.
    if (req.method !== 'auto') await this.checkBudget(req.method, source, now);
    const refuse = async (code: string, message: string, extra: object = {}): Promise<never> => {
      if (req.method === 'auto') await this.checkBudget(req.method, source, now);
      await this.budget.fail(req.method, source, now);
      this.o.log.warn({ source, code, method: req.method, ...extra }, `enrollment refused: ${message}`);
      throw new Refusal(code, message);
    };
    return req.method === 'code'
      ? await this.enrollWithCode(req, now, refuse)
      : await this.enrollWithSerial(req, now, refuse, source);
  }

  /** 429 when `method` is out of budget for this source or for everyone (enrollment-budget.ts). */
  private async checkBudget(method: EnrollMethod, source: string, now: number): Promise<void> {
    const v = await this.budget.check(method, source, now);
    if (v.ok) return;
    const seconds = Math.ceil(v.retryAfterMs / 1000);
    // At most a line per method and scope every 10 s, with how many were refused since.
    const key = `${method} ${v.scope}`;
    const last = this.budgetLog.get(key) ?? { at: 0, refused: 0 };
    last.refused++;
    if (now - last.at >= 10_000) {
      this.o.log.warn(
        { source, method, scope: v.scope, retryAfterSec: seconds, refused: last.refused },
        'enrollment refused: budget spent',
      );
      last.at = now;
      last.refused = 0;
    }
    this.budgetLog.set(key, last);
    throw new Refusal(
      EnrollErrorCode.rateLimited,
      v.scope === 'global'
        ? `too many failed ${method} enrollment attempts across the fleet; ${method} enrollment is paused for everyone: try again in ${seconds} s`
        : `too many failed ${method} enrollment attempts from this address; try again in ${seconds} s`,
      { retryAfterSec: seconds },
    );
  }

  private async enrollWithCode(
    req: Extract<EnrollRequest, { method: 'code' }>,
    now: number,
    refuse: (code: string, message: string) => Promise<never>,
  ): Promise<EnrollResponse> {
    const code = normaliseEnrollmentCode(req.code);
    const row = await this.o.store.enrollment.getCode(code);
    if (!row)
      return refuse(
        EnrollErrorCode.invalidCode,
        `enrollment code ${code} is not recognised: check it was typed exactly as shown`,
      );
    const state = codeState(row, now);
    if (state === 'used')
      return refuse(
        EnrollErrorCode.codeUsed,
        `enrollment code ${code} was already used at ${new Date(row.usedAt!).toISOString()}; generate a new code`,
      );
    if (state === 'revoked')
      return refuse(
        EnrollErrorCode.codeRevoked,
        `enrollment code ${code} was revoked at ${new Date(row.revokedAt!).toISOString()}; ask support for a new code`,
      );
    if (state === 'expired')
      return refuse(
        EnrollErrorCode.codeExpired,
        `enrollment code ${code} expired at ${new Date(row.expiresAt).toISOString()}; generate a new code`,
      );
    if (row.reprovisions !== null) return await this.reprovisionWithCode(row, req.csr, now, refuse);
    // A replacement code is void once the terminal it replaces is gone (replaced by another code,
    // or decommissioned): one old terminal never gets two successors.
    const replaced = row.replaces === null ? undefined : await this.o.store.terminals.get(row.replaces);
    if (replaced && replaced.deactivatedAt !== null)
      return refuse(
        EnrollErrorCode.codeRevoked,
        `enrollment code ${code} replaced terminal ${replaced.id}, which is deactivated already${replaced.replacedBy ? ` (replaced by ${replaced.replacedBy})` : ''}; ask support for a new code`,
      );
    const terminalId = newId('term');
    const issued = this.issue(req.csr, terminalId, now);
    const terminal = await this.newTerminal(terminalId, row.terminalName, row.locationId, req, issued, now);
    const created = await this.o.store.transaction(async () => {
      const old = row.replaces === null ? undefined : await this.o.store.terminals.get(row.replaces);
      if (old && old.deactivatedAt !== null) return false;
      if (!(await this.o.store.enrollment.useCode(code, terminalId, now))) return false;
      await this.o.store.terminals.insert({ ...terminal, replaces: row.replaces });
      await this.o.events.emit('terminal.enrolled', { terminalId, method: 'code', replaces: row.replaces });
      return true;
    });
    if (!created)
      return refuse(
        EnrollErrorCode.codeUsed,
        `enrollment code ${code} was already used; generate a new code`,
      );
    this.o.log.info({ terminalId, locationId: row.locationId, replaces: row.replaces }, 'terminal enrolled');
    return this.response(terminalId, row.locationId, row.terminalName, issued);
  }

  /**
   * A reprovision code: the same terminal gets a certificate for the device's new key. It is
   * pending, like a renewal: the old certificate works until the new one is first used, and is
   * refused (superseded) from then on.
   */
  private async reprovisionWithCode(
    row: EnrollmentCodeRow,
    csr: string,
    now: number,
    refuse: (code: string, message: string) => Promise<never>,
  ): Promise<EnrollResponse> {
    const terminal = await this.o.store.terminals.get(row.reprovisions!);
    if (!terminal || terminal.deactivatedAt !== null)
      return refuse(
        'terminal_deactivated',
        `terminal ${row.reprovisions} was deactivated after this reprovision code was made; ask support for a new terminal`,
      );
    const issued = this.issue(csr, terminal.id, now);
    const done = await this.o.store.transaction(async () => {
      if (!(await this.o.store.enrollment.useCode(row.code, terminal.id, now))) return false;
      await this.o.store.terminals.setPendingCertificate(
        terminal.id,
        issued.fingerprint,
        issued.serialNumber,
        issued.notAfter.getTime(),
      );
      return true;
    });
    if (!done)
      return refuse(
        EnrollErrorCode.codeUsed,
        `enrollment code ${row.code} was already used; generate a new code`,
      );
    this.o.log.info(
      { terminalId: terminal.id, notAfter: issued.notAfter.toISOString() },
      'terminal reprovisioned: a new certificate on the same record (pending first use)',
    );
    return this.response(terminal.id, terminal.locationId, terminal.name, issued);
  }

  /**
   * Zero-touch. The device proves its factory identity (see device-attestation.ts) against what the
   * pre-registration trusts. Every refusal — no such serial, no or wrong proof, claimed — is one
   * answer (403 auto_enrollment_refused), so serials cannot be probed; the operator's log says which.
   * A serial claimed before is enrolled again onto the same terminal when its proof holds (a
   * factory-reset device): a new certificate, which retires the old one on first use.
   */
  private async enrollWithSerial(
    req: Extract<EnrollRequest, { method: 'auto' }>,
    now: number,
    refuse: (code: string, message: string, extra?: object) => Promise<never>,
    source: string,
  ): Promise<EnrollResponse> {
    const serial = req.serialNumber;
    const pre = await this.o.store.enrollment.getPreregistration(serial);
    const refuseAuto = async (why: string, extra: object = {}): Promise<never> => {
      if (pre) await this.o.store.enrollment.countRefusedClaim(serial);
      return refuse(
        EnrollErrorCode.autoEnrollmentRefused,
        'zero-touch enrollment refused: no pre-registration matches this serial number and device credential, or it was already used',
        { serialNumber: serial, why, ...extra },
      );
    };
    // The same work whether or not the serial is known (a stand-in trust for an unknown one), so
    // timing says no more than the answer: the proof, the trust lookups, the chain check.
    const trust = (await this.o.store.attestation.trustOf(serial)) ?? {
      devicePublicKey: null,
      manufacturerCaId: null,
    };
    const attested = trust.devicePublicKey !== null || trust.manufacturerCaId !== null;
    const caRow = await this.o.store.attestation.getManufacturerCa(trust.manufacturerCaId ?? 'mca_none');
    let verdict: { ok: true } | { ok: false; reason: string } = {
      ok: false,
      reason: 'no factory attestation sent',
    };
    if (req.attestation) {
      // Both checks, always — a key comparison and a chain verification — against the real trust
      // or a stand-in; only the one this pre-registration names decides.
      const byKey = verifyAttestation(
        req.attestation,
        serial,
        req.csr,
        {
          devicePublicKey: (pre && trust.devicePublicKey) || this.o.dataPublicKey,
          manufacturerCa: null,
        },
        now,
      );
      const byCa = verifyAttestation(
        req.attestation,
        serial,
        req.csr,
        {
          devicePublicKey: null,
          manufacturerCa: pre && caRow ? new X509Certificate(caRow.certificate) : this.standInCa(),
        },
        now,
      );
      if (pre && trust.devicePublicKey) verdict = byKey;
      else if (pre && trust.manufacturerCaId) verdict = byCa;
    }
    if (!pre) return await refuseAuto('not pre-registered');
    if (attested) {
      if (!verdict.ok) return await refuseAuto(verdict.reason);
    } else if (!this.o.allowSerialOnly)
      return await refuseAuto('serial-only pre-registrations are not accepted by this cloud');
    else await this.checkBudget('auto', source, now); // serial-only proves nothing: every attempt is a guess
    if (pre.claimedAt !== null) {
      const claimed = pre.terminalId ? await this.o.store.terminals.get(pre.terminalId) : undefined;
      if (!attested || !claimed || claimed.deactivatedAt !== null)
        return await refuseAuto('already claimed', { terminalId: pre.terminalId });
      const issued = this.issue(req.csr, claimed.id, now);
      await this.o.store.terminals.setPendingCertificate(
        claimed.id,
        issued.fingerprint,
        issued.serialNumber,
        issued.notAfter.getTime(),
      );
      this.o.log.warn(
        { terminalId: claimed.id, serialNumber: serial },
        'pre-registered device enrolled again with its factory identity (reset?): new certificate, the old one retires on first use',
      );
      return this.response(claimed.id, claimed.locationId, claimed.name, issued);
    }
    const terminalId = newId('term');
    const issued = this.issue(req.csr, terminalId, now);
    const terminal = await this.newTerminal(
      terminalId,
      pre.name,
      pre.locationId,
      { ...req, serialNumber: serial, serialAttested: true },
      issued,
      now,
    );
    const created = await this.o.store.transaction(async () => {
      if (!(await this.o.store.enrollment.claimSerial(serial, terminalId, now))) return false;
      await this.o.store.terminals.insert(terminal);
      await this.o.events.emit('terminal.enrolled', { terminalId, method: 'auto', replaces: null });
      return true;
    });
    if (!created) return await refuseAuto('claimed meanwhile');
    this.o.log.info(
      { terminalId, serialNumber: serial, attested },
      attested
        ? 'terminal enrolled by its factory identity'
        : 'terminal enrolled by serial number only (unsafe mode)',
    );
    return this.response(terminalId, pre.locationId, pre.name, issued);
  }

  /** A CA no factory certificate chains to: what an unknown serial is checked against, for equal work. */
  private standInCa(): X509Certificate {
    this.standIn ??= new X509Certificate(this.o.ca.certificatePem);
    return this.standIn;
  }
  private standIn: X509Certificate | undefined;

  // ---- manufacturer CAs (zero-touch trust anchors) ----

  async createManufacturerCa(body: unknown): Promise<ManufacturerCaView> {
    const req = parseBody(validators.manufacturerCa, body);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(req.certificate);
    } catch {
      throw new Refusal('invalid_certificate', 'certificate is not a PEM X.509 certificate');
    }
    if (!cert.ca)
      throw new Refusal(
        'invalid_certificate',
        'certificate is not a CA certificate (basicConstraints CA:TRUE)',
      );
    const bad = acceptableKey(cert.publicKey);
    if (bad) throw new Refusal('invalid_certificate', `certificate key: ${bad}`);
    const fingerprint = cert.fingerprint256.replace(/:/g, '').toLowerCase();
    const existing = await this.o.store.attestation.manufacturerCaByFingerprint(fingerprint);
    if (existing) throw new Refusal('already_registered', `this CA is registered already as ${existing.id}`);
    const row = {
      id: newId('mca'),
      name: req.name,
      certificate: cert.toString(),
      fingerprint,
      createdAt: this.o.now(),
    };
    await this.o.store.attestation.insertManufacturerCa(row);
    return manufacturerCaView(row);
  }

  async listManufacturerCas(): Promise<{ object: 'list'; data: ManufacturerCaView[]; has_more: false }> {
    return {
      object: 'list',
      data: (await this.o.store.attestation.listManufacturerCas()).map(manufacturerCaView),
      has_more: false,
    };
  }

  // ---- pre-registrations ----

  async createPreregistration(body: unknown): Promise<PreregistrationView> {
    const req = parseBody(validators.prereg, body);
    await this.activeLocation(req.locationId);
    const trust = await this.trustFor(req);
    const row = {
      serialNumber: req.serialNumber,
      locationId: req.locationId,
      name: req.name ?? req.serialNumber,
      createdAt: this.o.now(),
    };
    const created = await this.o.store.transaction(async () => {
      if (!(await this.o.store.enrollment.insertPreregistration(row))) return false;
      await this.o.store.attestation.setTrust(req.serialNumber, trust);
      return true;
    });
    if (!created)
      throw new Refusal(
        'already_preregistered',
        `serial number ${req.serialNumber} is already pre-registered`,
      );
    return await this.preregistrationView(
      (await this.o.store.enrollment.getPreregistration(req.serialNumber))!,
    );
  }

  async listPreregistrations(): Promise<{ object: 'list'; data: PreregistrationView[] }> {
    return {
      object: 'list',
      data: await Promise.all(
        (await this.o.store.enrollment.listPreregistrations()).map((r) => this.preregistrationView(r)),
      ),
    };
  }

  /** What a new pre-registration trusts; refuses a serial-only one unless the cloud allows them. */
  private async trustFor(req: {
    devicePublicKey?: string;
    manufacturerCaId?: string;
  }): Promise<PreregistrationTrust> {
    if (req.devicePublicKey && req.manufacturerCaId)
      throw new Refusal('invalid_request', 'give devicePublicKey or manufacturerCaId, not both', CONTENT);
    if (req.devicePublicKey) {
      let key: ReturnType<typeof createPublicKey>;
      try {
        key = createPublicKey(req.devicePublicKey);
      } catch {
        throw new Refusal('invalid_request', 'devicePublicKey is not a PEM public key (SPKI)', CONTENT);
      }
      const bad = acceptableKey(key);
      if (bad) throw new Refusal('invalid_request', `devicePublicKey: ${bad}`, CONTENT);
      return {
        devicePublicKey: key.export({ type: 'spki', format: 'pem' }).toString(),
        manufacturerCaId: null,
      };
    }
    if (req.manufacturerCaId) {
      if (!(await this.o.store.attestation.getManufacturerCa(req.manufacturerCaId)))
        throw new Refusal(
          'not_found',
          `no manufacturer CA ${req.manufacturerCaId} (POST /v1/manufacturer-cas)`,
        );
      return { devicePublicKey: null, manufacturerCaId: req.manufacturerCaId };
    }
    if (!this.o.allowSerialOnly)
      throw new Refusal(
        'attestation_required',
        "a pre-registration must name the device's factory public key (devicePublicKey) or the manufacturer CA that issued its factory certificate (manufacturerCaId); serial-only pre-registration needs a cloud started with --allow-serial-only-preregistration (unsafe)",
      );
    return { devicePublicKey: null, manufacturerCaId: null };
  }

  private async preregistrationView(r: PreregistrationRow): Promise<PreregistrationView> {
    const trust = await this.o.store.attestation.trustOf(r.serialNumber);
    return {
      ...r,
      createdAt: unixSeconds(r.createdAt),
      claimedAt: r.claimedAt === null ? null : unixSeconds(r.claimedAt),
      object: 'preregistration',
      attestation: trust?.devicePublicKey
        ? 'device_public_key'
        : trust?.manufacturerCaId
          ? 'manufacturer_ca'
          : 'serial_only',
      manufacturerCaId: trust?.manufacturerCaId ?? null,
    };
  }

  // ---- pairing: the device shows a code, someone activates it ----

  async startPairing(body: unknown, source: string): Promise<PairingResponse> {
    const req = parseBody(validators.pairing, body, EnrollErrorCode.invalidRequest);
    const now = this.o.now();
    await this.checkPairingRate(source, now);
    refusingBadCsr(() => this.o.ca.checkCsr(req.csr));
    const secret = randomBytes(32).toString('base64url');
    const row = {
      id: newId('pair'),
      secretHash: hashSecret(secret),
      activationCode: newEnrollmentCode(),
      csr: req.csr,
      serialNumber: req.serialNumber ?? null,
      model: req.model ?? null,
      softwareVersion: req.softwareVersion ?? null,
      createdAt: now,
      expiresAt: now + this.o.pairingTtlSec * 1000,
      source,
    };
    await this.o.store.enrollment.insertPairing(row);
    this.o.log.info({ pairingId: row.id }, 'pairing started');
    return {
      pairingId: row.id,
      pairingSecret: secret,
      activationCode: row.activationCode,
      expiresAt: new Date(row.expiresAt).toISOString(),
      pollIntervalMs: this.o.pairingPollMs,
    };
  }

  /**
   * Unauthenticated pairings cost a stored CSR each: at most `perSource` started per window from
   * one source, and at most `maxPending` waiting for activation at once.
   */
  private async checkPairingRate(source: string, now: number): Promise<void> {
    const l = this.o.pairingLimits;
    const since = now - l.windowMs;
    const started = await this.o.store.enrollmentLimits.pairingsStartedFrom(source, since);
    if (l.perSource > 0 && started >= l.perSource) {
      const oldest =
        (await this.o.store.enrollmentLimits.nthPairingFromAt(source, since, started - l.perSource)) ?? now;
      const seconds = Math.max(1, Math.ceil((oldest + l.windowMs - now) / 1000));
      throw new Refusal(
        EnrollErrorCode.rateLimited,
        `${started} pairings were started from this address in the last ${Math.round(l.windowMs / 1000)} s (at most ${l.perSource}); try again in ${seconds} s`,
        { retryAfterSec: seconds },
      );
    }
    if (l.maxPending > 0 && (await this.o.store.enrollmentLimits.pendingPairings(now)) >= l.maxPending) {
      const seconds = Math.max(1, this.o.pairingTtlSec);
      throw new Refusal(
        EnrollErrorCode.rateLimited,
        `${l.maxPending} pairings are waiting for activation already; try again in ${seconds} s`,
        { retryAfterSec: seconds },
      );
    }
  }

  async pollPairing(pairingId: string, body: unknown, source: string): Promise<PairingPollResponse> {
    const req = parseBody(validators.poll, body, EnrollErrorCode.invalidRequest);
    const now = this.o.now();
    await this.checkBudget('pair', source, now);
    const row = await this.o.store.enrollment.getPairing(pairingId);
    const presented = Buffer.from(hashSecret(req.pairingSecret));
    if (!row || !timingSafeEqual(presented, Buffer.from(row.secretHash))) {
      await this.budget.fail('pair', source, now);
      throw new Refusal('not_found', `no pairing ${pairingId}`);
    }
    const state = pairingState(row, this.o.now());
    if (state === 'activated' && row.enrollment !== null)
      return { status: 'activated', enrollment: JSON.parse(row.enrollment) as EnrollResponse };
    if (state === 'expired')
      throw new Refusal(
        EnrollErrorCode.codeExpired,
        `activation code ${row.activationCode} expired at ${new Date(row.expiresAt).toISOString()}`,
      );
    return { status: 'pending', expiresAt: new Date(row.expiresAt).toISOString() };
  }

  /** `POST /v1/terminals/activate`: the code the device shows → the terminal exists, the device collects its certificate. */
  async activate(body: unknown, source: string): Promise<string> {
    const req = parseBody(validators.activate, body);
    const now = this.o.now();
    await this.checkBudget('pair', source, now);
    const code = normaliseEnrollmentCode(req.activationCode);
    const row = await this.o.store.enrollment.getPairingByCode(code);
    const refuse = async (errorCode: string, message: string): Promise<never> => {
      await this.budget.fail('pair', source, now);
      throw new Refusal(errorCode, message);
    };
    if (!row)
      return await refuse(
        EnrollErrorCode.invalidCode,
        `activation code ${code} is not recognised: check the code the terminal shows`,
      );
    const state = pairingState(row, now);
    if (state === 'activated')
      return await refuse(EnrollErrorCode.codeUsed, `activation code ${code} was already used`);
    if (state === 'expired')
      return await refuse(
        EnrollErrorCode.codeExpired,
        `activation code ${code} expired at ${new Date(row.expiresAt).toISOString()}; the terminal shows a new one`,
      );
    await this.activeLocation(req.locationId);
    const terminalId = newId('term');
    const name = req.name ?? row.serialNumber ?? terminalId;
    const issued = this.issue(row.csr, terminalId, now);
    const terminal = await this.newTerminal(terminalId, name, req.locationId, row, issued, now);
    const enrollment = this.response(terminalId, req.locationId, name, issued);
    const done = await this.o.store.transaction(async () => {
      if (
        !(await this.o.store.enrollment.activatePairing(row.id, terminalId, JSON.stringify(enrollment), now))
      )
        return false;
      await this.o.store.terminals.insert(terminal);
      await this.o.events.emit('terminal.enrolled', { terminalId, method: 'pair', replaces: null });
      return true;
    });
    if (!done) throw new Refusal(EnrollErrorCode.codeUsed, `activation code ${code} was already used`);
    this.o.log.info({ terminalId, locationId: req.locationId }, 'terminal activated by pairing code');
    return terminalId;
  }

  // ---- renewal ----

  /**
   * A new certificate for a new key. It is *pending*: the current one keeps working until the
   * terminal connects with the new one, which then becomes current (so a device that dies between
   * here and installing it still has a working identity).
   */
  async renewCertificate(terminalId: string, csr: string): Promise<RenewedCertificate> {
    const issued = this.issue(csr, terminalId, this.o.now());
    await this.o.store.terminals.setPendingCertificate(
      terminalId,
      issued.fingerprint,
      issued.serialNumber,
      issued.notAfter.getTime(),
    );
    this.o.log.info(
      { terminalId, notAfter: issued.notAfter.toISOString() },
      'certificate renewed (pending first use)',
    );
    return {
      certificate: issued.certificatePem,
      fleetCa: this.o.ca.certificatePem,
      dataPublicKey: this.o.dataPublicKey,
    };
  }

  // ---- shared ----

  private issue(csr: string, terminalId: string, now: number): IssuedCertificate {
    return refusingBadCsr(() =>
      this.o.ca.issueClientCertificate(
        csr,
        terminalId,
        new Date(now - (this.o.certIssuedAgoSec ?? 0) * 1000),
        this.o.certDays,
      ),
    );
  }

  /**
   * A serial a device only says it has (code or pairing enrollment) is recorded unless it is
   * pre-registered (that serial is proven by a factory identity) or another active terminal has it.
   */
  private async claimableSerial(
    serial: string | null,
    terminalId: string,
    attested: boolean,
  ): Promise<string | null> {
    if (!serial || attested) return serial;
    if (await this.o.store.terminals.serialInUse(serial, terminalId)) {
      this.o.log.warn(
        { terminalId, serialNumber: serial },
        'a device claims a serial that is pre-registered or in use; not recorded',
      );
      return null;
    }
    return serial;
  }

  private async newTerminal(
    id: string,
    name: string,
    locationId: string,
    device: {
      model?: string | null | undefined;
      serialNumber?: string | null | undefined;
      softwareVersion?: string | null | undefined;
      /** Proven by a factory identity (zero touch); any other serial is only what the device says. */
      serialAttested?: boolean;
    },
    issued: IssuedCertificate,
    now: number,
  ): Promise<NewTerminal> {
    return {
      id,
      name,
      locationId,
      model: device.model ?? null,
      serialNumber: await this.claimableSerial(
        device.serialNumber ?? null,
        id,
        device.serialAttested === true,
      ),
      softwareVersion: device.softwareVersion ?? null,
      createdAt: now,
      certFingerprint: issued.fingerprint,
      certSerial: issued.serialNumber,
      certNotAfter: issued.notAfter.getTime(),
    };
  }

  private response(
    terminalId: string,
    locationId: string,
    name: string,
    issued: IssuedCertificate,
  ): EnrollResponse {
    return {
      terminalId,
      locationId,
      name,
      certificate: issued.certificatePem,
      fleetCa: this.o.ca.certificatePem,
      cloudUrl: this.o.cloudUrl(),
      dataPublicKey: this.o.dataPublicKey,
    };
  }
}
