import { request } from 'node:http';
import { DaemonUnavailableError, type LocalResponse, localApiGet } from './local-api-get.js';

/** A client of the local API over its Unix socket, for the CLI and diagnostics. */
export { DaemonUnavailableError, type LocalResponse, localApiGet } from './local-api-get.js';

export function localApiRequest<T>(
  socketPath: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 3000,
): Promise<LocalResponse<T>> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method,
        path,
        timeout: timeoutMs,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T,
            });
          } catch {
            reject(new Error(`the daemon answered ${path} with a body that is not JSON`));
          }
        });
      },
    );
    req.on('timeout', () =>
      req.destroy(new DaemonUnavailableError(`the daemon did not answer within ${timeoutMs} ms`)),
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(err.code ?? '')) {
        reject(
          new DaemonUnavailableError(`the daemon is not running (no answer on ${socketPath}: ${err.code})`),
        );
      } else reject(err);
    });
    req.end(payload);
  });
}

/**
 * Asks the daemon; null when it is not running (no socket, refused). The CLI and diagnostics use it
 * to answer from the daemon when they can and from the store when they cannot.
 */
export async function askDaemon<T>(
  socketPath: string,
  method: string,
  path: string,
): Promise<LocalResponse<T> | null> {
  try {
    return await (method === 'GET'
      ? localApiGet<T>(socketPath, path)
      : localApiRequest<T>(socketPath, method, path));
  } catch (err) {
    if (err instanceof DaemonUnavailableError) return null;
    throw err;
  }
}

export interface LocalEvent {
  /** The event's id (`<run>-<n>`); none on `missed`. */
  id?: string;
  event: string;
  data: unknown;
}

export interface EventSubscription {
  /** Events received so far, oldest first. */
  readonly events: LocalEvent[];
  /** The id of the last event received (to reconnect with `Last-Event-ID`). */
  lastEventId(): string | null;
  /** Resolves when the daemon ends the stream (or it is closed). */
  readonly ended: Promise<void>;
  close(): void;
}

/**
 * Subscribes to `GET /v1/events` (server-sent events) on the local API; with `lastEventId`, the
 * daemon first replays what came after it (or sends one `missed` event when it cannot).
 */
export function subscribeEvents(
  socketPath: string,
  onEvent?: (e: LocalEvent) => void,
  options: { lastEventId?: string } = {},
): Promise<EventSubscription> {
  return new Promise((resolve, reject) => {
    const events: LocalEvent[] = [];
    let last: string | null = options.lastEventId ?? null;
    let endedResolve: () => void = () => {};
    const ended = new Promise<void>((r) => {
      endedResolve = r;
    });
    const req = request(
      {
        socketPath,
        method: 'GET',
        path: '/v1/events',
        headers: options.lastEventId ? { 'last-event-id': options.lastEventId } : {},
      },
      (res) => {
        if (res.statusCode !== 200) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            reject(
              Object.assign(
                new Error(
                  `GET /v1/events answered ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8')}`,
                ),
                { status: res.statusCode },
              ),
            ),
          );
          return;
        }
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const id = /^id: (.*)$/m.exec(block)?.[1];
            const event = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (event && data !== undefined) {
              const e: LocalEvent = { ...(id ? { id } : {}), event, data: JSON.parse(data) as unknown };
              if (id) last = id;
              events.push(e);
              onEvent?.(e);
            }
            end = buffer.indexOf('\n\n');
          }
        });
        res.on('close', endedResolve);
        resolve({ events, lastEventId: () => last, ended, close: () => req.destroy() });
      },
    );
    req.on('error', (err) => {
      endedResolve();
      if (events.length === 0) reject(err);
    });
    req.end();
  });
}
