import { resolvePaths } from '../agent/settings.js';
import { formatStatus } from '../agent/status/status-document.js';
import { readStatus } from '../agent/status/status-reader.js';
import { ExitCode, type Output } from './output.js';

export async function statusCommand(
  opts: { stateDir?: string; runtimeDir?: string },
  out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  const status = await readStatus(paths, softwareVersion, Date.now());
  out.result(status, () => formatStatus(status));
  return status.enrolled ? ExitCode.ok : ExitCode.notEnrolled;
}
