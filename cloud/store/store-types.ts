import type { ActionState, ActionType } from '../../protocol/actions.js';

/**
 * The cloud's store: one narrow interface per table family, engine-neutral. The services see only
 * these; `sqlite/` implements them (the embedded default) and a PostgreSQL implementation will
 * implement exactly the same (docs/architecture.md, "The cloud store", has the rules):
 * - rows are plain data: strings, numbers (times are Unix milliseconds), booleans, null; JSON
 *   documents cross as JSON text; no engine type (statement, row id, 0/1 for a boolean) leaks out;
 * - a method does one thing to its own tables; what the rows mean (which statuses count, what an
 *   answer about an old version changes) is decided by the caller, not inside SQL;
 * - several writes that must land together go through `CloudStore.transaction`, the one helper;
 * - every method answers a Promise (PostgreSQL answers over the network); the SQLite store computes
 *   its answer at once and resolves it, so the embedded default stays as fast as it was.
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
  /** Presence: the gateway holding the terminal's newest link (null: none), and that link's version. */
  linkGateway: string | null;
  linkVersion: number | null;
}

/** What a terminal list may be narrowed to, in the store (status is derived: the caller filters it). */
export interface TerminalFilter {
  locationId?: string | null;
  organizationId?: string | null;
  /** Matches the serial, the name or the model-serial POIID, case-insensitively, exactly. */
  search?: string | null;
}

/** One terminal's last heartbeat, as a gateway's batch writes it. */
export interface HeartbeatWrite {
  id: string;
  /** Unix ms. */
  at: number;
  batteryLevel: number | null;
  /** The heartbeat's health document (JSON text). */
  health: string;
  clockSkewMs: number;
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
  insert(row: OrganizationRow): Promise<boolean>;
  get(id: string): Promise<OrganizationRow | undefined>;
  bySlug(slug: string): Promise<OrganizationRow | undefined>;
  /** Oldest first. */
  list(page: Page): Promise<OrganizationRow[]>;
  /** false when the new slug is taken. */
  update(id: string, changes: { name?: string; slug?: string }): Promise<boolean>;
}

export interface LocationStore {
  insert(row: LocationRow): Promise<void>;
  get(id: string): Promise<LocationRow | undefined>;
  /** Oldest first; every organization's when null. */
  list(organizationId: string | null, page: Page): Promise<LocationRow[]>;
  update(
    id: string,
    changes: { name?: string; active?: boolean; timezone?: string | null; address?: string | null },
  ): Promise<void>;
  /** A store by its id, or by its name within an organization (Adyen's `store`). */
  byName(organizationId: string, name: string): Promise<LocationRow | undefined>;
}

export interface TerminalStore {
  insert(terminal: NewTerminal): Promise<void>;
  get(id: string): Promise<TerminalRow | undefined>;
  /** The terminals of these ids that exist, in one read (a heartbeat batch's status checks); no order. */
  getMany(ids: readonly string[]): Promise<TerminalRow[]>;
  /** Newest first; every location when `locationId` is null. */
  list(locationId: string | null): Promise<TerminalRow[]>;
  /** Newest first, after the terminal `page.after` (keyset on the enrollment order: stable under changes). */
  page(filter: TerminalFilter, page: Page): Promise<TerminalRow[]>;
  /** The terminals of one store, every one (its counts are derived from them). */
  at(locationId: string): Promise<TerminalRow[]>;
  /** Status history, newest first, before the event `beforeSeq` (null: from the newest). */
  events(id: string, page: { beforeSeq: number | null; limit: number }): Promise<TerminalStatusEventRow[]>;
  /** Oldest first. */
  idsAt(locationId: string): Promise<string[]>;
  /** A Hello: last seen, boot, version; the model the device reports; its serial when given. */
  recordHello(
    id: string,
    now: number,
    hello: { bootId: string; softwareVersion: string; model: string | null; serialNumber: string | null },
  ): Promise<void>;
  recordHeartbeat(id: string, now: number, batteryLevel: number | null, health: string): Promise<void>;
  /** Many terminals' last heartbeats in one statement (a gateway's batch); how many rows it changed. */
  recordHeartbeats(beats: readonly HeartbeatWrite[]): Promise<number>;
  recordDisconnect(id: string, closedCleanly: boolean): Promise<void>;
  /** Whether a serial is pre-registered, or held by another active terminal. */
  serialInUse(serial: string, exceptTerminalId: string): Promise<boolean>;
  setPendingCertificate(id: string, fingerprint: string, serial: string, notAfter: number): Promise<void>;
  /** The pending certificate becomes the current one (nothing when none is pending). */
  promotePendingCertificate(id: string): Promise<void>;
  /** false when it was deactivated already. */
  deactivate(id: string, now: number, reason: string): Promise<boolean>;
  update(id: string, changes: { name?: string; locationId?: string }): Promise<void>;
  /**
   * The announced status changes, and its history gets the change, in one call (inside the
   * caller's transaction) — only if the announced status is still `previous` (what the caller read): false, nothing
   * written, when another check (another gateway) announced first.
   */
  setAnnouncedStatus(
    id: string,
    previous: string | null,
    status: string,
    at: number,
    reason: string | null,
  ): Promise<boolean>;
  /** A problem the cloud saw (a refused link, a revoked certificate); null clears it. */
  setProblem(id: string, problem: string | null, at: number | null): Promise<void>;
  recordClockSkew(id: string, skewMs: number): Promise<void>;
  setReplacedBy(id: string, by: string): Promise<void>;
  /** The certificate with this fingerprint is refused from now on. */
  revokeCertificate(id: string, fingerprint: string, at: number): Promise<void>;
  isRevoked(fingerprint: string): Promise<boolean>;
  setLocked(id: string, locked: boolean): Promise<void>;
  locked(id: string): Promise<boolean>;
  /**
   * Presence: the terminal's link on `gatewayId` with `version` is its newest; false (nothing
   * changes) when a link with a higher version registered already.
   */
  registerLink(id: string, gatewayId: string, version: number): Promise<boolean>;
  /**
   * The link with `version` closed: presence is cleared only if it is still that link; false when
   * a newer one registered since (a late close from an old socket never marks a newer link offline).
   */
  releaseLink(id: string, version: number): Promise<boolean>;
}

