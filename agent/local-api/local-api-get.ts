import { connect } from 'node:net';

/**
 * The one local API call that needs no HTTP client: a GET, for `posagent status` (its own
 * bundle, dist/bin/posagent-status.js, loads this and not node:http). local-api-client.ts has
 * the rest.
 */
export class DaemonUnavailableError extends Error {
  override readonly name = 'DaemonUnavailableError';
}

export interface LocalResponse<T> {
  status: number;
  body: T;
}

/**
 * A GET on the local API without node:http: one HTTP/1.0 request on the socket, the answer read
 * until the daemon closes it (HTTP/1.0: no keep-alive, no chunked body). `posagent status` — what
 * POS apps and scripts call in loops — then loads no HTTP client at all (loading node:http's
 * client was a tenth of its run). Same errors as localApiRequest.
 */
export function localApiGet<T>(
  socketPath: string,
  path: string,
  timeoutMs = 3000,
): Promise<LocalResponse<T>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(socketPath);
    socket.setTimeout(timeoutMs, () =>
      socket.destroy(new DaemonUnavailableError(`the daemon did not answer within ${timeoutMs} ms`)),
    );
    // Not end(): the server drops a half-closed connection before a slow handler answers. It
    // closes the connection itself after the answer (HTTP/1.0).
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.0\r\nHost: localhost\r\n\r\n`));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof DaemonUnavailableError) return reject(err);
      if (['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(err.code ?? ''))
        return reject(
          new DaemonUnavailableError(`the daemon is not running (no answer on ${socketPath}: ${err.code})`),
        );
      reject(err);
    });
    socket.once('end', () => {
      const raw = Buffer.concat(chunks);
      const head = raw.indexOf('\r\n\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw.subarray(0, 16).toString('latin1'))?.[1] ?? 0);
      const headers = raw.subarray(0, Math.max(0, head)).toString('latin1');
      if (head < 0 || !status || /\r\ntransfer-encoding:\s*chunked/i.test(headers))
        return reject(new Error(`the daemon answered ${path} with a response this client does not read`));
      try {
        resolve({ status, body: JSON.parse(raw.subarray(head + 4).toString('utf8')) as T });
      } catch {
        reject(new Error(`the daemon answered ${path} with a body that is not JSON`));
      }
    });
  });
}
