import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ensureDir } from '../enroll/atomic-file.js';
import { type Identity, readIdentity, summariseCertificate } from '../enroll/identity-store.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { AgentStore } from './agent-store.js';
import { CloudLink } from './cloud-link.js';
import { configDocument } from './config-document.js';
import { ConfigManager } from './config-manager.js';
import { EventBus } from './event-bus.js';
import { serveEvents } from './event-stream.js';
import { HealthCollector } from './health.js';
import { HeartbeatSender } from './heartbeat.js';
import { LocalApi, Reply } from './local-api.js';
import type { Logger } from './logger.js';
import { OutboxSender } from './outbox-sender.js';
import { maintainQueue } from './queue-maintenance.js';
import type { AgentPaths, DeviceSettings } from './settings.js';
import { buildStatusDocument, type StatusDocument } from './status-document.js';
import { TransactionForwarder } from './transaction-forwarder.js';
import { listTransactions } from './transaction-list.js';
import { TransactionQueue } from './transaction-queue.js';

/** Thrown when `posagent run` starts on a terminal that has no identity. */
export class NotEnrolledError extends Error {
  override readonly name = 'NotEnrolledError';
}

export interface AgentDeps {
  paths: AgentPaths;
  settings: DeviceSettings;
  softwareVersion: string;
  log: Logger;
  /** The device asked for a log level (flag or environment): the fleet config does not change it. */
  logLevelPinned?: boolean;
  now?: () => number;
  random?: () => number;
}

export interface RunningAgent {
  status(): StatusDocument;
  /** Stops accepting, closes the link with a close frame, closes the store. */
  stop(): Promise<void>;
}

function readBootId(file: string): string {
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id.slice(0, 64);
  } catch {
    // no boot id source on this system: a random one per start still tells restarts apart
  }
  return randomUUID();
}

/**
 * The daemon's composition root: builds the store, the link, the heartbeat and the local API,
 * wires them, starts them. Nothing else reaches for globals or the environment.
 */
