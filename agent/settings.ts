import type { BackoffPolicy } from './link/backoff.js';
import { cloudUrlProblem, splitCloudUrls } from './link/cloud-addresses.js';

/**
 * Device settings: what belongs to this device rather than to the fleet. Resolved in one place,
 * purely: flags > POSAGENT_* environment > settings file > defaults. Fleet settings (heartbeat
 * interval, limits…) come from the cloud instead.
 */
export const AGENT_DEFAULTS = {
  logLevel: 'info',
  /** Overrides the cloud URL recorded at enrollment (a moved cloud, a test). */
  cloudUrl: '',
  /**
   * Several cloud addresses, comma-separated (gateways without one load-balanced name): tried in
   * turn, the next after a failed or lost link. Wins over cloudUrl when set.
   */
  cloudUrls: '',
  rebootCommand: 'systemctl reboot',
  bootIdFile: '/proc/sys/kernel/random/boot_id',
  /** Not enrolled at start: enroll by this device's serial (pre-registered in the cloud). */
  autoEnroll: false,
  /** The fleet CA an image ships with, trusted for auto-enrollment. */
  fleetCaFile: '/etc/posagent/fleet-ca.crt',
  /** Overrides the serial read from the hardware or named by the factory certificate (odd hardware, tests). */
  serialNumber: '',
  /** Overrides the model read from the hardware. */
  model: '',
  /**
   * The factory identity zero-touch enrollment proves: a key made at manufacture and its
   * certificate from the manufacturer's CA (see docs/protocol.md §1). Absent files = none.
   */
  factoryKeyFile: '/etc/posagent/factory/device.key',
  factoryCertFile: '/etc/posagent/factory/device.crt',
  /** HTTP CONNECT proxy for every call to the cloud; HTTPS_PROXY when unset. */
  httpsProxy: '',
  /** Hosts reached without the proxy; NO_PROXY when unset. */
  noProxy: '',
  /** How often the certificate's remaining lifetime is checked. */
  certCheckIntervalSec: 43_200,
  /** Renew when fewer days than this are left (or less than a third of the lifetime). */
  renewBeforeDays: 30,
  /** Backoff: delay = random(0, min(cap, base · 2ⁿ)). */
  reconnectBaseMs: 1000,
  reconnectCapMs: 300_000,
  /** After the cloud closed the link on purpose (restart), the first retry is spread over 0..this. */
  restartSpreadMs: 10_000,
  /** A link that stayed up this long resets the backoff. */
  stableAfterMs: 60_000,
  /** Until the cloud says otherwise in its Hello answer. */
  pingIntervalSec: 15,
  callTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  /**
   * Keep the TLS sessions with the cloud on disk too (`keys/tls-sessions.json`, 0600), not only
   * in memory: a restarted daemon and the CLI's own calls resume them (no full handshake).
   */
  tlsSessionsOnDisk: false,
  /** The store refuses new transactions past this size (507 storage_full); nothing stored is harmed. */
  maxStoreMb: 512,
  /** Finished transactions are kept this long, then pruned in small batches. */
  retentionDays: 7,
  /** Where releases are installed side by side (`releases/<version>/`) with the `current` link. */
  installDir: '/opt/posagent',
  /**
   * How the agent asks for the privileged installer's steps (`{step}` is `stage` or `activate`):
   * a oneshot unit polkit lets the posagent user start, and nothing else. The agent cannot write
   * the release tree itself.
   */
  installCommand: 'systemctl start posagent-update@{step}.service',
  /** The pinned Ed25519 public key every update artifact must be signed with (not the fleet CA). */
  releaseKeyFile: '/etc/posagent/release-key.pem',
  /** A new version must reach the cloud within this long after the switch, or it is rolled back. */
  updateHealthWindowSec: 300,
  /**
   * What `collect_logs` reads the daemon's log lines with (`{since}` and `{until}`: Unix seconds):
   * its journald unit's, as pino JSON lines. A device without journald names its own command.
   */
  logsCommand: 'journalctl -u posagent.service --no-pager -o cat --since @{since} --until @{until}',
  /** A reboot command that returned while the agent is still running this much later has failed. */
  rebootTimeoutSec: 300,
} as const;

