import { request } from 'node:https';
import { explainWithClock } from './cloud-time.js';
import { agentFor, type ProxySettings } from './proxy.js';

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
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  timeoutMs?: number;
  /** Client identity for mTLS calls. */
  cert?: string;
  key?: string;
  proxy?: ProxySettings;
}

export async function cloudJson<T>(r: CloudRequest): Promise<T> {
  const url = new URL(r.path, r.cloudUrl);
  if (url.protocol !== 'https:')
    throw new CloudRequestError('invalid_cloud_url', `cloud URL must be https://, got ${r.cloudUrl}`);
  const payload = r.body === undefined ? undefined : JSON.stringify(r.body);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      url,
      {
        method: r.method,
        ...(r.caPem === null ? { rejectUnauthorized: false } : { ca: r.caPem }),
        agent: agentFor(url, r.proxy),
        cert: r.cert,
        key: r.key,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
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
          const err = (body as { error?: { code?: string; message?: string } }).error;
          reject(
            new CloudRequestError(
              err?.code ?? `http_${status}`,
              err?.message ?? `the cloud answered HTTP ${status}`,
              status,
            ),
          );
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => {
      void explainWithClock(err, r.cloudUrl, Date.now(), r.proxy).then((e) =>
        reject(new CloudRequestError(e.code, e.message)),
      );
    });
    req.end(payload);
  });
}
