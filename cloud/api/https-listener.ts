import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { verifyPeersAtHandshake } from '../identity/terminal-auth.js';
import type { TicketKeys } from '../identity/ticket-keys.js';
import { type ConnectionLimits, guardConnections, serverOptions } from './connection-guard.js';
import { TLS_SERVER_POLICY } from './tls-policy.js';

/**
 * Connections the kernel may hold before the cloud accepts them (Node's default is 511). A fleet
 * reconnecting at once sends thousands of SYNs while the event loop is busy with handshakes; past
 * the queue the kernel drops them and each client waits for its SYN retransmit (1 s, then 3 s, …).
 * The kernel caps it at net.core.somaxconn (4096 on current kernels; docs/operations.md).
 */
export const LISTEN_BACKLOG = 4096;

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
  /** TLS session ticket keys shared by the cloud's instances (cloud/identity/ticket-keys.ts). */
  tickets?: TicketKeys;
  now(): number;
  log: Parameters<typeof guardConnections>[2];
}

export class HttpsListener {
  private readonly server: Server;
  private address = '';
  private rotation: NodeJS.Timeout | undefined;

  constructor(private readonly o: ListenerOptions) {
    this.server = createServer({
      ...serverOptions(o.limits),
      key: o.key,
      cert: o.cert,
      ca: [o.caPem],
      requestCert: true,
      rejectUnauthorized: false,
      ...TLS_SERVER_POLICY,
      ...(o.tickets ? sessionOptions(o.tickets, o.caPem, o.now()) : {}),
    });
    guardConnections(this.server, o.limits, o.log);
    verifyPeersAtHandshake(this.server, o.caPem);
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
      this.server.listen({ port: this.o.port, host: this.o.host, backlog: LISTEN_BACKLOG }, () => resolve());
    });
    const { port } = this.server.address() as AddressInfo;
    const hostPart = this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host;
    this.address = `https://${hostPart}:${port}`;
    this.scheduleRotation();
  }

  /** At each ticket-key period boundary, the next key (connections already open keep theirs). */
  private scheduleRotation(): void {
    const t = this.o.tickets;
    if (!t) return;
    const now = this.o.now();
    this.rotation = setTimeout(
      () => {
        this.server.setTicketKeys(t.keyAt(this.o.now()));
        this.scheduleRotation();
      },
      Math.max(1000, t.nextRotationAt(now) - now + 1000),
    );
    this.rotation.unref();
  }

  /** Stops accepting; connections still open after a second are closed. */
  async stop(): Promise<void> {
    clearTimeout(this.rotation);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      setTimeout(() => this.server.closeAllConnections(), 1000).unref();
    });
  }
}

/**
 * Session resumption (TLS 1.3 tickets, TLS 1.2 tickets): the ticket key of the period, tickets
 * valid for the period, and a session context naming this fleet (its CA), so a ticket from
 * another fleet's cloud is never resumed here. A resumed session carries the client certificate
 * of the full handshake it came from; it is verified again (terminal-auth.ts) like any other.
 */
export function sessionOptions(t: TicketKeys, caPem: string, nowMs: number) {
  return {
    ticketKeys: t.keyAt(nowMs),
    sessionTimeout: Math.floor(t.periodMs / 1000),
    sessionIdContext: createHash('sha256').update(caPem).digest('hex').slice(0, 32),
  };
}
