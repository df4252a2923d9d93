import type { Handlers } from '../../protocol/rpc-session.js';
import { PROTOCOL_VERSION } from '../../protocol/version.js';
import type { Deactivation } from '../agent-store.js';
import { inBackground } from '../background-task.js';
import type { ConfigFeature } from '../config/config-feature.js';
import type { Feature, FeatureContext } from '../feature.js';
import type { ServiceNotifier } from '../service-notifier.js';
import { backoffPolicy } from '../settings.js';
import { CLOCK_TOLERANCE_MS } from '../status/status-document.js';
import { CloudLink, type OnlineLink } from './cloud-link.js';
import type { OutboxSender } from './outbox-sender.js';

/**
 * The link to the cloud: one WebSocket at a time (agent/link/cloud-link.ts), the calls the other
 * features answer over it (`handle`), what they run while it is up (`whenOnline`), the durable
 * outbox it drains, the last time the cloud confirmed, and deactivation: a `Deactivate` call or a
 * `403 terminal_deactivated` is recorded in the store, the link stops for good and every new sale
 * is refused (410) until the terminal is enrolled again (a new terminal id ends it).
 */
export class LinkFeature implements Feature {
  readonly name = 'link';
  readonly link: CloudLink;
  readonly handlers: Handlers;
  private readonly calls: Handlers = {};
  private readonly onlineListeners: ((link: OnlineLink) => void)[] = [];
  private current: OnlineLink | null = null;
  private trusted: string | null;
  private deactivation: Deactivation | null;
  private readonly stopLink = new AbortController();
  private done: Promise<void> | undefined;

  constructor(
    private readonly ctx: FeatureContext,
    o: { config: ConfigFeature; outbox: OutboxSender; notifier: ServiceNotifier },
  ) {
    const { deps, identity, store, now } = ctx;
    const settings = deps.settings;
    const stored = store.deactivation();
    this.deactivation = stored?.terminalId === identity.terminalId ? stored : null;
    this.trusted = store.linkStatus().trustedTime;
    if (this.trusted && Date.parse(this.trusted) - now() > CLOCK_TOLERANCE_MS)
      ctx.log.warn(
        { deviceTime: new Date(now()).toISOString(), lastTrustedAt: this.trusted },
        'the device clock is behind the last time the cloud confirmed; TLS will fail until it is set',
      );
    this.handlers = {
      Deactivate: (p) => {
        // Recorded before the answer; the link stops once the answer is out.
        this.deactivate(p.reason, p.at, true);
        return {};
      },
    };
    this.link = new CloudLink(
      {
        cloud: ctx.cloud,
        tls: () => ctx.credentials.tls(),
        proxy: ctx.proxy,
        policy: backoffPolicy(settings),
        connectTimeoutMs: settings.connectTimeoutMs,
        callTimeoutMs: settings.callTimeoutMs,
        defaultPingIntervalSec: settings.pingIntervalSec,
        // A pushed agent.pingIntervalSec wins over the Hello answer's, on the link that is up too.
        pushedPingIntervalSec: () => o.config.pushed((c) => c.agent.pingIntervalSec),
        handlers: this.calls,
        onDeactivated: (reason) => this.deactivate(reason, new Date(now()).toISOString(), false),
        hello: () => ({
          terminalId: identity.terminalId,
          softwareVersion: deps.softwareVersion,
          protocolVersion: PROTOCOL_VERSION,
          configVersion: o.config.manager.current().version,
          bootId: ctx.bootId,
          queueDepth: store.transactions.summary().stored,
          openActions: store.actions
            .open()
            .map((a) => a.id)
            .slice(0, 100),
          clock: new Date(now()).toISOString(),
          ...(identity.model ? { model: identity.model } : {}),
          ...(identity.serialNumber ? { serialNumber: identity.serialNumber } : {}),
        }),
        onOnline: (online) => {
          this.current = online;
          online.signal.addEventListener('abort', () => {
            if (this.current === online) this.current = null;
          });
          store.recordTrustedTime(online.ack.serverTime);
          this.trusted = online.ack.serverTime;
          for (const listener of this.onlineListeners) listener(online);
          inBackground('outbox', o.outbox.runWhileOnline(online), ctx.log);
        },
        onStateChange: (s) => {
          o.notifier.status(`link ${s.state}${s.reason ? `: ${s.reason}` : ''}`);
          store.recordLinkState(s.state, s.since, s.reason);
          ctx.events.publish('link', s);
        },
        now,
        random: ctx.random,
        log: ctx.log,
      },
      { lastHeartbeatAt: store.linkStatus().lastHeartbeatAt },
    );
    if (this.deactivation) this.link.halt(this.haltReason(this.deactivation.reason));
  }

  /** Answers these cloud calls over every link from now on. */
  handle(handlers: Handlers): void {
    Object.assign(this.calls, handlers);
  }

  /** Runs this each time a link comes up. */
  whenOnline(listener: (link: OnlineLink) => void): void {
    this.onlineListeners.push(listener);
  }

  /** The link that is up now, or null. */
  online(): OnlineLink | null {
    return this.current;
  }

  /** The last time the cloud confirmed (its Hello answer), for the clock check in status. */
  trustedTime(): string | null {
    return this.trusted;
  }

  deactivated(): Deactivation | null {
    return this.deactivation;
  }

  start(): void {
    this.done = this.link.run(this.stopLink.signal);
  }

  async stop(): Promise<void> {
    this.stopLink.abort();
    // The close handshake normally takes a round trip; never let a dead cloud hold the exit.
    await Promise.race([this.done, new Promise((r) => setTimeout(r, 2000).unref())]);
  }

  private haltReason(reason: string): string {
    return `the cloud deactivated this terminal (${reason}); enroll it again`;
  }

  private deactivate(reason: string, at: string, afterAnswer: boolean): void {
    if (this.deactivation) return;
    this.deactivation = { terminalId: this.ctx.identity.terminalId, at, reason };
    this.ctx.store.recordDeactivation(this.deactivation);
    this.ctx.log.warn(
      { reason, at },
      'the cloud deactivated this terminal: no link and no sales until it is enrolled again',
    );
    const why = this.haltReason(reason);
    if (afterAnswer) setImmediate(() => this.link.halt(why));
    else this.link.halt(why);
  }
}
