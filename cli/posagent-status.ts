import { localApiGet } from '../agent/local-api/local-api-get.js';
import { resolvePaths } from '../agent/settings.js';
import type { StatusDocument } from '../agent/status/status-document.js';
import { createOutput } from './output.js';
import { showStatus } from './show-status.js';

/**
 * `posagent status [--json] [--state-dir D] [--runtime-dir D]` with the daemon running — what POS
 * apps and monitoring scripts call in loops — without the argument parser, the store or
 * node:http. The bundle builds this file as one module of its own (dist/bin/posagent-status.js),
 * so the call loads two files: the entry and this. Anything else (no daemon: the status from the
 * store; a failure) goes to the full CLI, which answers or reports it the usual way.
 */
export function statusFastPath(
  argv: string[],
): { json: boolean; stateDir?: string; runtimeDir?: string } | null {
  if (argv[0] !== 'status') return null;
  const opts: { json: boolean; stateDir?: string; runtimeDir?: string } = { json: false };
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    if (flag === '--json' && inline === undefined) opts.json = true;
    else if (flag === '--state-dir' || flag === '--runtime-dir') {
      const value = inline ?? argv[++i];
      if (!value || value.startsWith('-')) return null;
      opts[flag === '--state-dir' ? 'stateDir' : 'runtimeDir'] = value;
    } else return null;
  }
  return opts;
}

/** Answers the status call if it is one this path takes; false: the full CLI should run. */
export async function answerStatus(argv: string[]): Promise<boolean> {
  const fast = statusFastPath(argv);
  if (!fast) return false;
  try {
    const res = await localApiGet<StatusDocument>(resolvePaths(fast, process.env).socketPath, '/v1/status');
    if (res.status !== 200) return false;
    process.exitCode = showStatus(res.body, createOutput(fast.json));
    return true;
  } catch {
    return false; // not running, or a failure: the full CLI answers from the store or reports it
  }
}
