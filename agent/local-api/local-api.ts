import { existsSync } from 'node:fs';
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { errorBody, isRefusal, Refusal } from '../../protocol/refusal.js';
import { type ConnectionLimits, connectionLimits } from './connection-limits.js';
import { CLOSES_CONNECTION, localApiStatus } from './local-api-statuses.js';

/**
 * The local API for the POS app: HTTP/1.1 + JSON on a Unix socket (0660: owner and group
 * `posagent` only). Handlers and the features under them refuse with a `Refusal`; this edge alone
 * turns its code into a status (agent/local-api-statuses.ts) and answers `{error: {code, message}}`.
 */
export interface LocalRoute {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  /** Answers with JSON: status 200, or the status of a `Reply`. */
  handle?(req: IncomingMessage, params: string[], body: () => Promise<unknown>): unknown | Promise<unknown>;
  /** Takes the response over (server-sent events). */
  stream?(req: IncomingMessage, res: ServerResponse): void;
}

export const SOCKET_MODE = 0o660;
export const MAX_BODY_BYTES = 16 * 1024;
/** A request body must arrive within this long (a stuck or slow client cannot hold a handler). */
export const BODY_TIMEOUT_MS = 5_000;
/** A new connection's request headers must arrive within this long (else 408 and closed). */
export const HEADERS_TIMEOUT_MS = 5_000;
/** Node's keep-alive idle timeout: an idle connection is closed after this long. */
const KEEP_ALIVE_MS = 5_000;
/** Node's own sweep of request deadlines, pushed out of the way (the largest timer Node takes): ours are per connection. */
const NODE_SWEEP_MS = 2_147_483_647;

