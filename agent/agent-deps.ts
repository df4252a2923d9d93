import type { DiagnosticsReport } from '../protocol/messages.js';
import type { CrashPoint } from './crash-points.js';
import type { EventBus } from './events/event-bus.js';
import type { RecentErrors } from './events/recent-errors.js';
import type { ConnectionLimits } from './local-api/connection-limits.js';
import type { Logger } from './logger.js';
import type { ServiceNotifier } from './service-notifier.js';
import type { AgentPaths, DeviceSettings, SettingSource } from './settings.js';
import type { StatusDocument } from './status/status-document.js';

/** What the composition root of the daemon is given by its process (cli/run-command.ts). */
export interface AgentDeps {
  paths: AgentPaths;
  settings: DeviceSettings;
  softwareVersion: string;
  log: Logger;
  /** The device asked for a log level (flag or environment): the fleet config does not change it. */
  logLevelPinned?: boolean;
  /** Where each device setting came from: one set on the device (not a default) wins over the fleet's. */
  settingSources?: Partial<Record<keyof DeviceSettings, SettingSource>>;
  now?: () => number;
  random?: () => number;
  /** The process environment, for HTTPS_PROXY / NO_PROXY (the composition root passes it in). */
  env?: Record<string, string | undefined>;
  crashPoint?: CrashPoint;
  /** A failure after start (e.g. starting once enrolled): the process should exit. */
  onFatal?(err: Error): void;
  /**
   * End the process so that its supervisor (systemd) starts it again from the `current` link: a
   * software update switched versions, or rolled back. Without it, updates are refused.
   */
  restart?(reason: string): void;
  /** Tells systemd READY / STATUS / STOPPING (and pings its watchdog); nothing outside systemd. */
  notifier?: ServiceNotifier;
  /** Runs the diagnostics checks given the daemon's own status (wired by the caller: diagnostics/ sits above agent/). */
  diagnose?(status: StatusDocument): Promise<DiagnosticsReport>;
}

export interface RunningAgent {
  status(): StatusDocument;
  /** Stops accepting, closes the link with a close frame, closes the store. */
  stop(): Promise<void>;
}

/** What the unenrolled and the enrolled daemon of one process share. */
export interface SharedParts {
  events: EventBus;
  limits: ConnectionLimits;
  /** Recent link, config, enrollment and action problems (`GET /v1/errors`, the menu). */
  errors: RecentErrors;
}
