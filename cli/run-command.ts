import { crashPointFromEnv } from '../agent/crash-points.js';
import { createLogger } from '../agent/logger.js';
import { startAgent } from '../agent/main.js';
import { resolvePaths } from '../agent/settings.js';
import { loadDeviceSettings } from './device-settings.js';
import { ExitCode, type Output } from './output.js';

/** `posagent run`: process concerns only (settings, signals, exit); the agent is built in agent/main.ts. */
export async function runCommand(
  opts: { stateDir?: string; runtimeDir?: string; settings: string; cloudUrl?: string; logLevel?: string },
  _out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const { settings, sources } = await loadDeviceSettings(opts.settings, {
    cloudUrl: opts.cloudUrl,
    logLevel: opts.logLevel,
  });
  const log = createLogger(settings.logLevel);
  const agent = await startAgent({
    paths,
    settings,
    softwareVersion,
    log,
    logLevelPinned: sources.logLevel !== 'default',
    env: process.env,
    crashPoint: crashPointFromEnv(process.env),
    onFatal: (err) => {
      log.fatal({ err: err.message }, 'agent failed; exiting');
      process.exit(ExitCode.failed);
    },
  });
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
