import { summariseCertificate } from '../../identity/identity-store.js';
import { Refusal } from '../../protocol/refusal.js';
import type { Handlers } from '../../protocol/rpc-session.js';
import type { ConfigFeature } from '../config/config-feature.js';
import type { Feature, FeatureContext } from '../feature.js';
import type { LinkFeature } from '../link/link-feature.js';
import type { LocalRoute } from '../local-api/local-api.js';
import { backoffPolicy } from '../settings.js';
import { CertificateRenewer } from './cert-renewal.js';

/**
 * The client certificate: renewed over the link before it expires (agent/certificate/cert-renewal.ts),
 * on demand (`POST /v1/certificate/renew`), shown by `GET /v1/certificate`. A renewed pair is
 * reloaded into the credentials and the link reconnects with it.
 */
export class CertificateFeature implements Feature {
  readonly name = 'certificate';
  readonly renewer: CertificateRenewer;
  readonly routes: LocalRoute[];
  readonly handlers: Handlers;

  constructor(ctx: FeatureContext, o: { link: LinkFeature; config: ConfigFeature }) {
    const { deps, now } = ctx;
    const settings = deps.settings;
    const pinned = (deps.settingSources?.certCheckIntervalSec ?? 'default') !== 'default';
    const intervalMs = () => {
      const pushed = o.config.pushed((c) => c.agent.renewalCheckHours);
      return pinned || pushed === null ? settings.certCheckIntervalSec * 1000 : pushed * 3_600_000;
    };
    this.renewer = new CertificateRenewer({
      identity: ctx.identity,
      certificate: summariseCertificate(ctx.credentials.tls().cert, now()),
      stateDir: deps.paths.stateDir,
      now,
      random: ctx.random,
      // Read at every check: the device setting when set on the device, else the pushed
      // agent.renewalCheckHours once a config is applied, else the device default.
      get checkIntervalMs() {
        return intervalMs();
      },
      renewBeforeDays: settings.renewBeforeDays,
      retry: backoffPolicy(settings),
      online: () => o.link.online() !== null,
      request: (csr) => {
        const online = o.link.online();
        if (!online) throw new Error('the cloud link is not online');
        return online.session.call('RenewCertificate', { csr });
      },
      onInstalled: async () => {
        await ctx.credentials.reload();
        o.link.link.reconnect('reconnecting with the renewed certificate');
      },
      crashPoint: ctx.crashPoint,
      log: ctx.log,
    });
    // agent.renewalCheckHours is read at every check; a new config moves the next one now.
    ctx.events.subscribe((e) => {
      if (e.event === 'config' && e.data.status === 'applied') this.renewer.reschedule();
    });
    // The cloud's "Rotate certificate": answered once started; the renewal goes over the link as
    // any renewal does, and the link reconnects with the new certificate.
    this.handlers = {
      RotateCertificate: () => {
        ctx.log.info({}, 'the cloud asked for a new certificate now');
        this.renewer.renewNow().catch((err: Error) => {
          ctx.log.warn({ err: err.message }, 'certificate rotation asked by the cloud failed');
        });
        return { accepted: true as const };
      },
    };
    this.routes = [
      { method: 'GET', pattern: /^\/v1\/certificate$/, handle: () => this.document() },
      {
        method: 'POST',
        pattern: /^\/v1\/certificate\/renew$/,
        handle: async () => {
          const before = this.document();
          try {
            await this.renewer.renewNow();
          } catch (err) {
            throw new Refusal('renewal_failed', `certificate renewal failed: ${(err as Error).message}`);
          }
          return { before, after: this.document() };
        },
      },
    ];
    this.now = now;
  }

  private readonly now: () => number;

  /** `GET /v1/certificate`: the certificate in use, its days left and the renewal's state. */
  document() {
    const c = this.renewer.certificate();
    return {
      ...c,
      daysLeft: Math.floor((Date.parse(c.notAfter) - this.now()) / 86_400_000),
      renewal: this.renewer.status(),
    };
  }

  start(): void {
    this.renewer.start();
  }

  stop(): void {
    this.renewer.stop();
  }

  onOnline(): void {
    this.renewer.onOnline();
  }
}
