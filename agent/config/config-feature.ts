import type { Feature, FeatureContext } from '../feature.js';
import { configDocument } from './config-document.js';
import { ConfigManager } from './config-manager.js';

/**
 * The fleet config: `ApplyConfig` from the cloud (validated whole, stored with its ack, the ack
 * through the outbox), `GET /v1/config`, and the log level it sets unless the device pinned one.
 * Other features follow a newly applied config through the `config` event.
 */
export class ConfigFeature implements Feature {
  readonly name = 'config';
  readonly manager: ConfigManager;
  readonly handlers;
  readonly routes;

  constructor(ctx: FeatureContext, outbox: { wake(): void }) {
    const { deps } = ctx;
    this.manager = new ConfigManager({
      store: ctx.store,
      events: ctx.events,
      now: ctx.now,
      onApplied: (c) => {
        if (!deps.logLevelPinned) ctx.log.level = c.agent.logLevel;
      },
      onAck: () => outbox.wake(),
      log: ctx.log,
    });
    const initial = this.manager.current();
    if (initial.version !== null && !deps.logLevelPinned) ctx.log.level = initial.config.agent.logLevel;
    this.handlers = { ApplyConfig: this.manager.handleApply.bind(this.manager) };
    this.routes = [
      {
        method: 'GET' as const,
        pattern: /^\/v1\/config$/,
        handle: () => configDocument(this.manager.current(), this.manager.lastRejection()),
      },
    ];
  }

  /** A setting of the pushed config, or null while nothing was pushed (the caller's default applies). */
  pushed<T>(read: (c: ReturnType<ConfigManager['current']>['config']) => T): T | null {
    const c = this.manager.current();
    return c.version === null ? null : read(c.config);
  }
}