/** The gateways (the `posagent-cloud` processes) alive, by lease, and the link versions they hand out. */
export interface GatewayStore {
  /** The gateway is alive until `until` (Unix ms). */
  renewLease(gatewayId: string, until: number): Promise<void>;
  /** The gateways whose lease runs at `now`. */
  live(now: number): Promise<string[]>;
  /** Presence on gateways whose lease ended before `now` is cleared, and their leases removed: how many links. */
  expire(now: number): Promise<number>;
  /** Link versions only ever go up, across every gateway. */
  nextLinkVersion(): Promise<number>;
  /** Terminals whose link is on a gateway alive at `now`. */
  connectedIds(now: number): Promise<string[]>;
  /**
   * Whether this process leads the fleet-wide sweeps (status, expiry): one gateway at a time, by an
   * advisory lock held on its own connection until it stops (SQLite: one process, always).
   */
  lead(): Promise<boolean>;
}

/** Work for the gateway that holds a terminal's link, written before that gateway is rung. */
export interface LinkCallRow {
  id: string;
  terminalId: string;
  /** The gateway that is to do it. */
  gatewayId: string;
  /** What: config, actions, profile, deactivate, close, diagnostics, ping, rotate. */
  kind: string;
  /** JSON text. */
  payload: string;
  /** The gateway that asked (it is rung with the answer). */
  fromGateway: string;
  createdAt: number;
  expiresAt: number;
  /** JSON text, once answered. */
  answer: string | null;
}

export interface LinkCallStore {
  insert(row: Omit<LinkCallRow, 'answer'>): Promise<void>;
  /** Calls for `gatewayId` not taken yet and not expired at `now`, oldest first: each is taken once. */
  take(gatewayId: string, now: number, limit: number): Promise<LinkCallRow[]>;
  answer(id: string, answer: string): Promise<void>;
  get(id: string): Promise<LinkCallRow | undefined>;
  /** Deletes calls that expired before `before`. */
  prune(before: number): Promise<number>;
}

/**
 * Tells a gateway there is work for it (the rows are written first; a lost ring is made up for by
 * the gateway's own sweep). PostgreSQL: LISTEN/NOTIFY; SQLite (one process): in-process.
 */
export interface Doorbell {
  ring(gatewayId: string, message: string): Promise<void>;
  /** `onRing` is called with each message for `gatewayId`. */
  listen(gatewayId: string, onRing: (message: string) => void): Promise<void>;
}

export interface ConfigStore {
  /** The location's template (JSON text), null when it has none. */
  template(locationId: string): Promise<string | null>;
  setTemplate(locationId: string, template: string, now: number): Promise<void>;
  get(terminalId: string): Promise<TerminalConfigRow | undefined>;
  /** Versions only ever go up, across every terminal. */
  nextVersion(): Promise<number>;
  /** Writes the terminal's row whole (created on first use). */
  put(row: TerminalConfigRow): Promise<void>;
}

