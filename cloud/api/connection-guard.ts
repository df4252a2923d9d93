import { readFileSync } from 'node:fs';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/**
 * Connection limits and timeouts of the cloud's one listener (REST, enrollment and the agent
 * gateway share the port):
 *
 * - a cap on connections in total (below the process's descriptor limit, so the cloud never runs
 *   out of them: that is what turned an idle flood into ECONNRESET for everyone) and per source
 *   address (one client cannot take the whole cap); past either, a new connection is closed at
 *   once, before its TLS handshake;
 * - a TLS handshake must finish within `handshakeTimeoutMs` (an idle TCP connection is closed);
 * - request headers within `headersTimeoutMs` (a TLS connection that sends nothing gets 408 then),
 *   checked at least every second;
 * - a JSON body within `requestTimeoutMs` of the handler asking for it (rest-api.ts: 408, and the
 *   connection closes). Not server-wide: a release upload may take longer than that, as long as
 *   it keeps moving — an HTTP connection with no traffic for `idleTimeoutMs` is closed;
 * - between keep-alive requests after `keepAliveTimeoutMs`. An upgraded agent link is not
 *   idle-timed here: its WebSocket pings decide (and it must say Hello within the gateway's
 *   timeout).
 */
export interface ConnectionLimits {
  /** Connections at once, in total (0: derived from the descriptor limit). */
  maxConnections: number;
  /** Connections at once from one source address (0: no per-source cap). */
  maxConnectionsPerSource: number;
  handshakeTimeoutMs: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 0,
  maxConnectionsPerSource: 256,
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  // Above the longest a handler waits (a terminal's diagnostics: 30 s).
  idleTimeoutMs: 60_000,
};

/** The soft limit on open files of this process (Linux /proc), or null if it cannot be read. */
export function openFileLimit(limits = '/proc/self/limits'): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limits, 'utf8'));
    if (!m) return null;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return null;
  }
}

/**
 * The total cap when none is given: half the descriptors left after a reserve of 128 (SQLite,
 * logs, workers, webhooks), since a connection may hold a file too (a download), at most 10,000.
 */
export function derivedMaxConnections(fdLimit: number | null): number {
  if (fdLimit === null) return 4096;
  return Math.max(64, Math.min(10_000, Math.floor((fdLimit - 128) / 2)));
}

/** A connection's source for the per-source cap: the address, IPv4-mapped IPv6 as IPv4, IPv6 by /64. */
export function sourceOf(address: string | undefined): string {
  if (!address) return 'unknown';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!address.includes(':')) return address;
  const groups = expandIpv6(address);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : address;
}

function expandIpv6(a: string): string[] | null {
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  if (tail === undefined && h.length !== 8) return null;
  const fill = Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0');
  return [...h, ...fill, ...t].map((g) => g.toLowerCase().replace(/^0+(?=.)/, ''));
}

/** The node:https server options these limits set (pass to createServer). */
export function serverOptions(l: ConnectionLimits) {
  return {
    handshakeTimeout: l.handshakeTimeoutMs,
    headersTimeout: l.headersTimeoutMs,
    // Node's whole-request timeout would also cut a long release upload: bodies have their own
    // deadline where they are read (rest-api.ts), uploads the idle timeout.
    requestTimeout: 0,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // How often headers/request timeouts are checked (Node's default is 30 s, which would let a
    // slow client stay up to 30 s past its timeout).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
  };
}

export interface ConnectionGuard {
  /** Open connections now, and per source. */
  open(): { total: number; sources: number };
  /** Connections closed at once because a cap was reached, since start. */
  refused(): number;
}

/** Applies the caps and the idle timeout to a listening (or about to listen) server. */
export function guardConnections(
  server: HttpsServer,
  limits: ConnectionLimits,
  log: { warn(obj: object, msg: string): void; debug(obj: object, msg: string): void },
): ConnectionGuard {
  const total = limits.maxConnections > 0 ? limits.maxConnections : derivedMaxConnections(openFileLimit());
  const perSource = new Map<string, number>();
  let count = 0;
  let refused = 0;
  let refusedSinceLog = 0;
  let lastLog = 0;
  server.timeout = limits.idleTimeoutMs;
  const noteRefusal = (source: string, why: string) => {
    refused++;
    refusedSinceLog++;
    const now = Date.now();
    if (now - lastLog >= 10_000) {
      log.warn({ source, refused: refusedSinceLog, cap: why }, `connections refused: ${why}`);
      lastLog = now;
      refusedSinceLog = 0;
    }
  };
  // Before the TLS layer sees the socket: a refused connection costs no handshake.
  server.prependListener('connection', (socket: Socket) => {
    const source = sourceOf(socket.remoteAddress);
    const mine = perSource.get(source) ?? 0;
    if (count >= total) {
      noteRefusal(source, `${total} connections open in total`);
      socket.destroy();
      return;
    }
    if (limits.maxConnectionsPerSource > 0 && mine >= limits.maxConnectionsPerSource) {
      noteRefusal(source, `${limits.maxConnectionsPerSource} connections open from this source`);
      socket.destroy();
      return;
    }
    count++;
    perSource.set(source, mine + 1);
    socket.once('close', () => {
      count--;
      const left = (perSource.get(source) ?? 1) - 1;
      if (left <= 0) perSource.delete(source);
      else perSource.set(source, left);
    });
  });
  server.on('tlsClientError', (err: Error & { code?: string }, tls: TLSSocket) => {
    log.debug({ source: tls.remoteAddress, code: err.code }, `TLS handshake failed: ${err.message}`);
  });
  return {
    open: () => ({ total: count, sources: perSource.size }),
    refused: () => refused,
  };
}
