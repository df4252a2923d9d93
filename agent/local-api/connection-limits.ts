import { readFileSync } from 'node:fs';

/**
 * How many connections the local API takes — pure, from the process's open-file limit. A local
 * app must never be able to use up the daemon's descriptors (systemd's `LimitNOFILE`): a reserve
 * is always left for the store (database, WAL, shared memory), the cloud link, the log, DNS,
 * child processes and diagnostics.
 *
 * - `hard`: beyond it, a new connection is closed at once, unanswered (Node's `maxConnections`).
 * - `connections`: beyond it, a connection is answered `503 too_many_connections` and closed.
 * - `streams`: event streams open at once; beyond it, `503 too_many_streams`.
 */
export interface ConnectionLimits {
  hard: number;
  connections: number;
  streams: number;
}

/** Descriptors never given to local API clients. */
export const DESCRIPTOR_RESERVE = 256;
export const MAX_CONNECTIONS = 256;
export const MAX_STREAMS = 64;
const MAX_HARD = 1024;

export function connectionLimits(openFileLimit: number | null): ConnectionLimits {
  const limit = openFileLimit ?? 1024;
  const hard = Math.max(8, Math.min(MAX_HARD, limit - DESCRIPTOR_RESERVE));
  const connections = Math.max(4, Math.min(MAX_CONNECTIONS, Math.floor(hard / 2)));
  const streams = Math.max(2, Math.min(MAX_STREAMS, Math.floor(connections / 4)));
  return { hard, connections, streams };
}

/** The soft `Max open files` of this process (`/proc/self/limits`); null when it cannot be read. */
export function readOpenFileLimit(file = '/proc/self/limits'): number | null {
  try {
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    const n = Number(soft);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
