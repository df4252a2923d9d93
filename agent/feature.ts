import type { ProxySettings } from '../cloud-access/proxy.js';
import type { Identity } from '../identity/identity-store.js';
import type { Handlers } from '../protocol/rpc-session.js';
import type { AgentDeps } from './agent-deps.js';
import type { AgentStore } from './agent-store.js';
import type { Credentials } from './certificate/credentials.js';
import type { CrashPoint } from './crash-points.js';
import type { EventBus } from './events/event-bus.js';
import type { CloudAddresses } from './link/cloud-addresses.js';
import type { OnlineLink } from './link/cloud-link.js';
import type { LocalRoute } from './local-api/local-api.js';
import type { Logger } from './logger.js';
import type { StoreSchemaRecord } from './store-schema.js';

/**
 * One feature of the enrolled daemon (link, config, certificate, transactions, actions, status,
 * events, local API). The composition root (agent/main.ts) builds each from what it needs, hands
 * its RPC handlers to the link and its routes to the local API, starts them in order and stops
 * them in reverse; a feature reaches no other feature except through what it was given.
 */
export interface Feature {
  readonly name: string;
  start?(): void | Promise<void>;
  stop?(): void | Promise<void>;
  /** A link came up (its `signal` aborts when it ends): work that runs over it starts here. */
  onOnline?(link: OnlineLink): void;
  /** The local API routes this feature answers. */
  readonly routes?: readonly LocalRoute[];
  /** The cloud's calls this feature answers over the link. */
  readonly handlers?: Handlers;
}

/** What every feature of one enrolled daemon shares: the process's deps and the terminal's parts. */
export interface FeatureContext {
  deps: AgentDeps;
  identity: Identity;
  store: AgentStore;
  /** The store's schema as the boot guard reads it (a rollback across a migration). */
  storeSchema: StoreSchemaRecord;
  events: EventBus;
  credentials: Credentials;
  /** Where the cloud is: the address in use now, and the others to fail over to. */
  cloud: CloudAddresses;
  proxy: ProxySettings;
  bootId: string;
  now(): number;
  random(): number;
  crashPoint: CrashPoint;
  log: Logger;
}

/** Stops features in reverse order; one that fails to stop is logged and the others still stop. */
export async function stopFeatures(features: readonly Feature[], log: Logger): Promise<void> {
  for (const f of [...features].reverse()) {
    try {
      await f.stop?.();
    } catch (err) {
      log.error({ err: (err as Error).message, feature: f.name }, 'a feature failed to stop');
    }
  }
}

/** Starts features in order; when one fails, those already started are stopped (in reverse) and it throws. */
export async function startFeatures(features: readonly Feature[], log: Logger): Promise<void> {
  const started: Feature[] = [];
  try {
    for (const f of features) {
      await f.start?.();
      started.push(f);
    }
  } catch (err) {
    await stopFeatures(started, log);
    throw err;
  }
}