export interface TransactionStore {
  /** Stores a forwarded transaction once per (terminal, id): 'duplicate' when it is there already. */
  insert(
    row: Omit<CloudTransactionRow, 'rseq' | 'resultDelivered' | 'deliveries'>,
  ): Promise<'received' | 'duplicate'>;
  get(terminalId: string, id: string): Promise<CloudTransactionRow | undefined>;
  /** One more delivery of a transaction the cloud has. */
  countRedelivery(terminalId: string, id: string): Promise<void>;
  /** Results not yet delivered to the terminal with one of `statuses`, in the order received. */
  undelivered(
    terminalId: string,
    statuses: readonly CloudTransactionStatus[],
    limit: number,
  ): Promise<CloudTransactionRow[]>;
  markDelivered(terminalId: string, ids: readonly string[]): Promise<void>;
  /** The first received with this id, whichever terminal sent it (ids are the POS apps' UUIDs). */
  byId(id: string): Promise<CloudTransactionRow | undefined>;
  /** Every one, in the order received. */
  list(terminalId: string | null, status: string | null): Promise<CloudTransactionRow[]>;
  /** In the order received, after the transaction with id \`page.after\` (keyset on that order). */
  page(
    filter: { terminalId: string | null; status: string | null },
    page: Page,
  ): Promise<CloudTransactionRow[]>;
}

export interface EnrollmentStore {
  insertCode(
    row: Omit<EnrollmentCodeRow, 'usedAt' | 'terminalId' | 'reprovisions' | 'revokedAt'> & {
      reprovisions?: string | null;
    },
  ): Promise<void>;
  getCode(code: string): Promise<EnrollmentCodeRow | undefined>;
  /** Newest first. */
  listCodes(locationId: string | null, page: Page): Promise<EnrollmentCodeRow[]>;
  /** false when it was used or revoked already. */
  revokeCode(code: string, at: number): Promise<boolean>;
  /** false when it was used meanwhile. */
  useCode(code: string, terminalId: string, at: number): Promise<boolean>;
  insertPreregistration(
    row: Omit<PreregistrationRow, 'claimedAt' | 'terminalId' | 'refusedClaims'>,
  ): Promise<boolean>;
  getPreregistration(serial: string): Promise<PreregistrationRow | undefined>;
  listPreregistrations(): Promise<PreregistrationRow[]>;
  countRefusedClaim(serial: string): Promise<void>;
  /** false when it was claimed meanwhile. */
  claimSerial(serial: string, terminalId: string, at: number): Promise<boolean>;
  insertPairing(
    row: Omit<PairingRow, 'activatedAt' | 'terminalId' | 'enrollment'> & { source: string },
  ): Promise<void>;
  getPairing(id: string): Promise<PairingRow | undefined>;
  getPairingByCode(code: string): Promise<PairingRow | undefined>;
  /** false when it was activated meanwhile. */
  activatePairing(id: string, terminalId: string, enrollment: string, at: number): Promise<boolean>;
}

/** Zero-touch trust: manufacturer CAs, and what each pre-registration trusts. */
export interface AttestationStore {
  insertManufacturerCa(row: ManufacturerCaRow): Promise<boolean>;
  getManufacturerCa(id: string): Promise<ManufacturerCaRow | undefined>;
  manufacturerCaByFingerprint(fingerprint: string): Promise<ManufacturerCaRow | undefined>;
  listManufacturerCas(): Promise<ManufacturerCaRow[]>;
  setTrust(serialNumber: string, trust: PreregistrationTrust): Promise<void>;
  trustOf(serialNumber: string): Promise<PreregistrationTrust | undefined>;
}

/** What bounds unauthenticated enrollment: failures per method and source, pairings per source. */
export interface EnrollmentLimitStore {
  recordFailure(method: string, source: string, at: number): Promise<void>;
  /** Failures of `method` after `since`, from `source` (or from everywhere when null). */
  failures(method: string, source: string | null, since: number): Promise<number>;
  /** When the `n`-th (0-based) failure after `since` happened. */
  nthFailureAt(method: string, source: string | null, since: number, n: number): Promise<number | null>;
  pairingsStartedFrom(source: string, since: number): Promise<number>;
  nthPairingFromAt(source: string, since: number, n: number): Promise<number | null>;
  /** Pairings not activated that expire after `now`. */
  pendingPairings(now: number): Promise<number>;
  /** Deletes failures before `failuresBefore`, pairings expired before `pairingsBefore`, unused codes expired before `codesBefore`. */
  prune(
    failuresBefore: number,
    pairingsBefore: number,
    codesBefore: number,
  ): Promise<{ failures: number; pairings: number; codes: number }>;
}

