import { readFile } from 'node:fs/promises';
import {
  type DeviceSettings,
  resolveDeviceSettings,
  type SettingSource,
  SettingsError,
} from '../agent/settings.js';
import { tlsSessions } from '../cloud-access/tls-sessions.js';
import { writeFileAtomic } from '../files/atomic-file.js';
import { identityPaths } from '../identity/identity-store.js';
import { CommandError, ExitCode } from './output.js';

/**
 * With `tlsSessionsOnDisk`, this process's TLS sessions with the cloud are read from and kept in
 * the identity's keys dir (0600, atomic writes): the daemon after a restart and the CLI's direct
 * calls resume instead of a full handshake.
 */
export function keepTlsSessions(settings: DeviceSettings, stateDir: string): void {
  if (!settings.tlsSessionsOnDisk) return;
  tlsSessions.persist(identityPaths(stateDir).tlsSessionsFile, (path, data) =>
    writeFileAtomic(path, data, 0o600),
  );
}

export const DEFAULT_SETTINGS_FILE = '/etc/posagent/agent.json';

async function readSettingsFile(path: string, explicit: boolean): Promise<Record<string, unknown> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !explicit) return null;
    throw new CommandError(
      'settings_unreadable',
      `cannot read the settings file ${path}: ${(err as NodeJS.ErrnoException).code}`,
      ExitCode.usage,
    );
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new CommandError(
      'settings_invalid',
      `the settings file ${path} is not a JSON object`,
      ExitCode.usage,
    );
  }
}

/** Device settings for a command: flags > POSAGENT_* > the settings file > defaults; usage errors exit 2. */
export async function loadDeviceSettings(
  settingsFile: string | undefined,
  flags: Partial<Record<keyof DeviceSettings, unknown>>,
): Promise<{ settings: DeviceSettings; sources: Record<keyof DeviceSettings, SettingSource> }> {
  const file = await readSettingsFile(
    settingsFile ?? DEFAULT_SETTINGS_FILE,
    settingsFile !== undefined && settingsFile !== DEFAULT_SETTINGS_FILE,
  );
  try {
    return resolveDeviceSettings({ flags, env: process.env, file });
  } catch (err) {
    if (err instanceof SettingsError) throw new CommandError('settings_invalid', err.message, ExitCode.usage);
    throw err;
  }
}
