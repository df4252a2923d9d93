import { resolvePaths } from '../agent/settings.js';
import { readStatus } from '../agent/status/status-reader.js';
import type { Output } from './output.js';
import { showStatus } from './show-status.js';

export async function statusCommand(
  opts: { stateDir?: string; runtimeDir?: string },
  out: Output,
  softwareVersion: string,
): Promise<number> {
  const paths = resolvePaths(opts, process.env);
  return showStatus(await readStatus(paths, softwareVersion, Date.now()), out);
}