export interface ActionStore {
  insert(
    row: Pick<CloudActionRow, 'id' | 'terminalId' | 'type' | 'params' | 'createdAt' | 'expiresAt'>,
  ): Promise<void>;
  get(id: string): Promise<CloudActionRow | undefined>;
  /** Newest first. */
  list(terminalId: string, limit: number): Promise<CloudActionRow[]>;
  /** Oldest first. */
  queued(terminalId: string): Promise<CloudActionRow[]>;
  /** Queued ones whose `expiresAt` is at or before `now`. */
  expired(now: number): Promise<CloudActionRow[]>;
  /** `deliveredAt` is set the first time it is given. */
  update(
    id: string,
    u: Pick<CloudActionRow, 'status' | 'reason' | 'step' | 'percent'>,
    now: number,
    deliveredAt: number | null,
  ): Promise<void>;
}

export interface ReleaseStore {
  insert(row: ReleaseRow): Promise<void>;
  get(version: string): Promise<ReleaseRow | undefined>;
  /** Newest first. */
  list(): Promise<ReleaseRow[]>;
  setDowngradeSignature(version: string, signature: string, from: string): Promise<void>;
  /**
   * Whether the artifacts' bytes are kept in the store: PostgreSQL, where several gateways serve
   * any release (each caches the file in its own data dir); not SQLite, one process, whose
   * artifact is the file the release row names.
   */
  readonly keepsArtifacts: boolean;
  /** One piece of a release's artifact, `seq` from 0, in the row's transaction; a store that keeps no artifacts refuses. */
  insertChunk(version: string, seq: number, bytes: Buffer): Promise<void>;
  /** The piece `seq` of a release's artifact; undefined past the last (always, where none are kept). */
  chunk(version: string, seq: number): Promise<Buffer | undefined>;
  /** Removes a release's pieces (to write them again whole); none where none are kept. */
  deleteChunks(version: string): Promise<void>;
}

export interface WebhookStore {
  insertEndpoint(row: WebhookEndpointRow): Promise<void>;
  /** Not when deleted. */
  getEndpoint(id: string): Promise<WebhookEndpointRow | undefined>;
  /** Every endpoint not deleted, oldest first. */
  listEndpoints(): Promise<WebhookEndpointRow[]>;
  pageEndpoints(page: Page): Promise<WebhookEndpointRow[]>;
  /** Deletes it (its past deliveries stay; pending ones are given up); false when there was none. */
  deleteEndpoint(id: string, at: number): Promise<boolean>;
  /** The event, and a delivery due at `now` for each endpoint given. */
  insertEvent(
    id: string,
    type: string,
    payload: string,
    now: number,
    endpointIds: readonly string[],
  ): Promise<void>;
  /** Deliveries neither delivered nor given up, due at or before `now`, oldest event first. */
  due(now: number, limit: number): Promise<WebhookDeliveryRow[]>;
  /** When the next pending delivery is due (null: none pending). */
  nextAttemptAt(): Promise<number | null>;
  recordAttempt(eventSeq: number, endpointId: string, attempt: WebhookAttempt): Promise<void>;
  deliveries(endpointId: string): Promise<WebhookDeliveryRow[]>;
}

export interface DiagnosticsStore {
  save(terminalId: string, report: string, now: number): Promise<void>;
  last(terminalId: string): Promise<{ report: string; receivedAt: number } | undefined>;
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
  insert(row: OperatorRow): Promise<boolean>;
  get(name: string): Promise<OperatorRow | undefined>;
  list(): Promise<OperatorRow[]>;
  setPassword(name: string, passwordHash: string): Promise<boolean>;
  setRole(name: string, role: OperatorRole): Promise<boolean>;
  remove(name: string): Promise<boolean>;
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
  insert(row: PortalSessionRow): Promise<void>;
  get(tokenHash: string): Promise<PortalSessionRow | undefined>;
  touch(tokenHash: string, at: number): Promise<void>;
  remove(tokenHash: string): Promise<void>;
  /** Every session of one operator (removed, or their password changed). */
  removeOperator(name: string): Promise<number>;
  /** Sessions idle since before `idleBefore` or made before `createdBefore`. */
  prune(idleBefore: number, createdBefore: number): Promise<number>;
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
  record(row: Omit<AuditRow, 'seq'>): Promise<void>;
  /** Newest first. */
  forTarget(target: string, limit: number): Promise<AuditRow[]>;
  recent(limit: number): Promise<AuditRow[]>;
}

