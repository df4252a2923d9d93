import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import type pino from 'pino';
import { CloseCode } from '../protocol/version.js';
import { ActionService } from './actions/action-service.js';
import { loadReleaseKeys } from './actions/release-files.js';
import { ReleaseService } from './actions/release-service.js';
import { HttpsListener } from './api/https-listener.js';
import { createRestHandler } from './api/rest-api.js';
import { type CloudEvents, EventBus } from './cloud-events.js';
import { createCloudLogger } from './cloud-logger.js';
import { CloudMetrics } from './cloud-metrics.js';
import {
  type CloudOptions,
  configDefaultsOf,
  connectionLimitsOf,
  enrollmentLimitsOf,
  linkQuotasOf,
  portalLimitsOf,
  type ReadyInfo,
  type RunningCloud,
  routingOf,
  statusThresholdsOf,
} from './cloud-options.js';
import { DeploymentService } from './deployments/deployment-service.js';
import { EnrollmentService } from './enrollment/enrollment-service.js';
import { wireEvents } from './event-wiring.js';
import { FleetService } from './fleet/fleet-service.js';
import { StatusAnnouncer } from './fleet/status-announcer.js';
import { AgentGateway } from './gateway/agent-gateway.js';
import { AgentLinks } from './gateway/agent-links.js';
import { LinkRouter } from './gateway/link-router.js';
import { loadOrCreateIdentity, writeReadyFile } from './identity/cloud-identity.js';
import { loadOrCreateTicketKeys } from './identity/ticket-keys.js';
import { EnvelopePool } from './ledger/envelope-pool.js';
import { TransactionLedger } from './ledger/transaction-ledger.js';
import { openCloudStore } from './open-store.js';
import { startParts } from './parts.js';
import { createPortal, portalOrRest } from './portal/portal.js';
import { WebhookTargets } from './webhooks/webhook-targets.js';
import { Webhooks } from './webhooks/webhooks.js';

