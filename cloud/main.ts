import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type pino from 'pino';
import { DEFAULT_CONFIG, mergePatch, type TerminalConfig } from '../protocol/config-schema.js';
import { CloseCode } from '../protocol/version.js';
import { ActionService } from './actions/action-service.js';
import { loadReleaseKeys } from './actions/release-files.js';
import {
  type ConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
  guardConnections,
  serverOptions,
} from './api/connection-guard.js';
import { createRestHandler } from './api/rest-api.js';
import { TLS_SERVER_POLICY } from './api/tls-policy.js';
import { createCloudLogger } from './cloud-logger.js';
import { EnrollmentService } from './enrollment/enrollment-service.js';
import { FleetService, newAdminToken } from './fleet/fleet-service.js';
import { StatusAnnouncer } from './fleet/status-announcer.js';
import { AgentGateway } from './gateway/agent-gateway.js';
import { DEFAULT_LINK_QUOTAS } from './gateway/link-quotas.js';
import { verifyPeersAtHandshake } from './gateway/terminal-auth.js';
import { FleetCa, newPrivateKeyPem } from './identity/fleet-ca.js';
import { writeSecretFile } from './identity/secret-files.js';
import { EnvelopePool } from './ledger/envelope-pool.js';
import { TransactionLedger } from './ledger/transaction-ledger.js';
import { CloudStore } from './store/cloud-store.js';
import { WebhookTargets } from './webhooks/webhook-targets.js';
import { Webhooks } from './webhooks/webhooks.js';

/** Every tunable of the reference cloud, with its default, in one visible place. */
export const CLOUD_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  heartbeatIntervalSec: 30,
  pingIntervalSec: 15,
  atRiskAfterSec: 900,
  offlineAfterSec: 1800,
  certDays: 90,
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
  maxNewLinksPerSec: 200,
  /** Worker threads opening sealed card envelopes (0: one per core but one, 1–4). */
  envelopeWorkers: 0,
  /** Envelopes waiting for a worker, at most, across all links; past it a forward is refused (cloud_busy). */
  maxQueuedEnvelopes: 20_000,
  /** Sealed envelopes one link may forward per second (a batch past it waits, up to 10 s). */
  linkEnvelopesPerSec: DEFAULT_LINK_QUOTAS.envelopesPerSec,
  /** A link that sent no Hello this long after the upgrade is closed (1008). */
  helloTimeoutSec: 30,
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
  logLevel: 'info',
} as const;

export type CloudOptions = {
  dataDir: string;
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

/** Loads the cloud's identity from the data dir, creating it on first start. */
async function loadOrCreateIdentity(dir: string, hosts: string[], now: Date) {
  const files = {
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverKey: join(dir, 'server.key'),
    dataKey: join(dir, 'data.key'),
    adminToken: join(dir, 'admin-token'),
  };
  let ca: FleetCa;
  if (existsSync(files.caCert) && existsSync(files.caKey)) {
    ca = FleetCa.load(await readFile(files.caCert, 'utf8'), await readFile(files.caKey, 'utf8'));
  } else {
    const created = await FleetCa.create(`posagent fleet CA ${hostname()}`, now);
    await writeSecretFile(files.caKey, created.keyPem, 0o600);
    await writeSecretFile(files.caCert, created.ca.certificatePem, 0o644);
    ca = created.ca;
  }
  if (!existsSync(files.serverKey))
    await writeSecretFile(files.serverKey, await newPrivateKeyPem(2048), 0o600);
  // The data key: terminals seal card data to its public half; only the cloud can open it.
  if (!existsSync(files.dataKey)) await writeSecretFile(files.dataKey, await newPrivateKeyPem(2048), 0o600);
  const dataPrivateKey = await readFile(files.dataKey, 'utf8');
  const dataPublicKey = createPublicKey(dataPrivateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(files.adminToken)) await writeSecretFile(files.adminToken, `${newAdminToken()}\n`, 0o600);
  const serverKey = await readFile(files.serverKey, 'utf8');
  // Re-issued at every start: it follows --host and never expires under a long-running fleet.
  const serverCert = ca.issueServerCertificate(serverKey, hosts, now);
  const adminToken = (await readFile(files.adminToken, 'utf8')).trim();
  return {
    ca,
    serverKey,
    serverCert,
    adminToken,
    dataPrivateKey,
    dataPublicKey,
    caFile: files.caCert,
    adminTokenFile: files.adminToken,
  };
}

/** Every answer's `Date` header from the cloud's clock (devices compare their clocks to it). */
function withCloudDate(
  now: () => number,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    res.setHeader('date', new Date(now()).toUTCString());
    handler(req, res);
  };
}

