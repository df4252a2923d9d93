import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { verifyPeersAtHandshake } from '../identity/terminal-auth.js';
import { type ConnectionLimits, guardConnections, serverOptions } from './connection-guard.js';
import { TLS_SERVER_POLICY } from './tls-policy.js';

/**
 * The cloud's one HTTPS port: the REST API and the agent gateway's upgrades. Client certificates
 * are asked for but not required by TLS (REST callers have none); terminal routes and the gateway
 * check the one presented themselves (cloud/gateway/terminal-auth.ts), verified once per connection.
 */
export interface ListenerOptions {
  host: string;
  port: number;
  key: string;
  cert: string;
  caPem: string;
  limits: ConnectionLimits;
  now(): number;
  log: Parameters<typeof guardConnections>[2];
}

export class HttpsListener {
  private readonly server: Server;
  private address = '';

  constructor(private readonly o: ListenerOptions) {
    this.server = createServer({
      ...serverOptions(o.limits),
      key: o.key,
      cert: o.cert,
      ca: [o.caPem],
      requestCert: true,
      rejectUnauthorized: false,
      ...TLS_SERVER_POLICY,
    });
    guardConnections(this.server, o.limits, o.log);
    verifyPeersAtHandshake(this.server, o.caPem, o.now);
  }

  /** The URL clients reach the cloud at (empty until it listens). */
  get url(): string {
    return this.address;
  }

  /** Every answer's `Date` header comes from the cloud's clock (devices compare their clocks to it). */
  serve(
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    upgrades: { attach(server: Server): void },
  ): void {
    this.server.on('request', (req, res) => {
      res.setHeader('date', new Date(this.o.now()).toUTCString());
      handler(req, res);
    });
    upgrades.attach(this.server);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.o.port, this.o.host, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    const hostPart = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    this.address = `https://${hostPart}:${port}`;
  }

  /** Stops accepting; connections still open after a second are closed. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      setTimeout(() => this.server.closeAllConnections(), 1000).unref();
    });
  }
}
