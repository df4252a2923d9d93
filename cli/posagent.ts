#!/usr/bin/env node
import { createOutput, ExitCode } from './output.js';
import { readSoftwareVersion } from './software-version.js';

/**
 * `posagent` entry point. `posagent status [--json] [--state-dir D] [--runtime-dir D]` — what POS
 * apps and monitoring scripts call in loops — is answered without loading the argument parser;
 * everything else, and any status call it cannot answer cleanly, goes through the full CLI
 * (cli/commands.ts), which then reports the error the usual way.
 */
function statusFastPath(argv: string[]): { json: boolean; stateDir?: string; runtimeDir?: string } | null {
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

const fast = statusFastPath(process.argv.slice(2));
let answered = false;
if (fast) {
  try {
    const { statusCommand } = await import('./status-command.js');
    process.exitCode = await statusCommand(fast, createOutput(fast.json), readSoftwareVersion());
    answered = true;
  } catch {
    process.exitCode = ExitCode.ok; // the full CLI runs it again and reports the failure properly
  }
}
if (!answered) await import('./commands.js');
