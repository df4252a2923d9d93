import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Cloud } from './processes.js';

/** The portal as a browser without JavaScript meets it: raw HTTPS calls, cookies by hand. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function call(
  cloud: Pick<Cloud, 'url' | 'caFile'>,
  method: string,
  path: string,
  opts: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${cloud.url}${path}`,
      { method, ca: readFileSync(cloud.caFile), headers: opts.headers ?? {} },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** A session the way a browser gets one: the sign-in page's cookie and token, then the form. */
export async function signInAs(
  cloud: Pick<Cloud, 'url' | 'caFile'>,
  name: string,
  password: string,
  next = '/portal/terminals',
): Promise<{ cookie: string; answer: Answer }> {
  const page = await call(cloud, 'GET', '/portal/sign-in');
  const pre = String(page.headers['set-cookie']).split(';')[0]!;
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
  const answer = await call(cloud, 'POST', '/portal/sign-in', {
    headers: { ...FORM, cookie: pre },
    body: new URLSearchParams({ _csrf: csrf, name, password, next }).toString(),
  });
  const set = ([] as string[]).concat(answer.headers['set-cookie'] ?? []);
  const session = set.find((c) => c.startsWith('__Host-posagent-session='))?.split(';')[0] ?? '';
  return { cookie: session, answer };
}

/** The CSRF token of a signed-in page (every form carries it). */
export function csrfOf(page: Answer): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(page.body);
  if (!m) throw new Error(`no CSRF token on the page (status ${page.status})`);
  return m[1]!;
}