/** A JSON answer with a status other than 200. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  const read = (async () => {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES)
        throw new Refusal('body_too_large', `request body over ${MAX_BODY_BYTES} bytes`);
      chunks.push(chunk as Buffer);
    }
  })();
  read.catch(() => {}); // after a timeout, the abandoned read ends when the connection closes
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      read,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Refusal('request_timeout', `the request body did not arrive within ${BODY_TIMEOUT_MS} ms`),
            ),
          BODY_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new Refusal('invalid_json', 'request body is not valid JSON');
  }
}

/** A path segment, percent-decoded; a malformed escape (`%E0%A4%A`) is the client's error, not ours. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new Refusal('invalid_request', `the path segment "${part}" is not valid percent-encoded UTF-8`);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** True when something answers on the socket (another daemon); false for a stale file. */
function socketInUse(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class LocalApi {
  private server: Server | undefined;
  /** Connections accepted past `limits.connections`: answered 503 and closed. */
  private readonly overCap = new WeakSet<Socket>();
  private open = 0;

  constructor(
    private readonly socketPath: string,
    private readonly routes: LocalRoute[],
    private readonly log: { error(obj: object, msg: string): void; warn(obj: object, msg: string): void },
    private readonly limits: ConnectionLimits = connectionLimits(null),
  ) {}

  /** Connections open now. */
  connections(): number {
    return this.open;
  }

  async start(): Promise<void> {
    if (existsSync(this.socketPath)) {
      if (await socketInUse(this.socketPath)) {
        throw new Error(`another posagent daemon is already listening on ${this.socketPath}`);
      }
      await unlink(this.socketPath);
    }
    // No sweep: Node's would wake the idle daemon every connectionsCheckingInterval. Each open
    // connection has its own deadline instead (`headerDeadline`), so a daemon without clients has
    // no timer at all.
    const server = createServer(
      { connectionsCheckingInterval: NODE_SWEEP_MS },
      (req, res) => void this.handle(req, res),
    );
    // Event streams stay open; every other request is bounded by the header deadline and the handlers.
    server.requestTimeout = 0;
    server.headersTimeout = HEADERS_TIMEOUT_MS;
    server.keepAliveTimeout = KEEP_ALIVE_MS;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      this.clearDeadline(socket);
      // Kept alive, the next request's headers (or the close) must come within the keep-alive time.
      res.once('finish', () => {
        if (!socket.destroyed) this.headerDeadline(socket, HEADERS_TIMEOUT_MS + KEEP_ALIVE_MS, false);
      });
    });
    // Past `hard`, Node closes a new connection at once; past `connections`, it is answered 503
    // with a code (or closed after 2 s if it never sends a request): descriptors stay in reserve.
    server.maxConnections = this.limits.hard;
    let warnedAt = 0;
    server.on('connection', (socket: Socket) => {
      this.open++;
      this.headerDeadline(socket, HEADERS_TIMEOUT_MS, true);
      socket.once('close', () => {
        this.open--;
        this.clearDeadline(socket);
      });
      if (this.open > this.limits.connections) {
        this.overCap.add(socket);
        socket.setTimeout(2_000, () => socket.destroy());
        if (Date.now() - warnedAt > 10_000) {
          warnedAt = Date.now();
          this.log.warn(
            { open: this.open, cap: this.limits.connections },
            'local API connection cap reached; refusing new connections (503 too_many_connections)',
          );
        }
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => resolve());
    });
    await chmod(this.socketPath, SOCKET_MODE);
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    // Event streams are ended, not cut: what was written to them (the last events) reaches the
    // reader, who reconnects with Last-Event-ID. Whatever is still open a moment later is cut.
    for (const res of this.streams) res.end();
    await new Promise<void>((resolve) => {
      const cut = setTimeout(() => s.closeAllConnections(), this.streams.size > 0 ? 500 : 0);
      s.close(() => {
        clearTimeout(cut);
        resolve();
      });
      s.closeIdleConnections();
    });
  }

  /** Each open connection waiting for a request's headers, and its deadline. */
  private readonly deadlines = new Map<Socket, NodeJS.Timeout>();

  /**
   * A connection must send a request's headers within `ms`: a new one is answered 408
   * `request_timeout` and closed (a client that never finishes its headers cannot hold a
   * descriptor), a kept-alive one is closed. Armed only while a connection is open.
   */
  private headerDeadline(socket: Socket, ms: number, answer: boolean): void {
    this.clearDeadline(socket);
    this.deadlines.set(
      socket,
      setTimeout(() => {
        this.deadlines.delete(socket);
        if (!answer) return void socket.destroy();
        const text = JSON.stringify(
          errorBody('request_timeout', `the request headers did not arrive within ${ms} ms`),
        );
        socket.end(
          `HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
          () => socket.destroy(),
        );
      }, ms),
    );
  }

  private clearDeadline(socket: Socket): void {
    clearTimeout(this.deadlines.get(socket));
    this.deadlines.delete(socket);
  }

  /** Responses taken over by a stream route, open now. */
  private readonly streams = new Set<ServerResponse>();

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.overCap.has(req.socket)) {
        res.setHeader('connection', 'close');
        throw new Refusal(
          'too_many_connections',
          `${this.open} connections are open to the local API, the most it takes (${this.limits.connections}); close idle ones and retry`,
        );
      }
      const path = new URL(req.url ?? '/', 'http://posagent').pathname;
      const matching = this.routes.filter((r) => r.pattern.test(path));
      if (matching.length === 0) throw new Refusal('not_found', `no route ${path}`);
      const route = matching.find((r) => r.method === req.method);
      if (!route) throw new Refusal('method_not_allowed', `${req.method} is not allowed on ${path}`);
      if (route.stream) {
        this.streams.add(res);
        res.once('close', () => this.streams.delete(res));
        route.stream(req, res);
        return;
      }
      const params = route.pattern.exec(path)!.slice(1).map(decodePathPart);
      const result = await route.handle?.(req, params, () => readBody(req));
      if (result instanceof Reply) send(res, result.status, result.body);
      else send(res, 200, result);
    } catch (err) {
      const status = isRefusal(err) ? localApiStatus(err.code) : undefined;
      if (isRefusal(err) && status !== undefined) {
        // A body refused half-read (too large, too slow): answer, then close — never read the rest.
        if (CLOSES_CONNECTION.has(err.code)) res.setHeader('connection', 'close');
        return send(res, status, errorBody(err.code, err.message, err.details));
      }
      this.log.error(
        { err: (err as Error).message, ...(isRefusal(err) ? { code: err.code } : {}) },
        isRefusal(err) ? 'local API refusal with a code the status table lacks' : 'local API handler failed',
      );
      send(res, 500, errorBody('internal_error', 'internal error'));
    }
  }
}
