import { request as httpRequest } from 'node:http';
import { Agent, type AgentOptions, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';

/**
 * Store networks: an HTTPS proxy reached with an HTTP CONNECT tunnel, used by enrollment, the
 * link and downloads alike. TLS runs end to end inside the tunnel, so the proxy sees neither the
 * client certificate's key nor the traffic, and the cloud is still checked against the pinned CA.
 */
export interface ProxySettings {
  /** http://[user:pass@]host:port of the proxy; '' for none. */
  httpsProxy: string;
  /** Comma-separated hosts (and .suffixes, host:port, or *) reached directly. */
  noProxy: string;
}

type Env = Record<string, string | undefined>;

/** The device setting when set, else the conventional HTTPS_PROXY / NO_PROXY (either case). */
export function proxySettings(settings: Partial<ProxySettings>, env: Env): ProxySettings {
  return {
    httpsProxy: settings.httpsProxy || env.HTTPS_PROXY || env.https_proxy || '',
    noProxy: settings.noProxy || env.NO_PROXY || env.no_proxy || '',
  };
}

/** The proxy to use for `target`, or null to connect directly (no proxy, or NO_PROXY matches). */
export function proxyFor(target: URL, p: ProxySettings): URL | null {
  if (!p.httpsProxy) return null;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'http:' || target.protocol === 'ws:' ? '80' : '443');
  for (const raw of p.noProxy.split(/[,\s]+/)) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return null;
    const m = /^(.*?)(?::(\d+))?$/.exec(entry)!;
    const name = m[1]!.replace(/^\*?\./, '.').replace(/^\[|\]$/g, '');
    if (m[2] && m[2] !== port) continue;
    if (name.startsWith('.') ? host.endsWith(name) || host === name.slice(1) : host === name) return null;
  }
  try {
    return new URL(p.httpsProxy.includes('://') ? p.httpsProxy : `http://${p.httpsProxy}`);
  } catch {
    throw Object.assign(new Error(`the HTTPS proxy setting is not a URL: ${p.httpsProxy}`), {
      code: 'PROXY_INVALID',
    });
  }
}

/** `host:port` as a CONNECT request names it (IPv6 in brackets). */
function tunnelTarget(host: string, port: number | string): string {
  const h = host.replace(/^\[|\]$/g, '');
  return `${h.includes(':') ? `[${h}]` : h}:${port}`;
}

/**
 * Opens a CONNECT tunnel through `proxy` to `host:port`: resolves with the raw socket once the
 * proxy answered 200. Errors carry PROXY_REFUSED / PROXY_UNREACHABLE / ETIMEDOUT. The link, the
 * HTTPS calls and diagnostics all go through here, so they reach the cloud the same way.
 */
export function openTunnel(
  proxy: URL,
  host: string,
  port: number | string,
  timeoutMs = 15_000,
): Promise<Duplex> {
  const target = tunnelTarget(host, port);
  const proxyName = `${proxy.hostname}:${proxy.port || 80}`;
  const headers: Record<string, string> = { host: target };
  if (proxy.username)
    headers['proxy-authorization'] =
      `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: proxy.hostname.replace(/^\[|\]$/g, ''),
      port: proxy.port || 80,
      method: 'CONNECT',
      path: target,
      headers,
      timeout: timeoutMs,
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(
          Object.assign(
            new Error(
              `the HTTPS proxy at ${proxyName} refused the tunnel to ${target} (HTTP ${res.statusCode} ${res.statusMessage ?? ''})`.trim(),
            ),
            { code: 'PROXY_REFUSED' },
          ),
        );
        return;
      }
      resolve(socket);
    });
    req.once('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        Object.assign(
          new Error(`cannot reach the HTTPS proxy at ${proxyName} (${err.code ?? err.message})`),
          {
            code: 'PROXY_UNREACHABLE',
          },
        ),
      ),
    );
    req.end();
  });
}

/** An https.Agent that reaches every host through a CONNECT tunnel of `proxy`. */
export class TunnelAgent extends Agent {
  constructor(
    private readonly proxy: URL,
    options: AgentOptions = {},
    /** The TLS connect over the tunnel (the link's offers its kept session). */
    private readonly connectTls: (options: ConnectionOptions) => TLSSocket = tlsConnect,
  ) {
    super({ ...options, keepAlive: false });
  }

  override createConnection(
    requestOptions: RequestOptions,
    cb?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const options = requestOptions as ConnectionOptions & { host?: string; port?: number | string };
    // Node's Agent always passes the callback; a socket made later is handed over through it.
    const callback = (err: Error | null, socket?: Duplex) => cb?.(err, socket as Duplex);
    const host = String(options.host ?? 'localhost').replace(/^\[|\]$/g, '');
    openTunnel(this.proxy, host, options.port ?? 443).then(
      (socket) =>
        callback(
          null,
          this.connectTls({
            ...options,
            socket,
            ...(isIP(host) ? {} : { servername: options.servername ?? host }),
          }),
        ),
      (err: Error) => callback(err),
    );
    return undefined;
  }
}

/** The agent option for a request to `target`: a tunnel when a proxy applies, else undefined (direct). */
export function agentFor(target: URL, p: ProxySettings | undefined): Agent | undefined {
  const proxy = p ? proxyFor(target, p) : null;
  return proxy ? new TunnelAgent(proxy) : undefined;
}
