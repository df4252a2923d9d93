import { askDaemon } from '../agent/local-api/local-api-client.js';
import { type AgentPaths, type DeviceSettings, resolvePaths } from '../agent/settings.js';
import type { StatusDocument } from '../agent/status/status-document.js';
import { readStatusWithoutDaemon } from '../agent/status/status-reader.js';
import { proxySettings } from '../cloud-access/proxy.js';
import { writeBundle } from '../diagnostics/bundle.js';
import { type DiagnosticsReport, diagnose, formatReport } from '../diagnostics/report.js';
import { readHardwareSerial, usableSerial } from '../identity/hardware-serial.js';
import { loadDeviceSettings } from './device-settings.js';
import { ExitCode, type Output } from './output.js';

export interface DiagnosticsOptions {
  stateDir?: string;
  runtimeDir?: string;
  settings?: string;
  bundle?: string;
  timeoutMs?: number;
}

/**
 * `posagent diagnostics`: the checks, run by this process (it opens the store read-only and probes
 * the network itself), with the daemon's own view of its link when it runs. Works with the daemon
 * down — that is when it is needed most. Exit 1 when any check fails.
 */
export async function diagnosticsCommand(
  opts: DiagnosticsOptions,
  out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const { settings, sources } = await loadDeviceSettings(opts.settings, {});

  const res = await askDaemon<StatusDocument>(paths.socketPath, 'GET', '/v1/status').catch(() => null);
  const daemon = res?.status === 200 ? res.body : null;
  if (!out.json) out.progress('running diagnostics…');
  const report = await diagnose({
    paths,
    settings,
    proxy: proxySettings(settings, process.env),
    daemon,
    now: Date.now,
    timeoutMs: opts.timeoutMs ?? 5000,
  });
  let doc: DiagnosticsReport & { bundle?: { file: string; entries: string[] } } = report;
  if (opts.bundle)
    doc = {
      ...report,
      bundle: await exportBundle(opts.bundle, { paths, settings, sources }, report, daemon, softwareVersion),
    };
  const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
  out.result(doc, () =>
    [
      formatReport(report, colour),
      ...(doc.bundle ? [`Support bundle written to ${doc.bundle.file}`] : []),
    ].join('\n'),
  );
  return report.summary.fail > 0 ? ExitCode.failed : ExitCode.ok;
}

/** Writes the support bundle for this device: one place for the CLI and the menu. */
export async function exportBundle(
  file: string,
  device: { paths: AgentPaths; settings: DeviceSettings; sources: Record<string, string> },
  report: DiagnosticsReport,
  daemon: StatusDocument | null,
  softwareVersion: string,
): Promise<{ file: string; entries: string[] }> {
  const { paths, settings, sources } = device;
  return writeBundle({
    file,
    stateDir: paths.stateDir,
    dbFile: paths.dbFile,
    report,
    status: daemon ?? (await readStatusWithoutDaemon(paths, softwareVersion, Date.now())),
    settings: { settings, sources },
    serialNumber: usableSerial(settings.serialNumber) ?? (await readHardwareSerial().catch(() => null)),
    now: Date.now,
  });
}