export type DeviceSettings = {
  -readonly [K in keyof typeof AGENT_DEFAULTS]: (typeof AGENT_DEFAULTS)[K] extends string
    ? string
    : (typeof AGENT_DEFAULTS)[K] extends boolean
      ? boolean
      : number;
};
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

/** The retry policy every backoff of the daemon uses (link, renewal, auto-enrollment). */
export function backoffPolicy(s: DeviceSettings): BackoffPolicy {
  return {
    baseMs: s.reconnectBaseMs,
    capMs: s.reconnectCapMs,
    restartSpreadMs: s.restartSpreadMs,
    stableAfterMs: s.stableAfterMs,
  };
}

export const PATH_DEFAULTS = {
  stateDir: '/var/lib/posagent',
  runtimeDir: '/run/posagent',
  settingsFile: '/etc/posagent/agent.json',
} as const;

export interface AgentPaths {
  stateDir: string;
  runtimeDir: string;
  socketPath: string;
  dbFile: string;
}

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

type Env = Record<string, string | undefined>;

/** State and runtime dirs: flag, else POSAGENT_*, else systemd's *_DIRECTORY, else the FHS default. */
export function resolvePaths(
  flags: { stateDir?: string | undefined; runtimeDir?: string | undefined },
  env: Env,
): AgentPaths {
  const first = (...xs: (string | undefined)[]) => xs.find((x) => x !== undefined && x !== '');
  // systemd may pass several directories separated by ':'; ours is the first.
  const stateDir =
    first(flags.stateDir, env.POSAGENT_STATE_DIR, env.STATE_DIRECTORY?.split(':')[0]) ??
    PATH_DEFAULTS.stateDir;
  const runtimeDir =
    first(flags.runtimeDir, env.POSAGENT_RUNTIME_DIR, env.RUNTIME_DIRECTORY?.split(':')[0]) ??
    PATH_DEFAULTS.runtimeDir;
  return { stateDir, runtimeDir, socketPath: `${runtimeDir}/api.sock`, dbFile: `${stateDir}/agent.db` };
}

export function envName(key: string): string {
  return `POSAGENT_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

function coerce(key: keyof DeviceSettings, value: unknown, source: SettingSource): string | number | boolean {
  const kind = typeof AGENT_DEFAULTS[key];
  const where =
    source === 'env' ? envName(key) : source === 'file' ? `settings file key "${key}"` : `--${key}`;
  if (kind === 'string') {
    if (typeof value !== 'string') throw new SettingsError(`${where} must be a string`);
    return value;
  }
  if (kind === 'number') {
    const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
      throw new SettingsError(`${where} must be a non-negative number, got ${JSON.stringify(value)}`);
    return n;
  }
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new SettingsError(`${where} must be true or false, got ${JSON.stringify(value)}`);
}

/** Resolves every device setting and where it came from. Throws SettingsError with the offending key. */
export function resolveDeviceSettings(input: {
  flags: Partial<Record<keyof DeviceSettings, unknown>>;
  env: Env;
  file: Record<string, unknown> | null;
}): { settings: DeviceSettings; sources: Record<keyof DeviceSettings, SettingSource> } {
  const keys = Object.keys(AGENT_DEFAULTS) as (keyof DeviceSettings)[];
  if (input.file) {
    const unknown = Object.keys(input.file).filter((k) => !(keys as string[]).includes(k));
    if (unknown.length > 0) throw new SettingsError(`unknown key(s) in settings file: ${unknown.join(', ')}`);
  }
  const settings = {} as Record<string, unknown>;
  const sources = {} as Record<keyof DeviceSettings, SettingSource>;
  for (const key of keys) {
    const candidates: [SettingSource, unknown][] = [
      ['flag', input.flags[key]],
      ['env', input.env[envName(key)]],
      ['file', input.file?.[key]],
    ];
    const hit = candidates.find(([, v]) => v !== undefined);
    if (hit) {
      settings[key] = coerce(key, hit[1], hit[0]);
      sources[key] = hit[0];
    } else {
      settings[key] = AGENT_DEFAULTS[key];
      sources[key] = 'default';
    }
  }
  for (const url of splitCloudUrls(settings.cloudUrls as string)) {
    const problem = cloudUrlProblem(url);
    if (problem) throw new SettingsError(`cloudUrls: ${problem}`);
  }
  return { settings: settings as DeviceSettings, sources };
}
