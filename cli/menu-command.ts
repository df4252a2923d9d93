import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { askDaemon, localApiRequest } from '../agent/local-api-client.js';
import { resolvePaths } from '../agent/settings.js';
import type { StatusDocument } from '../agent/status-document.js';
import { readStatus } from '../agent/status-reader.js';
import { runMenu } from '../diagnostics/menu.js';
import { diagnose } from '../diagnostics/report.js';
import { proxySettings } from '../enroll/proxy.js';
import { loadDeviceSettings } from './device-settings.js';
import { exportBundle } from './diagnostics-command.js';
import { CommandError, ExitCode, type Output } from './output.js';

const run = promisify(execFile);

/** `posagent menu`: wires the menu to the same status, diagnostics and bundle code as the CLI. */
export async function menuCommand(
  opts: { stateDir?: string; runtimeDir?: string; settings?: string },
  out: Output,
  softwareVersion: string,
): Promise<number> {
  if (out.json)
    throw new CommandError('usage', 'the menu is interactive; it has no --json form', ExitCode.usage);
  if (!process.stdin.isTTY)
    throw new CommandError(
      'not_a_terminal',
      'the menu needs a terminal (a console, SSH with -t, or tmux)',
      ExitCode.usage,
    );
  const paths = resolvePaths(opts, process.env);
  const { settings, sources } = await loadDeviceSettings(opts.settings, {});
  const daemonStatus = async () => {
    const r = await askDaemon<StatusDocument>(paths.socketPath, 'GET', '/v1/status').catch(() => null);
    return r?.status === 200 ? r.body : null;
  };
  const report = async () =>
    diagnose({
      paths,
      settings,
      proxy: proxySettings(settings, process.env),
      daemon: await daemonStatus(),
      now: Date.now,
    });
  await runMenu({
    input: process.stdin,
    output: process.stdout,
    colour: !process.env.NO_COLOR,
    status: () => readStatus(paths, softwareVersion, Date.now()),
    diagnose: report,
    reconnect: async () => {
      try {
        const r = await localApiRequest<{ link: string }>(paths.socketPath, 'POST', '/v1/queue/flush');
        return `Asked the daemon to reconnect now (link: ${r.body.link}).`;
      } catch (err) {
        return `The daemon is not running: ${(err as Error).message}. Start it with: systemctl start posagent`;
      }
    },
    bundle: async () => {
      const file = join(tmpdir(), `posagent-bundle-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`);
      await exportBundle(
        file,
        { paths, settings, sources },
        await report(),
        await daemonStatus(),
        softwareVersion,
      );
      return file;
    },
    lastErrors: async () => {
      const s = await readStatus(paths, softwareVersion, Date.now());
      const lines: string[] = [];
      if (s.link.reason) lines.push(`link ${s.link.state}: ${s.link.reason}`);
      if (s.certificate.renewal?.lastError)
        lines.push(`certificate renewal: ${s.certificate.renewal.lastError}`);
      const failed = (await report()).checks.filter((c) => c.status !== 'pass');
      for (const c of failed) lines.push(`${c.status} ${c.id}: ${c.detail}`);
      try {
        const { stdout } = await run(
          'journalctl',
          ['-u', 'posagent', '-p', 'warning', '-n', '10', '--no-pager', '-o', 'cat'],
          {
            timeout: 5000,
          },
        );
        if (stdout.trim()) lines.push('', 'journal (warnings and errors):', stdout.trim());
      } catch {
        // no journald here: the status and checks above are what there is
      }
      return lines;
    },
  });
  return ExitCode.ok;
}
