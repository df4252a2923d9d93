import { updateIdentityProfile } from '../../identity/identity-store.js';
import type { DiagnosticsReport, TerminalProfile } from '../../protocol/messages.js';
import { Refusal } from '../../protocol/refusal.js';
import { inBackground } from '../background-task.js';
import type { CertificateFeature } from '../certificate/certificate-feature.js';
import type { ConfigFeature } from '../config/config-feature.js';
import type { RecentErrors } from '../events/recent-errors.js';
import type { Feature, FeatureContext } from '../feature.js';
import type { OnlineLink } from '../link/cloud-link.js';
import type { LinkFeature } from '../link/link-feature.js';
import type { LocalRoute } from '../local-api/local-api.js';
import { HealthCollector } from './health.js';
import { HeartbeatSender } from './heartbeat.js';
import { buildStatusDocument, type StatusDocument } from './status-document.js';

/**
 * What the terminal says about itself: the status document (`GET /v1/status`, `posagent status`),
 * heartbeats while the link is up, the diagnostics (`GET /v1/diagnostics`, `RequestDiagnostics`),
 * recent errors, and the name and store the cloud gives it (`TerminalUpdated`, the Hello answer).
 */
export class StatusFeature implements Feature {
  readonly name = 'status';
  readonly handlers;
  readonly routes: LocalRoute[];
  private readonly heartbeat: HeartbeatSender;
  /** The interval the last Hello answer gave; a pushed config's wins once there is one. */
  private heartbeatFromHello = 30;

  constructor(
    private readonly ctx: FeatureContext,
    private readonly o: {
      link: LinkFeature;
      config: ConfigFeature;
      certificate: CertificateFeature;
      errors: RecentErrors;
    },
  ) {
    const { store, now } = ctx;
    this.heartbeat = new HeartbeatSender({
      health: new HealthCollector(ctx.deps.paths.stateDir),
      now,
      queue: () => store.transactions.summary(),
      onSent: (at) => {
        store.recordHeartbeat(at);
        o.link.link.noteHeartbeat(at);
      },
      log: ctx.log,
    });
    // agent.heartbeatIntervalSec: a new config moves the next heartbeat now.
    ctx.events.subscribe((e) => {
      if (e.event === 'config' && e.data.status === 'applied') this.heartbeat.reschedule();
    });
    this.handlers = {
      RequestDiagnostics: () => this.diagnostics(),
      // The cloud's live connection check: answered at once, from the event loop.
      Ping: () => ({ at: new Date(now()).toISOString() }),
      TerminalUpdated: async (p: TerminalProfile) => {
        await this.recordProfile(p);
        return {};
      },
    };
    this.routes = [
      { method: 'GET', pattern: /^\/v1\/status$/, handle: () => this.status() },
      { method: 'GET', pattern: /^\/v1\/diagnostics$/, handle: () => this.diagnostics() },
      { method: 'GET', pattern: /^\/v1\/errors$/, handle: () => ({ errors: o.errors.list() }) },
    ];
  }

  onOnline(online: OnlineLink): void {
    this.heartbeatFromHello = online.ack.heartbeatIntervalSec;
    if (online.ack.terminal) void this.recordProfile(online.ack.terminal);
    const intervalSec = () =>
      this.o.config.pushed((c) => c.agent.heartbeatIntervalSec) ?? this.heartbeatFromHello;
    inBackground('heartbeat', this.heartbeat.runWhileOnline(online, intervalSec), this.ctx.log);
  }

  status(): StatusDocument {
    const { identity, store, deps, now } = this.ctx;
    const renewer = this.o.certificate.renewer;
    return buildStatusDocument({
      // The address the link uses now (one of several when cloudUrls lists gateways).
      identity: { ...identity, cloudUrl: this.ctx.cloud.current() },
      daemon: 'running',
      link: this.o.link.link.snapshot(),
      certificateNotAfter: renewer.certificate().notAfter,
      renewal: renewer.status(),
      trustedTime: this.o.link.trustedTime(),
      configVersion: this.o.config.manager.current().version,
      queue: store.transactions.summary(),
      locked: store.lock().locked,
      deactivated: this.o.link.deactivated(),
      softwareVersion: deps.softwareVersion,
      nowMs: now(),
    });
  }

  private async diagnostics(): Promise<DiagnosticsReport> {
    const diagnose = this.ctx.deps.diagnose;
    if (!diagnose) throw new Refusal('diagnostics_unavailable', 'diagnostics are not wired in this process');
    return diagnose(this.status());
  }

  /** The cloud renamed or moved this terminal: identity.json, status, diagnostics and the bundle follow. */
  private async recordProfile(profile: TerminalProfile): Promise<void> {
    const { identity, log, events } = this.ctx;
    const before = { name: identity.name, locationId: identity.locationId };
    try {
      if (!(await updateIdentityProfile(identity, profile))) return;
      if (before.name !== identity.name || before.locationId !== identity.locationId)
        log.info(
          { name: identity.name, locationId: identity.locationId, was: before },
          "the cloud changed this terminal's name or store",
        );
      events.publish('profile', {
        name: identity.name,
        locationId: identity.locationId,
        locationName: identity.locationName ?? null,
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not record the terminal profile; kept the old one');
    }
  }
}