export async function startAgent(d: AgentDeps): Promise<RunningAgent> {
  const now = d.now ?? Date.now;
  const identity: Identity | null = await readIdentity(d.paths.stateDir);
  if (!identity)
    throw new NotEnrolledError(
      `this terminal is not enrolled (no identity in ${d.paths.stateDir}); run posagent enroll first`,
    );
  const [key, cert, ca] = await Promise.all([
    readFile(identity.paths.keyFile, 'utf8'),
    readFile(identity.paths.certFile, 'utf8'),
    readFile(identity.paths.caFile, 'utf8'),
  ]);
  const certificate = summariseCertificate(cert, now());
  await ensureDir(d.paths.runtimeDir, 0o750);
  const store = new AgentStore(d.paths.dbFile, { maxBytes: d.settings.maxStoreMb * 1024 * 1024 });
  const dataPublicKey = await readFile(identity.paths.dataKeyFile, 'utf8').catch(() => null);
  const bootId = readBootId(d.settings.bootIdFile);
  const health = new HealthCollector(d.paths.stateDir);
  const cloudUrl = d.settings.cloudUrl || identity.cloudUrl;

  const events = new EventBus();
  const outbox = new OutboxSender(store, d.log);
  const forwarder = new TransactionForwarder({ store: store.transactions, events, now, log: d.log });
  const queue = new TransactionQueue({
    store: store.transactions,
    events,
    now,
    online: () => link.snapshot().state === 'online',
    offlineMode: () => config.current().config.offlineMode,
    // Lock / unlock arrive with remote actions (issue 7); until then a terminal is never locked.
    locked: () => false,
    dataPublicKey,
    hashKey: store.deviceSecret('idempotency'),
    onStored: () => forwarder.wake(),
  });
  const queueDepth = () => store.transactions.summary().stored;
  const maintain = () => {
    const r = maintainQueue(
      store.transactions,
      now(),
      config.current().config.offlineMode.maxAgeHours,
      d.settings.retentionDays,
    );
    if (r.expired > 0) {
      d.log.warn(
        { expired: r.expired },
        'transactions expired before reaching the cloud; they will be reported',
      );
      events.publish('transaction', { expired: r.expired });
      forwarder.wake();
    }
  };
  let heartbeatFromHello = 30;
  const config = new ConfigManager({
    store,
    events,
    now,
    onApplied: (c) => {
      heartbeat.reschedule();
      if (!d.logLevelPinned) d.log.level = c.agent.logLevel;
    },
    onAck: () => outbox.wake(),
    log: d.log,
  });
  // The pushed config's interval wins once there is one; before that, the one Hello's answer gave.
  const heartbeatIntervalSec = () =>
    config.current().version === null
      ? heartbeatFromHello
      : config.current().config.agent.heartbeatIntervalSec;
  const initial = config.current();
  if (initial.version !== null && !d.logLevelPinned) d.log.level = initial.config.agent.logLevel;
  const heartbeat = new HeartbeatSender({
    health,
    now,
    queue: () => store.transactions.summary(),
    onSent: (at) => {
      store.recordHeartbeat(at);
      link.noteHeartbeat(at);
    },
    log: d.log,
  });
  const link: CloudLink = new CloudLink(
    {
      cloudUrl,
      tls: { ca, cert, key },
      policy: {
        baseMs: d.settings.reconnectBaseMs,
        capMs: d.settings.reconnectCapMs,
        restartSpreadMs: d.settings.restartSpreadMs,
        stableAfterMs: d.settings.stableAfterMs,
      },
      connectTimeoutMs: d.settings.connectTimeoutMs,
      callTimeoutMs: d.settings.callTimeoutMs,
      defaultPingIntervalSec: d.settings.pingIntervalSec,
      handlers: {
        ApplyConfig: (p) => config.handleApply(p),
        TransactionResult: (p) => forwarder.applyResults(p),
      },
      hello: () => ({
        terminalId: identity.terminalId,
        softwareVersion: d.softwareVersion,
        protocolVersion: PROTOCOL_VERSION,
        configVersion: config.current().version,
        bootId,
        queueDepth: queueDepth(),
        openActions: [],
        clock: new Date(now()).toISOString(),
      }),
      onOnline: (online) => {
        heartbeatFromHello = online.ack.heartbeatIntervalSec;
        void heartbeat.runWhileOnline(online, heartbeatIntervalSec);
        void outbox.runWhileOnline(online);
        void forwarder.runWhileOnline(online);
      },
      onStateChange: (s) => {
        store.recordLinkState(s.state, s.since, s.reason);
        events.publish('link', s);
      },
      now,
      random: d.random ?? Math.random,
      log: d.log,
    },
    { lastHeartbeatAt: store.linkStatus().lastHeartbeatAt },
  );

  const status = (): StatusDocument =>
    buildStatusDocument({
      identity,
      daemon: 'running',
      link: link.snapshot(),
      certificateNotAfter: certificate.notAfter,
      configVersion: config.current().version,
      queue: store.transactions.summary(),
      locked: false,
      softwareVersion: d.softwareVersion,
      nowMs: now(),
    });

  const api = new LocalApi(
    d.paths.socketPath,
    [
      { method: 'GET', pattern: /^\/v1\/status$/, handle: () => status() },
      {
        method: 'GET',
        pattern: /^\/v1\/config$/,
        handle: () => configDocument(config.current(), config.lastRejection()),
      },
      { method: 'GET', pattern: /^\/v1\/events$/, stream: serveEvents(events) },
      {
        method: 'POST',
        pattern: /^\/v1\/transactions$/,
        handle: async (_req, _p, body) => {
          const r = queue.submit(await body());
          return new Reply(r.status, r.record);
        },
      },
      { method: 'GET', pattern: /^\/v1\/transactions\/([^/]+)$/, handle: (_req, p) => queue.get(p[0]!) },
      {
        method: 'GET',
        pattern: /^\/v1\/transactions$/,
        handle: (req) =>
          listTransactions(store.transactions, new URL(req.url ?? '/', 'http://posagent').searchParams),
      },
      {
        method: 'POST',
        pattern: /^\/v1\/queue\/flush$/,
        handle: () => {
          link.retryNow();
          forwarder.wake();
          return { flushing: true, link: link.snapshot().state, queue: store.transactions.summary() };
        },
      },
    ],
    d.log,
  );
  try {
    await api.start();
  } catch (err) {
    store.close();
    throw err;
  }
  maintain();
  const maintenance = setInterval(maintain, 60_000);
  maintenance.unref();
  const stopLink = new AbortController();
  const linkDone = link.run(stopLink.signal);
  d.log.info(
    {
      terminalId: identity.terminalId,
      cloudUrl,
      socket: d.paths.socketPath,
      certificateNotAfter: certificate.notAfter,
    },
    'agent started',
  );

  let stopping: Promise<void> | undefined;
  return {
    status,
    stop() {
      stopping ??= (async () => {
        d.log.info('agent stopping');
        clearInterval(maintenance);
        await api.stop();
        stopLink.abort();
        // The close handshake normally takes a round trip; never let a dead cloud hold the exit.
        await Promise.race([linkDone, new Promise((r) => setTimeout(r, 2000).unref())]);
        store.close();
        d.log.info('agent stopped');
      })();
      return stopping;
    },
  };
}
