import type { ActionState, ActionType } from '../../protocol/actions.js';

/**
 * The cloud's store: one narrow interface per table family, engine-neutral. The services see only
 * these; `sqlite/` implements them (the embedded default) and a PostgreSQL implementation will
 * implement exactly the same (docs/architecture.md, "The cloud store", has the rules):
 * - rows are plain data: strings, numbers (times are Unix milliseconds), booleans, null; JSON
 *   documents cross as JSON text; no engine type (statement, row id, 0/1 for a boolean) leaks out;
 * - a method does one thing to its own tables; what the rows mean (which statuses count, what an
 *   answer about an old version changes) is decided by the caller, not inside SQL;
 * - several writes that must land together go through `CloudStore.transaction`, the one helper.
 */

export interface OrganizationRow {
  id: string;
  /** Unique across the fleet: what support quotes in an escalation (PeakPOS) and Adyen's merchantAccount. */
  slug: string;
  name: string;
  /** Unix ms. */
  createdAt: number;
}

/** A store (the VINR location): it belongs to one organization. */
export interface LocationRow {
  id: string;
  name: string;
  /** Unix seconds (kept as it was first stored). */
  createdAt: number;
  organizationId: string;
  active: boolean;
  timezone: string | null;
  /** JSON text: the address document, null when none. */
  address: string | null;
}

/** A page in a stable order: rows after the one with id `after` (null: from the start). */
export interface Page {
  after: string | null;
  limit: number;
}

/** One change of a terminal's status, as it was announced. */
export interface TerminalStatusEventRow {
  seq: number;
  terminalId: string;
  /** Unix ms. */
  at: number;
  status: string;
  previousStatus: string | null;
  reason: string | null;
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
  closedCleanly: boolean;
  bootId: string | null;
  batteryLevel: number | null;
  /** The last heartbeat's health document (JSON text). */
  health: string | null;
  pendingFingerprint: string | null;
  pendingSerial: string | null;
  pendingNotAfter: number | null;
  deactivationReason: string | null;
  announcedStatus: string | null;
  /** When the announced status began (Unix ms). */
  announcedAt: number | null;
  /** Why the cloud last refused or flagged this terminal (a refused link, a revoked certificate); cleared by an accepted Hello. */
  problem: string | null;
  problemAt: number | null;
  /** Device clock minus the cloud's, at the last Hello or heartbeat (ms). */
  clockSkewMs: number | null;
  /** The terminal this one replaced, and the one that replaced it. */
  replaces: string | null;
  replacedBy: string | null;
}

