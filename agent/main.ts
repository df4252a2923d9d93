import { proxySettings } from '../cloud-access/proxy.js';
import { ensureDir } from '../files/atomic-file.js';
import { type Identity, readIdentity, recoverRenewal } from '../identity/identity-store.js';
import { refuseExposedKey } from '../identity/key-permissions.js';
import { type GuardResult, readJson, paths as releasePaths } from '../release/layout.js';
import { ActionsFeature } from './actions/actions-feature.js';
import type { AgentDeps, RunningAgent, SharedParts } from './agent-deps.js';
import { AgentStore } from './agent-store.js';
import { readBootId } from './boot-id.js';
import { CertificateFeature } from './certificate/certificate-feature.js';
import { Credentials } from './certificate/credentials.js';
import { ConfigFeature } from './config/config-feature.js';
import { acquireDaemonLock } from './daemon-lock.js';
import { EventBus } from './events/event-bus.js';
import { EventsFeature } from './events/events-feature.js';
import { RecentErrors } from './events/recent-errors.js';
import { type Feature, type FeatureContext, startFeatures, stopFeatures } from './feature.js';
import { CloudAddresses, cloudUrlsOf } from './link/cloud-addresses.js';
import { LinkFeature } from './link/link-feature.js';
import { OutboxSender } from './link/outbox-sender.js';
import { connectionLimits, readOpenFileLimit } from './local-api/connection-limits.js';
import { LocalApiFeature } from './local-api/local-api-feature.js';
import { NO_NOTIFIER } from './service-notifier.js';
import { StatusFeature } from './status/status-feature.js';
import { restoreStoreIfAsked, StoreSchemaRecord } from './store-schema.js';
import { TransactionsFeature } from './transactions/transactions-feature.js';
import { startUnenrolled } from './unenrolled.js';

/**
 * The daemon's composition root, wiring only: it builds the store and the features (agent/feature.ts)
 * in dependency order, hands their RPC handlers to the link and their routes to the local API,
 * starts them in a loop and stops them in reverse. Nothing else reaches for globals or the environment.
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
  const notifier = d.notifier ?? NO_NOTIFIER;
  await refuseExposedKey(identity.paths.keyFile);
  const credentials = await Credentials.load(identity);
  await ensureDir(d.paths.runtimeDir, 0o750);
  // Rolled back across a store migration: the guard may ask for the store's snapshot first.
  const layout = { installDir: d.settings.installDir, stateDir: d.paths.stateDir };
  const guard = await readJson<GuardResult>(releasePaths(layout).guardResult).catch(() => null);
  const restored = await restoreStoreIfAsked(d.paths.dbFile, guard, d.now ?? Date.now);
  if (restored)
    d.log.warn(restored, 'rolled back across a store migration: the store is its snapshot from before it');
  const store = new AgentStore(d.paths.dbFile, { maxBytes: d.settings.maxStoreMb * 1024 * 1024 });
  if (store.schema.openedNewer)
    d.log.warn(
      { schema: store.schema.version, known: store.schema.known },
      'the store is of a newer release; used as it is (its migrations keep it readable by this one)',
    );
  const storeSchema = await StoreSchemaRecord.write(d.paths.stateDir, store.schema, store.snapshot);
  const ctx: FeatureContext = {
    deps: d,
    identity,
    store,
    storeSchema,
    events: shared.events,
    credentials,
    cloud: new CloudAddresses(cloudUrlsOf(d.settings, identity.cloudUrl), identity.terminalId),
    proxy: proxySettings(d.settings, d.env ?? {}),
    bootId: readBootId(d.settings.bootIdFile),
    now: d.now ?? Date.now,
    random: d.random ?? Math.random,
    crashPoint: d.crashPoint ?? (() => {}),
    log: d.log,
  };

  // Built in dependency order: each feature is handed the ones it uses, never a later one.
  const outbox = new OutboxSender(store, d.log);
  const config = new ConfigFeature(ctx, outbox);
  const link = new LinkFeature(ctx, { config, outbox, notifier });
  const certificate = new CertificateFeature(ctx, { link, config });
  const transactions = new TransactionsFeature(ctx, { link, config });
  const actions = new ActionsFeature(ctx, { outbox, config });
  const status = new StatusFeature(ctx, { link, config, certificate, errors: shared.errors });
  const events = new EventsFeature(shared.events, shared.limits, d.log);
  const owners: Feature[] = [config, link, certificate, transactions, actions, status, events];
  const api = new LocalApiFeature(d.paths.socketPath, owners, shared.limits, d.log);
  for (const f of owners) {
    if (f.handlers) link.handle(f.handlers);
    if (f.onOnline && f !== link) link.whenOnline((online) => f.onOnline?.(online));
  }

  // Started in this order (the socket first: a second daemon stops there), stopped in reverse.
  const running: Feature[] = [api, transactions, actions, link, certificate];
  try {
    await startFeatures(running, d.log);
  } catch (err) {
    store.close();
    throw err;
  }
  // Store open, local API listening, first link attempt under way: ready for systemd.
  notifier.ready(`link ${link.link.snapshot().state}`);
  d.log.info(
    {
      terminalId: identity.terminalId,
      cloudUrls: ctx.cloud.all(),
      socket: d.paths.socketPath,
      certificateNotAfter: certificate.renewer.certificate().notAfter,
    },
    'agent started',
  );

  let stopping: Promise<void> | undefined;
  return {
    status: () => status.status(),
    stop() {
      stopping ??= (async () => {
        d.log.info('agent stopping');
        notifier.stopping();
        await stopFeatures(running, d.log);
        store.close();
        d.log.info('agent stopped');
      })();
      return stopping;
    },
  };
}