/** The composition root of `posagent-cloud serve`: builds every part, wires them, starts them. */
export async function startCloud(
  o: CloudOptions,
  logDestination?: pino.DestinationStream,
): Promise<RunningCloud> {
  const log = createCloudLogger(o.logLevel, logDestination);
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const now = () => Date.now() + (o.clockOffsetSec ?? 0) * 1000;
  const hosts = [o.host, 'localhost', '127.0.0.1', '::1', hostname()];
  const id = await loadOrCreateIdentity(o.dataDir, hosts, new Date(now()));
  const tickets = await loadOrCreateTicketKeys(o.dataDir);
  const store = await openCloudStore(o);
  const bus = new EventBus<CloudEvents>();
  const links = new AgentLinks();
  const metrics = new CloudMetrics();
  const router: LinkRouter = new LinkRouter({
    ...{ store, now, log, metrics, ...routingOf(o) },
    local: links,
    gateway: (): AgentGateway => gateway,
  });
  const listener = new HttpsListener({
    ...{ host: o.host, port: o.port, tickets, now, log },
    ...{ key: id.serverKey, cert: id.serverCert, caPem: id.ca.certificatePem },
    limits: connectionLimitsOf(o),
  });
  const envelopes = new EnvelopePool({
    ...{ dataPrivateKeyPem: id.dataPrivateKey, maxQueued: o.maxQueuedEnvelopes, log },
    ...(o.envelopeWorkers > 0 ? { size: o.envelopeWorkers } : {}),
  });
  const ledger = new TransactionLedger({ store, envelopes, now, log });
  const webhooks = new Webhooks({
    store,
    now,
    retryBaseMs: o.webhookRetryBaseMs,
    maxAttempts: o.webhookMaxAttempts,
    timeoutMs: 10_000,
    targets: new WebhookTargets(o.allowPrivateWebhooks === true),
    log,
  });
  const releaseKeys = await loadReleaseKeys(o.releasePublicKeyFiles ?? []);
  const releases = new ReleaseService({ store, dataDir: o.dataDir, releaseKeys, now, log });
  const actions = new ActionService({
    store,
    now,
    defaultTtlSec: o.actionTtlSec,
    sweepMs: o.statusSweepMs,
    events: bus,
    log,
  });
  const fleet = new FleetService({
    store,
    now,
    thresholds: statusThresholdsOf(o),
    links: router,
    events: bus,
    configDefaults: configDefaultsOf(o),
    activateWaitMs: o.activateWaitSec * 1000,
    log,
  });
  const enrollment = new EnrollmentService({
    store,
    ca: id.ca,
    now,
    cloudUrl: () => listener.url,
    certDays: o.certDays,
    certIssuedAgoSec: o.certIssuedAgoSec,
    pairingTtlSec: o.pairingTtlSec,
    pairingPollMs: o.pairingPollMs,
    dataPublicKey: id.dataPublicKey,
    ...enrollmentLimitsOf(o),
    expiredCodeRetentionMs: o.expiredCodeRetentionSec * 1000,
    sweepMs: o.statusSweepMs,
    allowSerialOnly: o.allowSerialOnlyPreregistration,
    events: bus,
    log,
  });
  const deployments = new DeploymentService({
    store,
    actions,
    emit: webhooks.emit.bind(webhooks),
    now,
    random: Math.random,
    log,
  });
  const announcer = new StatusAnnouncer({
    store,
    status: (row) => fleet.statusWithReason(row),
    now,
    emit: (type, data) => webhooks.emit(type, data),
    lead: () => store.gateways.lead(),
    sweepMs: o.statusSweepMs,
    log,
  });
  const gateway: AgentGateway = new AgentGateway({
    store,
    gatewayId: router.gatewayId,
    metrics,
    links,
    events: bus,
    fleet,
    enrollment,
    transactions: ledger,
    actions,
    caPem: id.ca.certificatePem,
    now,
    heartbeatIntervalSec: o.heartbeatIntervalSec,
    pingIntervalSec: o.pingIntervalSec,
    maxNewLinksPerSec: o.maxNewLinksPerSec,
    quotas: linkQuotasOf(o),
    helloTimeoutMs: o.helloTimeoutSec * 1000,
    log,
  });

  const wiring = wireEvents(bus, {
    ...{ fleet, announcer, router, webhooks, store, actions, deployments, log },
    configPushesPerSec: o.configPushesPerSec,
  });

  const rest = createRestHandler({
    ...{ fleet, enrollment, webhooks, ledger, actions, releases, deployments, store, now, log },
    caPem: id.ca.certificatePem,
    bodyTimeoutMs: o.requestTimeoutMs,
    adminToken: id.adminToken,
    ...{ metrics, ready: () => router.ready(), connectedIds: () => router.connectedIds() },
  });
  const portal = createPortal({
    ...{ store, fleet, enrollment, actions, deployments, now, log, ...portalLimitsOf(o) },
    bodyTimeoutMs: o.requestTimeoutMs,
  });
  listener.serve(portalOrRest(portal.handle, rest), gateway);

  const stop = await startParts(
    [
      { name: 'store', stop: async () => await store.close() },
      { name: 'envelopes', stop: () => envelopes.close() },
      { name: 'fleet', start: async () => await fleet.start() },
      { name: 'router', start: () => router.start(), stop: () => router.stop() },
      { name: 'config pushes', stop: () => wiring.stop() },
      { name: 'listener', start: () => listener.start(), stop: () => listener.stop() },
      { name: 'gateway', stop: () => gateway.closeAll(CloseCode.serviceRestart, 'cloud restarting') },
      { name: 'announcer', start: () => announcer.start(), stop: () => announcer.stop() },
      { name: 'webhooks', start: () => webhooks.start(), stop: () => webhooks.stop() },
      { name: 'actions', start: () => actions.start(), stop: () => actions.stop() },
      { name: 'deployments', start: () => deployments.start(), stop: () => deployments.stop() },
      { name: 'enrollment', start: () => enrollment.start(), stop: () => enrollment.stop() },
      { name: 'portal', start: () => portal.start(), stop: () => portal.stop() },
    ],
    log,
  );
  const ready: ReadyInfo = { url: listener.url, caFile: id.caFile, adminTokenFile: id.adminTokenFile };
  await writeReadyFile(o.dataDir, ready);
  log.info({ url: ready.url }, 'cloud listening');

  return { ...ready, stop };
}
