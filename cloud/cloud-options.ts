import { randomBytes } from 'node:crypto';
import { DEFAULT_CONFIG, mergePatch, type TerminalConfig } from '../protocol/config-schema.js';
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS } from './api/connection-guard.js';
import { DEFAULT_LINK_QUOTAS, type LinkQuotaLimits } from './gateway/link-quotas.js';

/** Every tunable of the reference cloud, with its default, in one visible place. */
export const CLOUD_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  heartbeatIntervalSec: 30,
  pingIntervalSec: 15,
  atRiskAfterSec: 900,
  offlineAfterSec: 1800,
  certDays: 90,
  /**
   * For tests: client certificates are issued as if this many seconds ago, so they arrive
   * part-way through their life (a renewal that is due at once). 0 in production.
   */
  certIssuedAgoSec: 0,
  /** Failed attempts of one enrollment method from one source per window. */
  enrollMaxFailures: 10,
  /** Failed attempts of one enrollment method from all sources together per window. */
  enrollGlobalMaxFailures: 100,
  enrollWindowSec: 900,
  /** Pairings one source may start per enrollment window (0: no limit). */
  pairingsPerSource: 20,
  /** Pairings waiting for activation at once, at most (0: no limit). */
  maxPendingPairings: 1000,
  /** An unused code is deleted this long after it expired. */
  expiredCodeRetentionSec: 86_400,
  /** How long a code shown by a device waiting to be paired stays valid. */
  pairingTtlSec: 600,
  pairingPollMs: 1000,
  /** First webhook retry after this; doubles up to an hour; given up after webhookMaxAttempts. */
  webhookRetryBaseMs: 5000,
  webhookMaxAttempts: 10,
  /** How often derived statuses are checked for time-based changes (needs_attention, offline). */
  statusSweepMs: 5000,
  /** An action not delivered within this long (no ttlSeconds given) fails as expired. */
  actionTtlSec: 86_400,
  /** New agent links admitted per second; beyond it agents get 503 cloud_busy and back off (0: no limit). */
  maxNewLinksPerSec: 1000,
  /**
   * Config pushes this process starts per second when a change touches many terminals (a
   * template change): spread and jittered, never lock-step (cloud/pacer.ts). A lone push goes at once.
   */
  configPushesPerSec: 100,
  /** Worker threads opening sealed card envelopes (0: one per core but one, 1–4). */
  envelopeWorkers: 0,
  /** Envelopes waiting for a worker, at most, across all links; past it a forward is refused (cloud_busy). */
  maxQueuedEnvelopes: 20_000,
  /** Sealed envelopes one link may forward per second (a batch past it waits, up to 10 s). */
  linkEnvelopesPerSec: DEFAULT_LINK_QUOTAS.envelopesPerSec,
  /** A link that sent no Hello this long after the upgrade is closed (1008). */
  helloTimeoutSec: 30,
  /** \`POST /v1/terminals/activate\` waits this long for the device's first Hello (VINR answers it online). */
  activateWaitSec: 15,
  /** Connections at once in total (0: half the descriptors past a reserve, at most 10,000). */
  maxConnections: DEFAULT_CONNECTION_LIMITS.maxConnections,
  /** Connections at once from one source address (0: no cap). */
  maxConnectionsPerSource: DEFAULT_CONNECTION_LIMITS.maxConnectionsPerSource,
  handshakeTimeoutMs: DEFAULT_CONNECTION_LIMITS.handshakeTimeoutMs,
  headersTimeoutMs: DEFAULT_CONNECTION_LIMITS.headersTimeoutMs,
  requestTimeoutMs: DEFAULT_CONNECTION_LIMITS.requestTimeoutMs,
  keepAliveTimeoutMs: DEFAULT_CONNECTION_LIMITS.keepAliveTimeoutMs,
  idleTimeoutMs: DEFAULT_CONNECTION_LIMITS.idleTimeoutMs,
  /**
   * For tests and demos: the cloud's clock runs this many seconds off the host's — in everything
   * it says (Date headers, Hello's serverTime) and issues (certificate validity). 0 in production.
   */
  clockOffsetSec: 0,
  /**
   * Accept pre-registrations that name no factory key or manufacturer CA (zero-touch by serial
   * alone). Unsafe: anyone who knows such a serial gets its certificate. Off unless asked for.
   */
  allowSerialOnlyPreregistration: false,
  /** A portal session unused this long is over. */
  portalIdleTimeoutSec: 1800,
  /** A portal session is over this long after sign-in, used or not. */
  portalSessionMaxSec: 43_200,
  /** Failed portal sign-ins from one address, or for one operator name, per enrollment window. */
  signInMaxFailures: 10,
  logLevel: 'info',
} as const;

