import { execFile } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import {
  type CollectLogsParams,
  checkLogSpan,
  type LOG_LEVELS,
  MAX_LOG_BYTES,
} from '../../protocol/actions.js';
import { scrub } from '../../protocol/redaction.js';

/**
 * The `collect_logs` action's work (issue 24): the daemon's own log lines between `since` and
 * `until` — journald's by default (`logsCommand`), pino JSON lines — at `level` and above, put
 * through the support bundle's scrubber (PANs, private keys, URL credentials, bearer tokens), cut
 * to the newest `MAX_LOG_BYTES`, gzipped. No remote shell: the command is the device's setting,
 * and the cloud only chooses the span and the level.
 */
export interface CollectedLogs {
  gzip: Buffer;
  lines: number;
  /** Lines left out because the bundle was full (the oldest go first). */
  dropped: number;
  bytes: number;
}

const PINO_LEVEL: Record<(typeof LOG_LEVELS)[number], number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
};

function runCommand(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      '/bin/sh',
      ['-c', command],
      { timeout: 30_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`the log command failed: ${(stderr || err.message).trim().slice(0, 300)}`));
        else resolve(stdout);
      },
    );
  });
}

/** Keeps a line at `min` and above; a line that is not one of the daemon's JSON lines only without a level filter. */
function atLevel(line: string, min: number): boolean {
  if (min <= 0) return true;
  try {
    const level = (JSON.parse(line) as { level?: unknown }).level;
    return typeof level === 'number' && level >= min;
  } catch {
    return false;
  }
}

export async function collectLogs(o: {
  /** The device's logsCommand; `{since}` and `{until}` become Unix seconds. */
  command: string;
  params: CollectLogsParams;
  nowMs: number;
  maxBytes?: number;
}): Promise<CollectedLogs> {
  const { since, until } = checkLogSpan(o.params, o.nowMs);
  const command = o.command
    .replaceAll('{since}', String(Math.floor(since / 1000)))
    .replaceAll('{until}', String(Math.ceil(until / 1000)));
  const min = o.params.level ? PINO_LEVEL[o.params.level] : 0;
  const all = (await runCommand(command)).split('\n').filter((l) => l.trim() !== '' && atLevel(l, min));
  const cap = o.maxBytes ?? MAX_LOG_BYTES;
  const kept: string[] = [];
  let bytes = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    const line = scrub(all[i] as string);
    const size = Buffer.byteLength(line) + 1;
    if (bytes + size > cap) break;
    kept.push(line);
    bytes += size;
  }
  kept.reverse();
  const dropped = all.length - kept.length;
  const header = `# posagent logs ${o.params.since} .. ${o.params.until}${o.params.level ? `, ${o.params.level} and above` : ''}: ${kept.length} lines${dropped > 0 ? `, the oldest ${dropped} left out (over ${cap} bytes)` : ''}\n`;
  const text = header + kept.map((l) => `${l}\n`).join('');
  return { gzip: gzipSync(text), lines: kept.length, dropped, bytes: Buffer.byteLength(text) };
}
