import { lookup } from 'node:dns/promises';
import type { Agent } from 'node:https';
import { isIP, connect as tcpConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { openTunnel, type ProxySettings, proxyFor, TunnelAgent } from './proxy.js';

/**
 * How this device reaches its cloud — one path for the link, the HTTPS calls (enrollment,
 * renewal, downloads) and the technician's diagnostics, so that diagnostics see what the daemon
 * sees: directly, or through the HTTPS proxy (a CONNECT tunnel) when one applies and NO_PROXY does
 * not exempt the cloud. Through a proxy, the device resolves and reaches only the proxy; the proxy
 * resolves the cloud. TLS always runs end to end, checked against the pinned fleet CA.
 */
export interface ConnectionPath {
  cloud: URL;
  /** The cloud's host (no IPv6 brackets) and port. */
  host: string;
  port: number;
  /** The proxy the path goes through; null when direct. */
  proxy: URL | null;
  /** What the device itself must resolve and reach first: the proxy, or the cloud. */
  firstHop: { host: string; port: number };
  /**
   * The `agent` option for https.request and ws: a tunnel through the proxy; undefined when
   * direct. `connectTls` makes the TLS connection over the tunnel (one that resumes sessions).
   */
  agent(connectTls?: (options: ConnectionOptions) => TLSSocket): Agent | undefined;
  /** "directly" or "through the HTTPS proxy 10.0.0.1:3128", for messages. */
  describe(): string;
}

export function connectionPath(cloudUrl: string, proxy: ProxySettings | undefined): ConnectionPath {
  const cloud = new URL(cloudUrl);
  const host = cloud.hostname.replace(/^\[|\]$/g, '');
  const port = Number(cloud.port || (cloud.protocol === 'http:' || cloud.protocol === 'ws:' ? 80 : 443));
  const via = proxy ? proxyFor(cloud, proxy) : null;
  const firstHop = via
    ? { host: via.hostname.replace(/^\[|\]$/g, ''), port: Number(via.port || 80) }
    : { host, port };
  return {
    cloud,
    host,
    port,
    proxy: via,
    firstHop,
    agent: (connectTls) => (via ? new TunnelAgent(via, {}, connectTls) : undefined),
    describe: () => (via ? `through the HTTPS proxy ${firstHop.host}:${firstHop.port}` : 'directly'),
  };
}

/** The address of the first hop (the proxy's when there is one); no lookup for an IP address. */
export async function resolveFirstHop(
  path: ConnectionPath,
): Promise<{ name: string; address: string; lookedUp: boolean }> {
  const name = path.firstHop.host;
  if (isIP(name)) return { name, address: name, lookedUp: false };
  return { name, address: (await lookup(name)).address, lookedUp: true };
}

/** A TCP stream to the cloud along the path: to the first hop's `address`, then the tunnel if any. */
export function openStream(path: ConnectionPath, address: string, timeoutMs: number): Promise<Duplex> {
  if (path.proxy) {
    // The proxy is reached at the address just resolved, as the tunnel would reach it by name.
    const proxy = new URL(path.proxy.href);
    proxy.hostname = isIP(address) === 6 ? `[${address}]` : address;
    return openTunnel(proxy, path.host, path.port, timeoutMs);
  }
  return new Promise((resolve, reject) => {
    const s = tcpConnect(path.port, address);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** TLS over `stream`: the cloud checked against the pinned CA, with the client certificate when given. */
export function openTls(
  path: ConnectionPath,
  stream: Duplex,
  tls: { ca: string; cert?: string; key?: string },
): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      socket: stream,
      ...(isIP(path.host) ? {} : { servername: path.host }),
      host: path.host,
      ...tls,
    });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
  });
}
