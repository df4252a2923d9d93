import pino from 'pino';
import {
  clockFromEnv,
  crashPointFromEnv,
  installFaultInjection,
  installLoopBlocker,
} from '../agent/crash-points.js';
import { createLogger } from '../agent/logger.js';
import { type RunningAgent, startAgent } from '../agent/main.js';
import { serviceNotifier } from '../agent/service-notifier.js';
import { resolvePaths } from '../agent/settings.js';
import { proxySettings } from '../cloud-access/proxy.js';
import { keepTlsSessions, loadDeviceSettings } from './device-settings.js';
import { exitOnUnhandled } from './fatal-errors.js';
import { CommandError, ExitCode, type Output } from './output.js';

export interface RunOptions {
  stateDir?: string;
  runtimeDir?: string;
  settings: string;
  cloudUrl?: string;
  logLevel?: string;
  rebootCommand?: string;
  bootIdFile?: string;
  installDir?: string;
}

/**
 * Exit status asking the supervisor to start the agent again (a software update switched the
 * `current` release or rolled it back). Non-zero, so systemd's `Restart=on-failure` restarts it.
 */
export const RESTART_EXIT_CODE = 75;

/** `posagent run`: process concerns only (settings, signals, exit); the agent is built in agent/main.ts. */
export async function runCommand(opts: RunOptions, _out: Output, softwareVersion: string): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const { settings, sources } = await loadDeviceSettings(opts.settings, {
    cloudUrl: opts.cloudUrl,
    logLevel: opts.logLevel,
    rebootCommand: opts.rebootCommand,
    bootIdFile: opts.bootIdFile,
    installDir: opts.installDir,
  });
  keepTlsSessions(settings, paths.stateDir);
  // The daemon's log is its stdout (journald); with --json, stdout holds only the one document
  // (a start failure's error), so the log goes to stderr.
  const log = createLogger(settings.logLevel, pino.destination({ fd: _out.json ? 2 : 1, sync: true }));
  exitOnUnhandled(log);
  installFaultInjection(process.env);
  const notifier = serviceNotifier(process.env, log);
  installLoopBlocker(process.env);
  let agent: RunningAgent | undefined;
  let exiting = false;
  // Stops the agent (persisting in-flight work, closing the link) and exits with `code`; once.
  const exitWith = (code: number, why: string) => {
    if (exiting) return;
    exiting = true;
    log.info({ why, code }, 'agent exiting');
    const force = setTimeout(() => {
      log.error('shutdown took longer than 5 s; exiting');
      process.exit(code || 1);
    }, 5000);
    force.unref();
    void (agent?.stop() ?? Promise.resolve()).then(() => {
      notifier.close();
      process.exit(code);
    });
  };
  let restartAsked: string | undefined;
  // A start that fails part-way leaves servers and timers behind: exit, so the supervisor sees it.
  const started = startAgent({
    paths,
    settings,
    softwareVersion,
    log,
    logLevelPinned: sources.logLevel !== 'default',
    settingSources: sources,
    env: process.env,
    crashPoint: crashPointFromEnv(process.env),
    ...(clockFromEnv(process.env) ? { now: clockFromEnv(process.env) as () => number } : {}),
    notifier,
    onFatal: (err) => {
      log.fatal({ err: err.message }, 'agent failed; exiting');
      process.exit(ExitCode.failed);
    },
    diagnose: async (status) =>
      (await import('../diagnostics/report.js')).diagnose({
        paths,
        settings,
        proxy: proxySettings(settings, process.env),
        daemon: status,
        now: Date.now,
      }),
    restart: (reason) => {
      restartAsked = reason;
      if (agent) exitWith(RESTART_EXIT_CODE, `restart: ${reason}`);
    },
  });
  agent = await started.catch((err: Error) => {
    log.fatal({ err: err.message, stack: err.stack }, 'agent failed to start; exiting');
    _out.error(new CommandError('start_failed', err.message));
    notifier.close();
    process.exit(ExitCode.failed);
  });
  if (restartAsked) exitWith(RESTART_EXIT_CODE, `restart: ${restartAsked}`);
  process.once('SIGTERM', () => exitWith(ExitCode.ok, 'SIGTERM'));
  process.once('SIGINT', () => exitWith(ExitCode.ok, 'SIGINT'));
  await new Promise<never>(() => {});
  return ExitCode.ok;
}
