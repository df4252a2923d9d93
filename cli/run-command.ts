import { readFile } from 'node:fs/promises';
import { createLogger } from '../agent/logger.js';
import { NotEnrolledError, startAgent } from '../agent/main.js';
import { resolveDeviceSettings, resolvePaths, SettingsError } from '../agent/settings.js';
import { CommandError, ExitCode, type Output } from './output.js';

const DEFAULT_SETTINGS_FILE = '/etc/posagent/agent.json';

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

/** `posagent run`: process concerns only (settings, signals, exit); the agent is built in agent/main.ts. */
export async function runCommand(
  opts: { stateDir?: string; runtimeDir?: string; settings: string; cloudUrl?: string; logLevel?: string },
  _out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const file = await readSettingsFile(opts.settings, opts.settings !== DEFAULT_SETTINGS_FILE);
  let resolved: ReturnType<typeof resolveDeviceSettings>;
  try {
    resolved = resolveDeviceSettings({
      flags: { cloudUrl: opts.cloudUrl, logLevel: opts.logLevel },
      env: process.env,
      file,
    });
  } catch (err) {
    if (err instanceof SettingsError) throw new CommandError('settings_invalid', err.message, ExitCode.usage);
    throw err;
  }
  const { settings, sources } = resolved;
  const log = createLogger(settings.logLevel);
  let agent: Awaited<ReturnType<typeof startAgent>>;
  try {
    agent = await startAgent({
      paths,
      settings,
      softwareVersion,
      log,
      logLevelPinned: sources.logLevel !== 'default',
    });
  } catch (err) {
    if (err instanceof NotEnrolledError)
      throw new CommandError('not_enrolled', err.message, ExitCode.notEnrolled);
    throw err;
  }
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info({ signal }, 'signal received');
      const force = setTimeout(() => {
        log.error('shutdown took longer than 5 s; exiting');
        process.exit(1);
      }, 5000);
      force.unref();
      void agent.stop().then(resolve);
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  return ExitCode.ok;
}