/** The composition root of `posagent-cloud serve`: builds every part, wires them, listens. */
export async function startCloud(
  options: CloudOptions,
  logDestination?: pino.DestinationStream,
): Promise<RunningCloud> {
  const log = createCloudLogger(options.logLevel, logDestination);
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const hosts = [options.host, 'localhost', '127.0.0.1', '::1', hostname()];
  const offsetMs = (options.clockOffsetSec ?? 0) * 1000;
  const now = () => Date.now() + offsetMs;
  const id = await loadOrCreateIdentity(options.dataDir, hosts, new Date(now()));
  const store = new CloudStore(join(options.dataDir, 'cloud.db'));
  let url = '';
  const configDefaults = mergePatch(DEFAULT_CONFIG, {
    agent: { heartbeatIntervalSec: options.heartbeatIntervalSec, pingIntervalSec: options.pingIntervalSec },
  }) as TerminalConfig;
  const envelopes = new EnvelopePool({
    dataPrivateKeyPem: id.dataPrivateKey,
    ...(options.envelopeWorkers > 0 ? { size: options.envelopeWorkers } : {}),
    maxQueued: options.maxQueuedEnvelopes,
    log,
  });
  const ledger = new TransactionLedger({ store, envelopes, now, log });
  const webhooks = new Webhooks({
    store,
    now,
    retryBaseMs: options.webhookRetryBaseMs,
    maxAttempts: options.webhookMaxAttempts,
    timeoutMs: 10_000,
    targets: new WebhookTargets(options.allowPrivateWebhooks === true),
    log,
  });
  const releaseKeys = await loadReleaseKeys(options.releasePublicKeyFiles ?? []);
  const actions = new ActionService({
    store,
    dataDir: options.dataDir,
    releaseKeys,
    now,
    defaultTtlSec: options.actionTtlSec,
    onQueued: (t) => void gateway.deliverActions(t),
    onFinished: (a) =>
      webhooks.emit(a.status === 'completed' ? 'terminal_action.completed' : 'terminal_action.failed', {
        ...a,
      }),
    log,
  });
  const gateway: AgentGateway = new AgentGateway({
    store,
    caPem: id.ca.certificatePem,
    now,
    heartbeatIntervalSec: options.heartbeatIntervalSec,
    pingIntervalSec: options.pingIntervalSec,
    maxNewLinksPerSec: options.maxNewLinksPerSec,
    quotas: {
      ...DEFAULT_LINK_QUOTAS,
      envelopesPerSec: options.linkEnvelopesPerSec,
      envelopeBurst: Math.max(options.linkEnvelopesPerSec, 500),
    },
    helloTimeoutMs: options.helloTimeoutSec * 1000,
    desiredConfig: (t) => fleet.desiredConfig(t),
    transactions: ledger,
    actions,
    onConfigApplied: (t, ack) => fleet.recordConfigAck(t, ack),
    renewCertificate: (t, csr) => enrollment.renewCertificate(t, csr),
    terminalProfile: (t) => fleet.terminalProfile(t),
    onLinkChange: (t) => announcer.check(t),
    log,
  });
  const fleet = new FleetService({
    store,
    now,
    thresholds: {
      atRiskAfterMs: options.atRiskAfterSec * 1000,
      offlineAfterMs: options.offlineAfterSec * 1000,
    },
    isConnected: (t) => gateway.isConnected(t),
    requestDiagnostics: (t) => gateway.requestDiagnostics(t),
    configDefaults,
    onConfigChanged: (ids) => {
      for (const id of ids) gateway.pushConfig(id);
    },
    onProfileChanged: (id) => gateway.pushProfile(id),
    onDeactivated: (terminalId, reason) => {
      announcer.check(terminalId); // the event goes into the deactivating transaction
      setImmediate(() => gateway.deactivate(terminalId, reason));
    },
    log,
  });
  const enrollment = new EnrollmentService({
    store,
    ca: id.ca,
    now,
    cloudUrl: () => url,
    certDays: options.certDays,
    pairingTtlSec: options.pairingTtlSec,
    pairingPollMs: options.pairingPollMs,
    dataPublicKey: id.dataPublicKey,
    enrollBudget: {
      perSource: options.enrollMaxFailures,
      global: options.enrollGlobalMaxFailures,
      windowMs: options.enrollWindowSec * 1000,
    },
    pairingLimits: {
      perSource: options.pairingsPerSource,
      windowMs: options.enrollWindowSec * 1000,
      maxPending: options.maxPendingPairings,
    },
    expiredCodeRetentionMs: options.expiredCodeRetentionSec * 1000,
    allowSerialOnly: options.allowSerialOnlyPreregistration,
    onEnrolled: (terminalId, how) => {
      const row = store.getTerminal(terminalId)!;
      if (how.replaces) {
        fleet.adoptConfig(terminalId, how.replaces);
        fleet.deactivateTerminal(how.replaces, `replaced by terminal ${terminalId}`);
      }
      webhooks.emit('terminal.enrolled', {
        terminalId,
        name: row.name,
        locationId: row.locationId,
        method: how.method,
        replaces: how.replaces,
      });
    },
    log,
  });
  const announcer = new StatusAnnouncer({
    store,
    status: (row) => fleet.status(row),
    emit: (type, data) => webhooks.emit(type, data),
    sweepMs: options.statusSweepMs,
  });
  const limits: ConnectionLimits = {
    maxConnections: options.maxConnections,
    maxConnectionsPerSource: options.maxConnectionsPerSource,
    handshakeTimeoutMs: options.handshakeTimeoutMs,
    headersTimeoutMs: options.headersTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs,
  };
  const server: Server = createServer(
    {
      ...serverOptions(limits),
      key: id.serverKey,
      cert: id.serverCert,
      ca: [id.ca.certificatePem],
      requestCert: true,
      // REST clients come without a certificate; terminal routes and the gateway check the one
      // presented themselves (terminal-auth.ts).
      rejectUnauthorized: false,
      ...TLS_SERVER_POLICY,
    },
    withCloudDate(
      now,
      createRestHandler({
        fleet,
        enrollment,
        webhooks,
        store,
        ledger,
        actions,
        caPem: id.ca.certificatePem,
        now,
        bodyTimeoutMs: options.requestTimeoutMs,
        adminToken: id.adminToken,
        connectedIds: () => gateway.connectedIds(),
        log,
      }),
    ),
  );
  guardConnections(server, limits, log);
  verifyPeersAtHandshake(server, id.ca.certificatePem, now);
  gateway.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
  url = `https://${hostPart}:${port}`;
  const ready: ReadyInfo = { url, caFile: id.caFile, adminTokenFile: id.adminTokenFile };
  await writeSecretFile(join(options.dataDir, 'cloud.json'), `${JSON.stringify(ready, null, 2)}\n`, 0o644);
  log.info({ url }, 'cloud listening');
  if (options.allowPrivateWebhooks)
    log.warn(
      {},
      'webhooks may be sent to loopback and private addresses (--allow-private-webhooks): for development only',
    );
  announcer.start();
  webhooks.start();
  actions.start(options.statusSweepMs);
  enrollment.start(options.statusSweepMs);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      log.info('cloud stopping');
      announcer.stop();
      webhooks.stop();
      actions.stop();
      enrollment.stop();
      gateway.closeAll(CloseCode.serviceRestart, 'cloud restarting');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
      await envelopes.close();
      store.close();
    })();
    return stopping;
  };
  return { ...ready, stop };
}
