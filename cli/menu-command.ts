import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RecentError } from '../agent/events/recent-errors.js';
import { askDaemon, localApiRequest } from '../agent/local-api/local-api-client.js';
import { resolvePaths } from '../agent/settings.js';
import type { StatusDocument } from '../agent/status/status-document.js';
import { readStatus } from '../agent/status/status-reader.js';
import { proxySettings } from '../cloud-access/proxy.js';
import { runMenu } from '../diagnostics/menu.js';
import { diagnose } from '../diagnostics/report.js';
import { loadDeviceSettings } from './device-settings.js';
import { exportBundle } from './diagnostics-command.js';
import { enrollWithSettingsCode } from './enroll-command.js';
import { CommandError, ExitCode, type Output } from './output.js';

const run = promisify(execFile);
/** How long "Reconnect now" waits for the link to come up before it says it did not. */
const RECONNECT_WAIT_MS = 15_000;

/** The last config the daemon refused, from the store (read-only), as one line. */
async function lastRejectedConfig(dbFile: string): Promise<string | null> {
  const { openStoreReadOnly } = await import('../agent/agent-store.js');
  const reader = openStoreReadOnly(dbFile);
  const r = reader?.lastRejection() ?? null;
  reader?.close();
  return r
    ? `${r.rejectedAt} config: version ${r.version} refused: ${r.errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`
    : null;
}

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
  const daemonErrors = async () => {
    const r = await askDaemon<{ errors: RecentError[] }>(paths.socketPath, 'GET', '/v1/errors').catch(
      () => null,
    );
    return r?.status === 200 ? r.body.errors : null;
  };
  await runMenu({
    input: process.stdin,
    output: process.stdout,
    colour: !process.env.NO_COLOR,
    size: () => ({ columns: process.stdout.columns || 80, rows: process.stdout.rows || 24 }),
    status: () => readStatus(paths, softwareVersion, Date.now()),
    diagnose: report,
    reconnect: async () => {
      const s = await daemonStatus();
      if (!s)
        return 'The daemon is not running: nothing to reconnect. Start it with: systemctl start posagent';
      if (!s.enrolled) return 'Not enrolled: there is no link to the cloud yet. Enroll first (key 7).';
      if (s.deactivated)
        return `The cloud deactivated this terminal (${s.deactivated.reason}): it does not reconnect. Enroll it again with a new code.`;
      if (s.link.state === 'online')
        return `Already connected to the cloud (online since ${s.link.since}). Nothing to do.`;
      await localApiRequest(paths.socketPath, 'POST', '/v1/queue/flush');
      // The daemon retries now instead of after its backoff; tell what came of it.
      const deadline = Date.now() + RECONNECT_WAIT_MS;
      for (;;) {
        const now = await daemonStatus();
        if (now?.link.state === 'online') return `Reconnected: the link is online (since ${now.link.since}).`;
        if (!now || Date.now() > deadline)
          return `Still not connected after ${RECONNECT_WAIT_MS / 1000} s${now?.link.reason ? `: ${now.link.reason}` : ''}. The daemon keeps retrying; see Last errors (6) and the connection test (2).`;
        await new Promise((r) => setTimeout(r, 250));
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
      // The daemon's recent link, config, enrollment and action problems (a cloud restart included).
      const recent = await daemonErrors();
      if (recent)
        for (const e of recent)
          lines.push(`${e.at} ${e.source}: ${e.message}${e.count > 1 ? ` (${e.count} times)` : ''}`);
      else {
        // The daemon is down: what the store remembers.
        if (s.link.reason) lines.push(`link ${s.link.state}: ${s.link.reason}`);
        const rejected = await lastRejectedConfig(paths.dbFile);
        if (rejected) lines.push(rejected);
      }
      if (s.deactivated) lines.push(`${s.deactivated.at} deactivated by the cloud: ${s.deactivated.reason}`);
      if (s.certificate.renewal?.lastError)
        lines.push(`certificate renewal: ${s.certificate.renewal.lastError}`);
      const failed = (await report()).checks.filter((c) => c.status !== 'pass');
      if (failed.length > 0) lines.push('', 'checks now:');
      for (const c of failed) lines.push(`${c.status} ${c.id}: ${c.detail}`);
      try {
        const { stdout } = await run(
          'journalctl',
          ['-u', 'posagent', '-p', 'warning', '-n', '10', '--no-pager', '-o', 'cat'],
          { timeout: 5000 },
        );
        if (stdout.trim()) lines.push('', 'journal (warnings and errors):', stdout.trim());
      } catch {
        // no journald here: the daemon's list and the checks above are what there is
      }
      return lines;
    },
    enroll: async (code) => {
      try {
        const identity = await enrollWithSettingsCode(paths.stateDir, settings, code, softwareVersion);
        return [
          `Enrolled as "${identity.name}" (${identity.terminalId}) at location ${identity.locationId}.`,
          (await daemonStatus())
            ? 'The daemon goes online with it now.'
            : 'Start the daemon (systemctl start posagent) to bring the terminal online.',
        ].join('\n');
      } catch (err) {
        const e = err as CommandError;
        return `${e.message}${e.hint ? `\n\n${e.hint}` : ''}`;
      }
    },
  });
  return ExitCode.ok;
}
