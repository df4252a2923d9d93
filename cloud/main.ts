import { createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { DEFAULT_CONFIG, mergePatch, type TerminalConfig } from '../protocol/config-schema.js';
import { CloseCode } from '../protocol/version.js';
import { ActionService } from './action-service.js';
import { AgentGateway } from './agent-gateway.js';
import { CloudStore } from './cloud-store.js';
import { EnrollmentService } from './enrollment-service.js';
import { FleetCa, newPrivateKeyPem } from './fleet-ca.js';
import { FleetService, newAdminToken } from './fleet-service.js';
import { createRestHandler } from './rest-api.js';
import { StatusAnnouncer } from './status-announcer.js';
import { TransactionLedger } from './transaction-ledger.js';
import { Webhooks } from './webhooks.js';

/** Every tunable of the reference cloud, with its default, in one visible place. */
export const CLOUD_DEFAULTS = {
  host: '127.0.0.1',
  port: 0,
  heartbeatIntervalSec: 30,
  pingIntervalSec: 15,
  atRiskAfterSec: 900,
  offlineAfterSec: 1800,
  certDays: 90,
  enrollMaxFailures: 10,
  enrollWindowSec: 900,
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

export type CloudOptions = { dataDir: string } & {
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

async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
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
    await writeFileAtomic(files.caKey, created.keyPem, 0o600);
    await writeFileAtomic(files.caCert, created.ca.certificatePem, 0o644);
    ca = created.ca;
  }
  if (!existsSync(files.serverKey))
    await writeFileAtomic(files.serverKey, await newPrivateKeyPem(2048), 0o600);
  // The data key: terminals seal card data to its public half; only the cloud can open it.
  if (!existsSync(files.dataKey)) await writeFileAtomic(files.dataKey, await newPrivateKeyPem(2048), 0o600);
  const dataPrivateKey = await readFile(files.dataKey, 'utf8');
  const dataPublicKey = createPublicKey(dataPrivateKey).export({ type: 'spki', format: 'pem' }).toString();
  if (!existsSync(files.adminToken)) await writeFileAtomic(files.adminToken, `${newAdminToken()}\n`, 0o600);
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
  logDestination: pino.DestinationStream = pino.destination({ fd: 2, sync: true }),
): Promise<RunningCloud> {
  const log = pino({ level: options.logLevel, base: { service: 'posagent-cloud' } }, logDestination);
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
  const ledger = new TransactionLedger({ store, dataPrivateKey: id.dataPrivateKey, now, log });
  const webhooks = new Webhooks({
    store,
    now,
    retryBaseMs: options.webhookRetryBaseMs,
    maxAttempts: options.webhookMaxAttempts,
    timeoutMs: 10_000,
    log,
  });
  const actions = new ActionService({
    store,
    dataDir: options.dataDir,
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
    now,
    heartbeatIntervalSec: options.heartbeatIntervalSec,
    pingIntervalSec: options.pingIntervalSec,
    maxNewLinksPerSec: options.maxNewLinksPerSec,
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
    enrollAttempts: { maxFailures: options.enrollMaxFailures, windowMs: options.enrollWindowSec * 1000 },
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
  const server: Server = createServer(
    {
      key: id.serverKey,
      cert: id.serverCert,
      ca: [id.ca.certificatePem],
      requestCert: true,
      // REST clients come without a certificate; the gateway checks `authorized` itself.
      rejectUnauthorized: false,
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
        adminToken: id.adminToken,
        connectedIds: () => gateway.connectedIds(),
        log,
      }),
    ),
  );
  gateway.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const hostPart = options.host.includes(':') ? `[${options.host}]` : options.host;
  url = `https://${hostPart}:${port}`;
  const ready: ReadyInfo = { url, caFile: id.caFile, adminTokenFile: id.adminTokenFile };
  await writeFileAtomic(join(options.dataDir, 'cloud.json'), `${JSON.stringify(ready, null, 2)}\n`, 0o644);
  log.info({ url }, 'cloud listening');
  announcer.start();
  webhooks.start();
  actions.start(options.statusSweepMs);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      log.info('cloud stopping');
      announcer.stop();
      webhooks.stop();
      actions.stop();
      gateway.closeAll(CloseCode.serviceRestart, 'cloud restarting');
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        setTimeout(() => server.closeAllConnections(), 1000).unref();
      });
      store.close();
    })();
    return stopping;
  };
  return { ...ready, stop };
}