/** What a terminal list may be narrowed to, in the store (status is derived: the caller filters it). */
export interface TerminalFilter {
  locationId?: string | null;
  organizationId?: string | null;
  /** Matches the serial, the name or the model-serial POIID, case-insensitively, exactly. */
  search?: string | null;
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
> & { replaces?: string | null };

export type ConfigStatus = 'pending' | 'applied' | 'rejected';

export interface TerminalConfigRow {
  terminalId: string;
  /** JSON text: the terminal's own layer. */
  overrides: string;
  /** JSON text: the effective config it should run. */
  desired: string;
  version: number;
  appliedVersion: number | null;
  status: ConfigStatus;
  /** JSON text: the terminal's reasons for rejecting `version`. */
  errors: string | null;
  updatedAt: number;
}

export type CloudTransactionStatus = 'authorised' | 'declined' | 'expired' | 'invalid';

export interface CloudTransactionRow {
  rseq: number;
  terminalId: string;
  id: string;
  seq: number;
  amount: number;
  currency: string;
  createdAt: string;
  receivedAt: number;
  offline: boolean;
  expired: boolean;
  cardLast4: string | null;
  status: CloudTransactionStatus;
  reason: string | null;
  resultDelivered: boolean;
  deliveries: number;
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
  /** A reprovision code: enrolling with it gives this terminal a new certificate, on the same record. */
  reprovisions: string | null;
  revokedAt: number | null;
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
  /** JSON text: the enrollment answer the device collects. */
  enrollment: string | null;
}

export interface ManufacturerCaRow {
  id: string;
  name: string;
  certificate: string;
  fingerprint: string;
  createdAt: number;
}

export interface PreregistrationTrust {
  /** SPKI PEM of the factory key, when the pre-registration names it. */
  devicePublicKey: string | null;
  manufacturerCaId: string | null;
}

export interface CloudActionRow {
  seq: number;
  id: string;
  terminalId: string;
  type: ActionType;
  /** JSON text. */
  params: string;
  status: ActionState;
  reason: string | null;
  step: string | null;
  percent: number | null;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  deliveredAt: number | null;
}

export interface ReleaseRow {
  version: string;
  sha256: string;
  size: number;
  signature: string;
  file: string;
  createdAt: number;
  downgradeSignature?: string | null;
  downgradeFrom?: string | null;
}

export interface WebhookEndpointRow {
  id: string;
  url: string;
  /** JSON text: the event types it subscribes to. */
  events: string;
  secret: string;
  createdAt: number;
}

/** One delivery attempt's outcome: delivered, given up (failed), or to retry at nextAttemptAt. */
export interface WebhookAttempt {
  status: number | null;
  error: string | null;
  deliveredAt: number | null;
  failedAt: number | null;
  nextAttemptAt: number | null;
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

// ---- the interfaces ----

export interface OrganizationStore {
  /** false when the slug (or id) is taken. */
  insert(row: OrganizationRow): boolean;
  get(id: string): OrganizationRow | undefined;
  bySlug(slug: string): OrganizationRow | undefined;
  /** Oldest first. */
  list(page: Page): OrganizationRow[];
  /** false when the new slug is taken. */
  update(id: string, changes: { name?: string; slug?: string }): boolean;
}

export interface LocationStore {
  insert(row: LocationRow): void;
  get(id: string): LocationRow | undefined;
  /** Oldest first; every organization's when null. */
  list(organizationId: string | null, page: Page): LocationRow[];
  update(
    id: string,
    changes: { name?: string; active?: boolean; timezone?: string | null; address?: string | null },
  ): void;
  /** A store by its id, or by its name within an organization (Adyen's `store`). */
  byName(organizationId: string, name: string): LocationRow | undefined;
}

export interface TerminalStore {
  insert(terminal: NewTerminal): void;
  get(id: string): TerminalRow | undefined;
  /** Newest first; every location when `locationId` is null. */
  list(locationId: string | null): TerminalRow[];
  /** Newest first, after the terminal `page.after` (keyset on the enrollment order: stable under changes). */
  page(filter: TerminalFilter, page: Page): TerminalRow[];
  /** The terminals of one store, every one (its counts are derived from them). */
  at(locationId: string): TerminalRow[];
  /** Status history, newest first, before the event `beforeSeq` (null: from the newest). */
  events(id: string, page: { beforeSeq: number | null; limit: number }): TerminalStatusEventRow[];
  /** Oldest first. */
  idsAt(locationId: string): string[];
  /** A Hello: last seen, boot, version; the model the device reports; its serial when given. */
  recordHello(
    id: string,
    now: number,
    hello: { bootId: string; softwareVersion: string; model: string | null; serialNumber: string | null },
  ): void;
  recordHeartbeat(id: string, now: number, batteryLevel: number | null, health: string): void;
  recordDisconnect(id: string, closedCleanly: boolean): void;
  /** Whether a serial is pre-registered, or held by another active terminal. */
  serialInUse(serial: string, exceptTerminalId: string): boolean;
  setPendingCertificate(id: string, fingerprint: string, serial: string, notAfter: number): void;
  /** The pending certificate becomes the current one (nothing when none is pending). */
  promotePendingCertificate(id: string): void;
  /** false when it was deactivated already. */
  deactivate(id: string, now: number, reason: string): boolean;
  update(id: string, changes: { name?: string; locationId?: string }): void;
  /** The announced status changes, and its history gets the change, in one call (inside the caller's transaction). */
  setAnnouncedStatus(id: string, status: string, at: number, reason: string | null): void;
  /** A problem the cloud saw (a refused link, a revoked certificate); null clears it. */
  setProblem(id: string, problem: string | null, at: number | null): void;
  recordClockSkew(id: string, skewMs: number): void;
  setReplacedBy(id: string, by: string): void;
  /** The certificate with this fingerprint is refused from now on. */
  revokeCertificate(id: string, fingerprint: string, at: number): void;
  isRevoked(fingerprint: string): boolean;
  setLocked(id: string, locked: boolean): void;
  locked(id: string): boolean;
}

export interface ConfigStore {
  /** The location's template (JSON text), null when it has none. */
  template(locationId: string): string | null;
  setTemplate(locationId: string, template: string, now: number): void;
  get(terminalId: string): TerminalConfigRow | undefined;
  /** Versions only ever go up, across every terminal. */
  nextVersion(): number;
  /** Writes the terminal's row whole (created on first use). */
  put(row: TerminalConfigRow): void;
}

export interface TransactionStore {
  /** Stores a forwarded transaction once per (terminal, id): 'duplicate' when it is there already. */
  insert(row: Omit<CloudTransactionRow, 'rseq' | 'resultDelivered' | 'deliveries'>): 'received' | 'duplicate';
  get(terminalId: string, id: string): CloudTransactionRow | undefined;
  /** One more delivery of a transaction the cloud has. */
  countRedelivery(terminalId: string, id: string): void;
  /** Results not yet delivered to the terminal with one of `statuses`, in the order received. */
  undelivered(
    terminalId: string,
    statuses: readonly CloudTransactionStatus[],
    limit: number,
  ): CloudTransactionRow[];
  markDelivered(terminalId: string, ids: readonly string[]): void;
  /** The first received with this id, whichever terminal sent it (ids are the POS apps' UUIDs). */
  byId(id: string): CloudTransactionRow | undefined;
  /** Every one, in the order received. */
  list(terminalId: string | null, status: string | null): CloudTransactionRow[];
  /** In the order received, after the transaction with id \`page.after\` (keyset on that order). */
  page(filter: { terminalId: string | null; status: string | null }, page: Page): CloudTransactionRow[];
}

export interface EnrollmentStore {
  insertCode(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId' | 'reprovisions' | 'revokedAt'> & {
      reprovisions?: string | null;
    },
  ): void;
  getCode(code: string): EnrollmentCodeRow | undefined;
  /** Newest first. */
  listCodes(locationId: string | null, page: Page): EnrollmentCodeRow[];
  /** false when it was used or revoked already. */
  revokeCode(code: string, at: number): boolean;
  /** false when it was used meanwhile. */
  useCode(code: string, terminalId: string, at: number): boolean;
  insertPreregistration(row: Omit<PreregistrationRow, 'claimedAt' | 'terminalId' | 'refusedClaims'>): boolean;
  getPreregistration(serial: string): PreregistrationRow | undefined;
  listPreregistrations(): PreregistrationRow[];
  countRefusedClaim(serial: string): void;
  /** false when it was claimed meanwhile. */
  claimSerial(serial: string, terminalId: string, at: number): boolean;
  insertPairing(
    row: Omit<PairingRow, 'activatedAt' | 'terminalId' | 'enrollment'> & { source: string },
  ): void;
  getPairing(id: string): PairingRow | undefined;
  getPairingByCode(code: string): PairingRow | undefined;
  /** false when it was activated meanwhile. */
  activatePairing(id: string, terminalId: string, enrollment: string, at: number): boolean;
}

/** Zero-touch trust: manufacturer CAs, and what each pre-registration trusts. */
export interface AttestationStore {
  insertManufacturerCa(row: ManufacturerCaRow): boolean;
  getManufacturerCa(id: string): ManufacturerCaRow | undefined;
  manufacturerCaByFingerprint(fingerprint: string): ManufacturerCaRow | undefined;
  listManufacturerCas(): ManufacturerCaRow[];
  setTrust(serialNumber: string, trust: PreregistrationTrust): void;
  trustOf(serialNumber: string): PreregistrationTrust | undefined;
}

/** What bounds unauthenticated enrollment: failures per method and source, pairings per source. */
export interface EnrollmentLimitStore {
  recordFailure(method: string, source: string, at: number): void;
  /** Failures of `method` after `since`, from `source` (or from everywhere when null). */
  failures(method: string, source: string | null, since: number): number;
  /** When the `n`-th (0-based) failure after `since` happened. */
  nthFailureAt(method: string, source: string | null, since: number, n: number): number | null;
  pairingsStartedFrom(source: string, since: number): number;
  nthPairingFromAt(source: string, since: number, n: number): number | null;
  /** Pairings not activated that expire after `now`. */
  pendingPairings(now: number): number;
  /** Deletes failures before `failuresBefore`, pairings expired before `pairingsBefore`, unused codes expired before `codesBefore`. */
  prune(
    failuresBefore: number,
    pairingsBefore: number,
    codesBefore: number,
  ): { failures: number; pairings: number; codes: number };
}

export interface ActionStore {
  insert(
    row: Pick<CloudActionRow, 'id' | 'terminalId' | 'type' | 'params' | 'createdAt' | 'expiresAt'>,
  ): void;
  get(id: string): CloudActionRow | undefined;
  /** Newest first. */
  list(terminalId: string, limit: number): CloudActionRow[];
  /** Oldest first. */
  queued(terminalId: string): CloudActionRow[];
  /** Queued ones whose `expiresAt` is at or before `now`. */
  expired(now: number): CloudActionRow[];
  /** `deliveredAt` is set the first time it is given. */
  update(
    id: string,
    u: Pick<CloudActionRow, 'status' | 'reason' | 'step' | 'percent'>,
    now: number,
    deliveredAt: number | null,
  ): void;
}

export interface ReleaseStore {
  insert(row: ReleaseRow): void;
  get(version: string): ReleaseRow | undefined;
  /** Newest first. */
  list(): ReleaseRow[];
  setDowngradeSignature(version: string, signature: string, from: string): void;
}

export interface WebhookStore {
  insertEndpoint(row: WebhookEndpointRow): void;
  /** Not when deleted. */
  getEndpoint(id: string): WebhookEndpointRow | undefined;
  /** Every endpoint not deleted, oldest first. */
  listEndpoints(): WebhookEndpointRow[];
  pageEndpoints(page: Page): WebhookEndpointRow[];
  /** Deletes it (its past deliveries stay; pending ones are given up); false when there was none. */
  deleteEndpoint(id: string, at: number): boolean;
  /** The event, and a delivery due at `now` for each endpoint given. */
  insertEvent(id: string, type: string, payload: string, now: number, endpointIds: readonly string[]): void;
  /** Deliveries neither delivered nor given up, due at or before `now`, oldest event first. */
  due(now: number, limit: number): WebhookDeliveryRow[];
  /** When the next pending delivery is due (null: none pending). */
  nextAttemptAt(): number | null;
  recordAttempt(eventSeq: number, endpointId: string, attempt: WebhookAttempt): void;
  deliveries(endpointId: string): WebhookDeliveryRow[];
}

export interface DiagnosticsStore {
  save(terminalId: string, report: string, now: number): void;
  last(terminalId: string): { report: string; receivedAt: number } | undefined;
}

/** Who may use the support portal, and as what (cloud/portal/portal-roles.ts says what each role may do). */
export type OperatorRole = 'admin' | 'support';

export interface OperatorRow {
  name: string;
  role: OperatorRole;
  /** `scrypt$N$r$p$salt$key` (base64url): never the password. */
  passwordHash: string;
  createdAt: number;
}

export interface OperatorStore {
  /** false when the name is taken. */
  insert(row: OperatorRow): boolean;
  get(name: string): OperatorRow | undefined;
  list(): OperatorRow[];
  setPassword(name: string, passwordHash: string): boolean;
  setRole(name: string, role: OperatorRole): boolean;
  remove(name: string): boolean;
}

export interface PortalSessionRow {
  /** sha256 of the cookie's token: a copy of the table signs no one in. */
  tokenHash: string;
  operator: string;
  csrfToken: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface PortalSessionStore {
  insert(row: PortalSessionRow): void;
  get(tokenHash: string): PortalSessionRow | undefined;
  touch(tokenHash: string, at: number): void;
  remove(tokenHash: string): void;
  /** Every session of one operator (removed, or their password changed). */
  removeOperator(name: string): number;
  /** Sessions idle since before `idleBefore` or made before `createdBefore`. */
  prune(idleBefore: number, createdBefore: number): number;
}

export interface AuditRow {
  seq: number;
  at: number;
  operator: string;
  /** What was asked, e.g. `terminal.reboot`, `terminal.rename`, `operator.sign_in`. */
  action: string;
  /** What it was done to (a terminal id, a location id, an operator name), when anything. */
  target: string | null;
  outcome: 'ok' | 'refused' | 'failed';
  detail: string | null;
}

export interface AuditStore {
  record(row: Omit<AuditRow, 'seq'>): void;
  /** Newest first. */
  forTarget(target: string, limit: number): AuditRow[];
  recent(limit: number): AuditRow[];
}

export interface CloudStore {
  readonly organizations: OrganizationStore;
  readonly locations: LocationStore;
  readonly terminals: TerminalStore;
  readonly configs: ConfigStore;
  readonly transactions: TransactionStore;
  readonly enrollment: EnrollmentStore;
  readonly attestation: AttestationStore;
  readonly enrollmentLimits: EnrollmentLimitStore;
  readonly actions: ActionStore;
  readonly releases: ReleaseStore;
  readonly webhooks: WebhookStore;
  readonly diagnostics: DiagnosticsStore;
  readonly operators: OperatorStore;
  readonly portalSessions: PortalSessionStore;
  readonly audit: AuditStore;
  /** Runs `fn` so that all its writes land together or none does; nests. The one transaction helper. */
  transaction<T>(fn: () => T): T;
  close(): void;
}
