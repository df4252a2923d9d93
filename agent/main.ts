import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { cloudDownload } from '../cloud-access/cloud-client.js';
import { proxySettings } from '../cloud-access/proxy.js';
import { ensureDir } from '../identity/atomic-file.js';
import {
  type Identity,
  readClientTls,
  readIdentity,
  recoverRenewal,
  summariseCertificate,
  updateIdentityProfile,
} from '../identity/identity-store.js';
import { refuseExposedKey } from '../identity/key-permissions.js';
import type { DiagnosticsReport, TerminalProfile } from '../protocol/messages.js';
import { Refusal } from '../protocol/refusal.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { ActionRunner } from './actions/action-runner.js';
import { progressOf } from './actions/action-store.js';
import { BusyLeases } from './actions/busy-leases.js';
import { SoftwareUpdater } from './actions/software-update.js';
import type { AgentDeps, RunningAgent, SharedParts } from './agent-deps.js';
import { AgentStore } from './agent-store.js';
import { guarded, inBackground } from './background-task.js';
import { CertificateRenewer } from './certificate/cert-renewal.js';
import { configDocument } from './config/config-document.js';
import { ConfigManager } from './config/config-manager.js';
import { acquireDaemonLock } from './daemon-lock.js';
import { EventBus } from './events/event-bus.js';
import { serveEvents } from './events/event-stream.js';
import { RecentErrors } from './events/recent-errors.js';
import { CloudLink, type OnlineLink } from './link/cloud-link.js';
import { OutboxSender } from './link/outbox-sender.js';
import { connectionLimits, readOpenFileLimit } from './local-api/connection-limits.js';
import { LocalApi, Reply } from './local-api/local-api.js';
import { NO_NOTIFIER } from './service-notifier.js';
import { backoffPolicy } from './settings.js';
import { HealthCollector } from './status/health.js';
import { HeartbeatSender } from './status/heartbeat.js';
import { buildStatusDocument, CLOCK_TOLERANCE_MS, type StatusDocument } from './status/status-document.js';
import { maintainQueue } from './transactions/queue-maintenance.js';
import { TransactionForwarder } from './transactions/transaction-forwarder.js';
import { listTransactions } from './transactions/transaction-list.js';
import { TransactionQueue } from './transactions/transaction-queue.js';
import { toRecord } from './transactions/transaction-record.js';
import { startUnenrolled } from './unenrolled.js';

/** Runs a command line from the device settings (the reboot command, the installer) through /bin/sh. */
function runShellCommand(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-500);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(`"${command}" exited with ${code ?? signal}${stderr ? `: ${stderr.trim()}` : ''}`),
          ),
    );
  });
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
 * A terminal that is not enrolled yet waits for it (enrolling itself when auto-enroll is set),
 * serving its status meanwhile, then starts as enrolled in the same process.
 */