/** A staged rollout of a release (issue 24; cloud/deployments/ says what the fields mean). */
export interface DeploymentRow {
  id: string;
  name: string;
  releaseVersion: string;
  /** JSON text: what was targeted, as asked. */
  target: string;
  /** JSON text: the group specs (percent or count). */
  groups: string;
  /** JSON text: advanceWhen, stopWhen, maxPerMinute. */
  rules: string;
  state: 'scheduled' | 'running' | 'paused' | 'completed' | 'stopped' | 'cancelled';
  reason: string | null;
  /** Groups started so far (0 while scheduled). */
  startedGroups: number;
  groupCount: number;
  /** Switch in the maintenance window (false) or at once (true). */
  now: boolean;
  /** When it starts (Unix ms; null: at once). */
  startAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export type DeploymentTargetState = 'queued' | 'processing' | 'completed' | 'failed' | 'skipped';

export interface DeploymentTargetRow {
  deploymentId: string;
  terminalId: string;
  groupIndex: number;
  state: DeploymentTargetState;
  actionId: string | null;
  /** When its update action was asked for (the rate counts these). */
  askedAt: number | null;
  reason: string | null;
  updatedAt: number;
}

export interface DeploymentStore {
  insert(row: DeploymentRow, targets: readonly { terminalId: string; groupIndex: number }[]): Promise<void>;
  get(id: string): Promise<DeploymentRow | undefined>;
  /** Newest first, after the deployment `page.after`. */
  list(page: Page): Promise<DeploymentRow[]>;
  /** Scheduled, running or paused: the ones a tick looks at. */
  active(): Promise<DeploymentRow[]>;
  /** Reads the row for a change (PostgreSQL: locked until the transaction ends, so two gateways never tick it at once). */
  lock(id: string): Promise<DeploymentRow | undefined>;
  update(
    id: string,
    changes: Pick<DeploymentRow, 'state' | 'reason' | 'startedGroups' | 'updatedAt'>,
  ): Promise<void>;
  /** Terminals per group and state. */
  counts(id: string): Promise<{ groupIndex: number; state: DeploymentTargetState; n: number }[]>;
  /** Queued terminals of groups below `groupsBelow`, in group order, at most `limit`. */
  queued(id: string, groupsBelow: number, limit: number): Promise<DeploymentTargetRow[]>;
  /** Update actions asked for since `since` (Unix ms). */
  askedSince(id: string, since: number): Promise<number>;
  /** Moves a target from the state `from` (false: it was not in it — someone else moved it). */
  moveTarget(
    id: string,
    terminalId: string,
    from: DeploymentTargetState,
    change: {
      state: DeploymentTargetState;
      actionId?: string | null;
      askedAt?: number | null;
      reason?: string | null;
    },
    now: number,
  ): Promise<boolean>;
  /** Every queued target of the deployment becomes skipped with `reason` (it stopped or was cancelled). */
  skipQueued(id: string, reason: string, now: number): Promise<number>;
  /** Processing targets asked before `before` that never got their action (a crash between the two). */
  stranded(id: string, before: number): Promise<DeploymentTargetRow[]>;
  byAction(actionId: string): Promise<DeploymentTargetRow | undefined>;
  /** In group order, then terminal id, after `after` (a terminal id within the same order). */
  targets(
    id: string,
    page: { after: { groupIndex: number; terminalId: string } | null; limit: number },
  ): Promise<DeploymentTargetRow[]>;
}

/** A collect_logs upload (issue 24): the gzipped, redacted lines, kept for support. */
export interface LogBundleRow {
  actionId: string;
  terminalId: string;
  gzip: Buffer;
  size: number;
  receivedAt: number;
}

export interface LogBundleStore {
  /** false when the action has one already (a second upload does not replace the first). */
  put(row: LogBundleRow): Promise<boolean>;
  get(actionId: string): Promise<LogBundleRow | undefined>;
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
  readonly deployments: DeploymentStore;
  readonly logBundles: LogBundleStore;
  readonly gateways: GatewayStore;
  readonly linkCalls: LinkCallStore;
  readonly doorbell: Doorbell;
  /** The connection pool now (PostgreSQL; SQLite has one connection and none). */
  poolStats?(): { total: number; idle: number; waiting: number };
  /**
   * Runs `fn` so that all its writes land together or none does; nests (a savepoint). The one
   * transaction helper. Every store call `fn` makes, however deep, runs in the transaction; no
   * other caller's writes land inside it while it awaits.
   */
  transaction<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** A store interface with its answers computed at once (the SQLite tables implement these). */
export type Immediate<T> = {
  [K in keyof T]: T[K] extends (...a: infer A) => Promise<infer R> ? (...a: A) => R : T[K];
};
