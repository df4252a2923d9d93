import { configValidator, DEFAULT_CONFIG, type TerminalConfig } from '../../protocol/config-schema.js';
import type { ApplyConfig, ConfigApplied } from '../../protocol/messages.js';
import type { AgentStore } from '../agent-store.js';
import type { EventBus } from '../events/event-bus.js';

/**
 * Applies the config the cloud pushes: validate the whole of it, persist it together with its
 * ack, apply the live settings, tell the POS app. An invalid, partial or stale push is refused as
 * a whole and the last good config stays. The ack always goes through the durable outbox.
 */
export interface ConfigManagerOptions {
  store: AgentStore;
  events: EventBus;
  now(): number;
  /** Called with each newly applied config, to apply live settings (heartbeat interval, log level…). */
  onApplied(config: TerminalConfig): void;
  /** Told when the outbox has something new. */
  onAck(): void;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

export interface CurrentConfig {
  /** null: nothing pushed yet; the built-in defaults apply. */
  version: number | null;
  config: TerminalConfig;
  appliedAt: string | null;
}

export class ConfigManager {
  /**
   * The applied config, kept in memory: the daemon is the store's only writer, and the heartbeat
   * loop, status and every offline sale read it, so it is read from disk once, at start.
   */
  private applied: CurrentConfig;

  constructor(private readonly o: ConfigManagerOptions) {
    const a = o.store.appliedConfig();
    this.applied = a
      ? { version: a.version, config: a.config, appliedAt: a.appliedAt }
      : { version: null, config: DEFAULT_CONFIG, appliedAt: null };
  }

  current(): CurrentConfig {
    return this.applied;
  }

  lastRejection() {
    return this.o.store.lastRejection();
  }

  handleApply(push: ApplyConfig): { received: true } {
    const at = new Date(this.o.now()).toISOString();
    const appliedVersion = this.applied.version;
    const reject = (errors: ConfigApplied['errors']) => {
      const ack: ConfigApplied = { version: push.version, status: 'rejected', errors, appliedVersion };
      this.o.store.rejectConfig(push.version, errors, at, ack);
      this.o.log.warn(
        { version: push.version, errors, keeping: appliedVersion },
        'config rejected; keeping the last good one',
      );
      this.o.events.publish('config', { status: 'rejected', version: push.version, errors, appliedVersion });
      this.o.onAck();
      return { received: true as const };
    };

    if (appliedVersion !== null && push.version === appliedVersion) {
      // A repeat (e.g. the cloud re-sent after a reconnect): answer as the first time, apply nothing.
      const ack: ConfigApplied = { version: push.version, status: 'applied', errors: [], appliedVersion };
      this.o.store.enqueue('ConfigApplied', ack, at);
      this.o.onAck();
      return { received: true };
    }
    if (appliedVersion !== null && push.version < appliedVersion) {
      return reject([
        {
          path: '/version',
          message: `version ${push.version} is older than the applied version ${appliedVersion}`,
        },
      ]);
    }
    const check = configValidator.check(push.config);
    if (!check.ok) return reject(check.issues.map((i) => ({ path: i.path, message: i.message })));

    const ack: ConfigApplied = {
      version: push.version,
      status: 'applied',
      errors: [],
      appliedVersion: push.version,
    };
    this.o.store.applyConfig(push.version, check.value, at, ack);
    this.applied = { version: push.version, config: check.value, appliedAt: at };
    this.o.onApplied(check.value);
    this.o.log.info({ version: push.version }, 'config applied');
    this.o.events.publish('config', { status: 'applied', version: push.version, config: check.value });
    this.o.onAck();
    return { received: true };
  }
}