export type CloudOptions = {
  dataDir: string;
  /** A PostgreSQL URL: the store is there (shared by several gateways); the data dir keeps the secrets. */
  database?: string;
  /** The vendor's Ed25519 release public keys (PEM files): publishing checks signatures with them. */
  releasePublicKeyFiles?: readonly string[];
  /** Webhooks may go to loopback and private addresses (development on one machine only). */
  allowPrivateWebhooks?: boolean;
} & {
  -readonly [K in keyof typeof CLOUD_DEFAULTS]: (typeof CLOUD_DEFAULTS)[K] extends string
    ? string
    : (typeof CLOUD_DEFAULTS)[K] extends boolean
      ? boolean
      : number;
};

export interface ReadyInfo {
  url: string;
  caFile: string;
  adminTokenFile: string;
}

export interface RunningCloud extends ReadyInfo {
  stop(): Promise<void>;
}

// ---- the options each part takes, from the flat flags ----

export function connectionLimitsOf(o: CloudOptions): ConnectionLimits {
  return {
    maxConnections: o.maxConnections,
    maxConnectionsPerSource: o.maxConnectionsPerSource,
    handshakeTimeoutMs: o.handshakeTimeoutMs,
    headersTimeoutMs: o.headersTimeoutMs,
    requestTimeoutMs: o.requestTimeoutMs,
    keepAliveTimeoutMs: o.keepAliveTimeoutMs,
    idleTimeoutMs: o.idleTimeoutMs,
  };
}

/** Defaults at the bottom of every terminal's config, the cloud's own heartbeat/ping flags included. */
export function configDefaultsOf(o: CloudOptions): TerminalConfig {
  return mergePatch(DEFAULT_CONFIG, {
    agent: { heartbeatIntervalSec: o.heartbeatIntervalSec, pingIntervalSec: o.pingIntervalSec },
  }) as TerminalConfig;
}

export function enrollmentLimitsOf(o: CloudOptions) {
  return {
    enrollBudget: {
      perSource: o.enrollMaxFailures,
      global: o.enrollGlobalMaxFailures,
      windowMs: o.enrollWindowSec * 1000,
    },
    pairingLimits: {
      perSource: o.pairingsPerSource,
      windowMs: o.enrollWindowSec * 1000,
      maxPending: o.maxPendingPairings,
    },
  };
}

export function linkQuotasOf(o: CloudOptions): LinkQuotaLimits {
  return {
    ...DEFAULT_LINK_QUOTAS,
    envelopesPerSec: o.linkEnvelopesPerSec,
    envelopeBurst: Math.max(o.linkEnvelopesPerSec, 500),
  };
}

export function portalLimitsOf(o: CloudOptions) {
  return {
    signIn: {
      perSource: o.signInMaxFailures,
      perAccount: o.signInMaxFailures,
      global: o.signInMaxFailures * 20,
      // The window the enrollment budget prunes by: failures of both live in one table.
      windowMs: o.enrollWindowSec * 1000,
    },
    session: { idleMs: o.portalIdleTimeoutSec * 1000, maxMs: o.portalSessionMaxSec * 1000 },
  };
}

/** When a terminal's status turns needs_attention, offline, or error for a certificate near expiry. */
export function statusThresholdsOf(o: CloudOptions) {
  return {
    atRiskAfterMs: o.atRiskAfterSec * 1000,
    offlineAfterMs: o.offlineAfterSec * 1000,
    // Agents renew with a third of the life (or 30 days, at most half of it) left: within a
    // quarter of the lifetime (at most 7 days) of expiry, renewal is failing.
    expiringWithinMs: Math.min(7 * 86_400_000, (o.certDays * 86_400_000) / 4),
  };
}

/** This process's id among the gateways and the presence timings (cloud/gateway/link-router.ts). */
export function routingOf(_o: CloudOptions) {
  return {
    gatewayId: `gw_${randomBytes(6).toString('hex')}`,
    leaseMs: 10_000,
    sweepMs: 1_000,
    routeGraceMs: 3_000,
  };
}
