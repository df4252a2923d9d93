import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import { request } from 'node:https';
import { pipeline } from 'node:stream/promises';
import type { TLSSocket } from 'node:tls';
import { parseErrorBody } from '../protocol/refusal.js';
import { explainWithClock } from './cloud-time.js';
import { agentFor, type ProxySettings } from './proxy.js';
import { TlsSessions, tlsSessions } from './tls-sessions.js';

/**
 * A small HTTPS JSON client for the agent's calls to the cloud outside the link (enrollment).
 * It trusts only the CA it is given: never the system store.
 */
export class CloudRequestError extends Error {
  override readonly name = 'CloudRequestError';
  constructor(
    readonly code: string,
    message: string,
    /** HTTP status when the cloud answered, else undefined. */
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface CloudRequest {
  cloudUrl: string;
  /** The pinned CA; `null` only to fetch the CA itself, which is then checked by its fingerprint. */
  caPem: string | null;
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: unknown;
  /** A body that is not JSON (an upload), sent as it is with its content type; the answer is still JSON. */
  raw?: { bytes: Buffer; contentType: string };
  timeoutMs?: number;
  /** Client identity for mTLS calls. */
  cert?: string;
  key?: string;
  proxy?: ProxySettings;
}

/**
 * The kept TLS session for this call (tls-sessions.ts), and a hook that keeps the next one. Not
 * for the unverified fetch of the CA itself.
 */
function resumption(url: URL, r: Pick<CloudRequest, 'caPem' | 'cert'>) {
  if (r.caPem === null) return { options: {}, watch: (_req: ClientRequest) => {} };
  const key = TlsSessions.keyOf(url.hostname.replace(/^\[|\]$/g, ''), url.port || 443, r.cert);
  const session = tlsSessions.get(key);
  return {
    options: session ? { session } : {},
    watch: (req: ClientRequest) => req.on('socket', (s) => tlsSessions.watch(key, s as TLSSocket)),
  };
}

/** The cloud's `{error: {code, message}}` answer (or just its status) as an error. */
function refusal(status: number, body: unknown): CloudRequestError {
  const err = parseErrorBody(body);
  return new CloudRequestError(
    err?.code ?? `http_${status}`,
    err?.message ?? `the cloud answered HTTP ${status}`,
    status,
  );
}

/** A request that never got an answer: timed out, or failed to connect — explained, with the clock when it matters. */
function explainFailures(
  req: ClientRequest,
  r: Pick<CloudRequest, 'cloudUrl' | 'proxy'>,
  reject: (err: CloudRequestError) => void,
): void {
  req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
  req.on('error', (err) => {
    void explainWithClock(err, r.cloudUrl, Date.now(), r.proxy).then((e) =>
      reject(new CloudRequestError(e.code, e.message)),
    );
  });
}

export async function cloudJson<T>(r: CloudRequest): Promise<T> {
  const url = new URL(r.path, r.cloudUrl);
  if (url.protocol !== 'https:')
    throw new CloudRequestError('invalid_cloud_url', `cloud URL must be https://, got ${r.cloudUrl}`);
  const payload = r.raw ? r.raw.bytes : r.body === undefined ? undefined : JSON.stringify(r.body);
  const contentType = r.raw ? r.raw.contentType : 'application/json';
  const resume = resumption(url, r);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      url,
      {
        ...resume.options,
        method: r.method,
        ...(r.caPem === null ? { rejectUnauthorized: false } : { ca: r.caPem }),
        agent: agentFor(url, r.proxy),
        cert: r.cert,
        key: r.key,
        headers: payload ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {},
        timeout: r.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : {};
          } catch {
            return reject(
              new CloudRequestError(
                'bad_response',
                `the cloud answered ${res.statusCode} with a body that is not JSON`,
                res.statusCode,
              ),
            );
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve(body as T);
          reject(refusal(status, body));
        });
      },
    );
    resume.watch(req);
    explainFailures(req, r, reject);
    req.end(payload);
  });
}

/**
 * Downloads a file from the cloud over mTLS into `file`, resuming from what `file` already holds
 * (HTTP Range). Reports progress; resolves with the file's final size.
 */
export async function cloudDownload(
  r: Omit<CloudRequest, 'method' | 'body' | 'caPem'> & {
    caPem: string;
    file: string;
    onProgress?(received: number, total: number | null): void;
    /** Never write more than this: a download that would is cut and refused (`download_too_large`). */
    maxBytes?: number;
  },
): Promise<number> {
  const url = new URL(r.path, r.cloudUrl);
  const have = await stat(r.file).then(
    (s) => s.size,
    () => 0,
  );
  const resume = resumption(url, r);
  return new Promise<number>((resolve, reject) => {
    const req = request(
      url,
      {
        ...resume.options,
        method: 'GET',
        ca: r.caPem,
        cert: r.cert,
        key: r.key,
        agent: agentFor(url, r.proxy),
        headers: have > 0 ? { range: `bytes=${have}-` } : {},
        timeout: r.timeoutMs ?? 30_000,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status === 416) {
          // The file is complete already (or longer than the artifact: verification will say so).
          res.resume();
          return resolve(have);
        }
        if (status !== 200 && status !== 206) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            let body: unknown = null;
            try {
              body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              // not the cloud's JSON: the status says it
            }
            reject(refusal(status, body));
          });
          return;
        }
        // 200: the server ignored the range; start over.
        let received = status === 206 ? have : 0;
        const total = Number(res.headers['content-length'] ?? Number.NaN) + received;
        const max = r.maxBytes ?? Number.POSITIVE_INFINITY;
        const tooLarge = () =>
          new CloudRequestError(
            'download_too_large',
            `the cloud sent more than the ${max} bytes this download may have: refused`,
          );
        if (Number.isFinite(total) && total > max) {
          res.destroy();
          return reject(tooLarge());
        }
        const out = createWriteStream(r.file, { flags: status === 206 ? 'a' : 'w' });
        let refused = false;
        res.on('data', (c: Buffer) => {
          received += c.length;
          if (received > max && !refused) {
            refused = true;
            res.destroy(tooLarge());
            return;
          }
          r.onProgress?.(received, Number.isFinite(total) ? total : null);
        });
        pipeline(res, out).then(
          () => resolve(received),
          (err: Error) =>
            reject(
              err instanceof CloudRequestError
                ? err
                : new CloudRequestError('download_interrupted', `download interrupted: ${err.message}`),
            ),
        );
      },
    );
    resume.watch(req);
    explainFailures(req, r, reject);
    req.end();
  });
}