export async function startAgent(d: AgentDeps): Promise<RunningAgent> {
  await ensureDir(d.paths.stateDir, 0o700);
  // Before anything else touches the state: a second daemon on it stops here, with a clear error.
  const lock = acquireDaemonLock(d.paths.stateDir);
  try {
    const agent = await startOwned(d);
    return {
      status: () => agent.status(),
      async stop() {
        await agent.stop();
        lock.release();
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}

export type { AgentDeps, RunningAgent, SharedParts } from './agent-deps.js';

async function startOwned(d: AgentDeps): Promise<RunningAgent> {
  const recovered = await recoverRenewal(d.paths.stateDir);
  if (recovered !== 'none')
    d.log.warn({ recovered }, 'an interrupted certificate renewal was finished or undone');
  const identity = await readIdentity(d.paths.stateDir);
  // One event bus for the whole process: an app that followed enrollment on the unenrolled daemon
  // keeps its stream position (Last-Event-ID) once the terminal runs enrolled.
  const events = new EventBus({ now: d.now ?? Date.now });
  const shared: SharedParts = {
    events,
    limits: connectionLimits(readOpenFileLimit()),
    errors: new RecentErrors(events, d.now ?? Date.now),
  };
  return identity
    ? startEnrolled(d, shared, identity)
    : startUnenrolled(
        d,
        shared,
        (id) => startEnrolled(d, shared, id),
        d.onFatal ?? ((err) => d.log.fatal({ err: err.message }, 'agent failed')),
      );
}

async function startEnrolled(d: AgentDeps, shared: SharedParts, identity: Identity): Promise<RunningAgent> {
  const now = d.now ?? Date.now;
  const crashPoint = d.crashPoint ?? (() => {});
  const notifier = d.notifier ?? NO_NOTIFIER;
  await refuseExposedKey(identity.paths.keyFile);
  let tls = await readClientTls(identity);
  const proxy = proxySettings(d.settings, d.env ?? {});
  await ensureDir(d.paths.runtimeDir, 0o750);
  const store = new AgentStore(d.paths.dbFile, { maxBytes: d.settings.maxStoreMb * 1024 * 1024 });
  let dataPublicKey = await readFile(identity.paths.dataKeyFile, 'utf8').catch(() => null);
  const bootId = readBootId(d.settings.bootIdFile);
  const health = new HealthCollector(d.paths.stateDir);
  const cloudUrl = d.settings.cloudUrl || identity.cloudUrl;

  const { events, limits } = shared;
  const outbox = new OutboxSender(store, d.log);
  const forwarder = new TransactionForwarder({ store: store.transactions, events, now, log: d.log });
  const queue = new TransactionQueue({
    store: store.transactions,
    events,
    now,
    online: () => link.snapshot().state === 'online',
    offlineMode: () => config.current().config.offlineMode,
    locked: () => store.lock().locked,
    deactivated: () => deactivated,
    dataPublicKey: () => dataPublicKey,
    onStored: () => forwarder.wake(),
  });
  const queueDepth = () => store.transactions.summary().stored;
  const maintain = () => {
    const r = maintainQueue(
      store.transactions,
      now(),
      config.current().config.offlineMode.maxAgeHours,
      d.settings.retentionDays,
      // Each expired transaction is a `transaction` event with its record, like every other change.
      (row) => events.publish('transaction', toRecord(row)),
    );
    if (r.expired > 0) {
      d.log.warn(
        { expired: r.expired },
        'transactions expired before reaching the cloud; they will be reported',
      );
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
      renewer.reschedule(); // agent.renewalCheckHours; agent.pingIntervalSec is read by the link live
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
      tls: () => tls,
      proxy,
      policy: backoffPolicy(d.settings),
      connectTimeoutMs: d.settings.connectTimeoutMs,
      callTimeoutMs: d.settings.callTimeoutMs,
      defaultPingIntervalSec: d.settings.pingIntervalSec,
      // A pushed agent.pingIntervalSec wins over the Hello answer's, on the link that is up too.
      pushedPingIntervalSec: () =>
        config.current().version === null ? null : config.current().config.agent.pingIntervalSec,
      handlers: {
        ApplyConfig: (p) => config.handleApply(p),
        TransactionResult: (p) => forwarder.applyResults(p),
        RunAction: (p) => actions.receive(p),
        RequestDiagnostics: () => runDiagnostics(),
        TerminalUpdated: async (p) => {
          await recordProfile(p);
          return {};
        },
        Deactivate: (p) => {
          // Recorded before the answer; the link stops once the answer is out.
          deactivate(p.reason, p.at, true);
          return {};
        },
      },
      onDeactivated: (reason) => deactivate(reason, new Date(now()).toISOString(), false),
      hello: () => ({
        terminalId: identity.terminalId,
        softwareVersion: d.softwareVersion,
        protocolVersion: PROTOCOL_VERSION,
        configVersion: config.current().version,
        bootId,
        queueDepth: queueDepth(),
        openActions: store.actions
          .open()
          .map((a) => a.id)
          .slice(0, 100),
        clock: new Date(now()).toISOString(),
        ...(identity.model ? { model: identity.model } : {}),
        ...(identity.serialNumber ? { serialNumber: identity.serialNumber } : {}),
      }),
      onOnline: (online) => {
        heartbeatFromHello = online.ack.heartbeatIntervalSec;
        onlineLink = online;
        online.signal.addEventListener('abort', () => {
          if (onlineLink === online) onlineLink = null;
        });
        store.recordTrustedTime(online.ack.serverTime);
        trustedTime = online.ack.serverTime;
        if (online.ack.terminal) void recordProfile(online.ack.terminal);
        renewer.onOnline();
        actions.onOnline();
        inBackground('heartbeat', heartbeat.runWhileOnline(online, heartbeatIntervalSec), d.log);
        inBackground('outbox', outbox.runWhileOnline(online), d.log);
        inBackground('forwarding', forwarder.runWhileOnline(online), d.log);
      },
      onStateChange: (s) => {
        notifier.status(`link ${s.state}${s.reason ? `: ${s.reason}` : ''}`);
        store.recordLinkState(s.state, s.since, s.reason);
        events.publish('link', s);
      },
      now,
      random: d.random ?? Math.random,
      log: d.log,
    },
    { lastHeartbeatAt: store.linkStatus().lastHeartbeatAt },
  );

  /**
   * The cloud deactivated this terminal (a `Deactivate` call, or `403 terminal_deactivated` at the
   * link): recorded in the store, the link stops for good and every new sale is refused (410), so
   * that nothing is taken that could never be delivered. Survives restarts; a new enrollment (a
   * new terminal id) ends it.
   */
  let deactivated = ((x) => (x?.terminalId === identity.terminalId ? x : null))(store.deactivation());
  const deactivate = (reason: string, at: string, afterAnswer: boolean) => {
    if (deactivated) return;
    deactivated = { terminalId: identity.terminalId, at, reason };
    store.recordDeactivation(deactivated);
    d.log.warn(
      { reason, at },
      'the cloud deactivated this terminal: no link and no sales until it is enrolled again',
    );
    const why = `the cloud deactivated this terminal (${reason}); enroll it again`;
    if (afterAnswer) setImmediate(() => link.halt(why));
    else link.halt(why);
  };
  if (deactivated) link.halt(`the cloud deactivated this terminal (${deactivated.reason}); enroll it again`);

  /** The cloud renamed or moved this terminal: identity.json, status, diagnostics and the bundle follow. */
  const recordProfile = async (profile: TerminalProfile): Promise<void> => {
    const before = { name: identity.name, locationId: identity.locationId };
    try {
      if (!(await updateIdentityProfile(identity, profile))) return;
      if (before.name !== identity.name || before.locationId !== identity.locationId)
        d.log.info(
          { name: identity.name, locationId: identity.locationId, was: before },
          "the cloud changed this terminal's name or store",
        );
      events.publish('profile', {
        name: identity.name,
        locationId: identity.locationId,
        locationName: identity.locationName ?? null,
      });
    } catch (err) {
      d.log.warn({ err: (err as Error).message }, 'could not record the terminal profile; kept the old one');
    }
  };

  let onlineLink: OnlineLink | null = null;
  let trustedTime = store.linkStatus().trustedTime;
  if (trustedTime && Date.parse(trustedTime) - now() > CLOCK_TOLERANCE_MS)
    d.log.warn(
      { deviceTime: new Date(now()).toISOString(), lastTrustedAt: trustedTime },
      'the device clock is behind the last time the cloud confirmed; TLS will fail until it is set',
    );
  const renewalCheckPinned = (d.settingSources?.certCheckIntervalSec ?? 'default') !== 'default';
  const renewalCheckIntervalMs = () =>
    renewalCheckPinned || config.current().version === null
      ? d.settings.certCheckIntervalSec * 1000
      : config.current().config.agent.renewalCheckHours * 3_600_000;
  const renewer = new CertificateRenewer({
    identity,
    certificate: summariseCertificate(tls.cert, now()),
    stateDir: d.paths.stateDir,
    now,
    random: d.random ?? Math.random,
    // Read at every check: the device setting when set on the device, else the pushed
    // agent.renewalCheckHours once a config is applied, else the device default.
    get checkIntervalMs() {
      return renewalCheckIntervalMs();
    },
    renewBeforeDays: d.settings.renewBeforeDays,
    retry: backoffPolicy(d.settings),
    online: () => onlineLink !== null,
    request: (csr) => {
      if (!onlineLink) throw new Error('the cloud link is not online');
      return onlineLink.session.call('RenewCertificate', { csr });
    },
    onInstalled: async () => {
      tls = await readClientTls(identity);
      dataPublicKey = await readFile(identity.paths.dataKeyFile, 'utf8').catch(() => dataPublicKey);
      link.reconnect('reconnecting with the renewed certificate');
    },
    crashPoint,
    log: d.log,
  });

  const leases = new BusyLeases({ store: store.actions, now });
  const updater = new SoftwareUpdater({
    installDir: d.settings.installDir,
    stateDir: d.paths.stateDir,
    releaseKeyFile: d.settings.releaseKeyFile,
    running: d.softwareVersion,
    healthWindowMs: d.settings.updateHealthWindowSec * 1000,
    runInstaller: (step) => runShellCommand(d.settings.installCommand.replaceAll('{step}', step)),
    storeReserveBytes: async () => {
      const used = await stat(d.paths.dbFile).then(
        (s) => s.size,
        () => 0,
      );
      return Math.max(0, d.settings.maxStoreMb * 1024 * 1024 - used);
    },
    download: async (version, file, onProgress, maxBytes) => {
      await cloudDownload({
        maxBytes,
        cloudUrl,
        caPem: tls.ca,
        cert: tls.cert,
        key: tls.key,
        proxy,
        path: `/v1/agent/releases/${encodeURIComponent(version)}/artifact`,
        file,
        onProgress,
      });
    },
    report: (id, change) => actions.report(id, change),
    note: (id, change) => actions.note(id, change),
    whenFree: (id, signal) => actions.whenFree(id, signal),
    restart: (reason) => d.restart?.(reason),
    supervised: d.restart !== undefined,
    now,
    crashPoint,
    log: d.log,
  });
  const actions: ActionRunner = new ActionRunner({
    store: store.actions,
    leases,
    updater,
    events,
    bootId,
    reboot: () => runShellCommand(d.settings.rebootCommand),
    rebootTimeoutMs: d.settings.rebootTimeoutSec * 1000,
    onReported: () => outbox.wake(),
    now,
    log: d.log,
  });

  const certificateDocument = () => ({
    ...renewer.certificate(),
    daysLeft: Math.floor((Date.parse(renewer.certificate().notAfter) - now()) / 86_400_000),
    renewal: renewer.status(),
  });

  const status = (): StatusDocument =>
    buildStatusDocument({
      identity,
      daemon: 'running',
      link: link.snapshot(),
      certificateNotAfter: renewer.certificate().notAfter,
      renewal: renewer.status(),
      trustedTime,
      configVersion: config.current().version,
      queue: store.transactions.summary(),
      locked: store.lock().locked,
      deactivated,
      softwareVersion: d.softwareVersion,
      nowMs: now(),
    });

  const runDiagnostics = async (): Promise<DiagnosticsReport> => {
    if (!d.diagnose)
      throw new Refusal('diagnostics_unavailable', 'diagnostics are not wired in this process');
    return d.diagnose(status());
  };

  const api = new LocalApi(
    d.paths.socketPath,
    [
      { method: 'GET', pattern: /^\/v1\/status$/, handle: () => status() },
      {
        method: 'GET',
        pattern: /^\/v1\/config$/,
        handle: () => configDocument(config.current(), config.lastRejection()),
      },
      {
        method: 'GET',
        pattern: /^\/v1\/events$/,
        stream: serveEvents(events, { maxStreams: limits.streams, log: d.log }),
      },
      { method: 'GET', pattern: /^\/v1\/diagnostics$/, handle: () => runDiagnostics() },
      { method: 'GET', pattern: /^\/v1\/errors$/, handle: () => ({ errors: shared.errors.list() }) },
      { method: 'GET', pattern: /^\/v1\/certificate$/, handle: certificateDocument },
      {
        method: 'POST',
        pattern: /^\/v1\/certificate\/renew$/,
        handle: async () => {
          const before = certificateDocument();
          try {
            await renewer.renewNow();
          } catch (err) {
            throw new Refusal('renewal_failed', `certificate renewal failed: ${(err as Error).message}`);
          }
          return { before, after: certificateDocument() };
        },
      },
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
        pattern: /^\/v1\/busy$/,
        handle: async (_req, _p, body) => new Reply(201, leases.acquire(await body())),
      },
      { method: 'GET', pattern: /^\/v1\/busy$/, handle: () => ({ leases: leases.held() }) },
      { method: 'DELETE', pattern: /^\/v1\/busy\/([^/]+)$/, handle: (_req, p) => leases.release(p[0]!) },
      {
        method: 'GET',
        pattern: /^\/v1\/actions$/,
        handle: () => ({
          open: store.actions.open().map((a) => ({ id: a.id, type: a.type, ...progressOf(a) })),
        }),
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
    limits,
  );
  try {
    await api.start();
  } catch (err) {
    store.close();
    throw err;
  }
  maintain();
  await actions.start();
  const maintenance = setInterval(guarded('queue maintenance', maintain, d.log), 60_000);
  maintenance.unref();
  const stopLink = new AbortController();
  const linkDone = link.run(stopLink.signal);
  renewer.start();
  // Store open, local API listening, first link attempt under way: ready for systemd.
  notifier.ready(`link ${link.snapshot().state}`);
  d.log.info(
    {
      terminalId: identity.terminalId,
      cloudUrl,
      socket: d.paths.socketPath,
      certificateNotAfter: renewer.certificate().notAfter,
    },
    'agent started',
  );

  let stopping: Promise<void> | undefined;
  return {
    status,
    stop() {
      stopping ??= (async () => {
        d.log.info('agent stopping');
        notifier.stopping();
        clearInterval(maintenance);
        renewer.stop();
        actions.stop();
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
