import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from '../../protocol/refusal.js';
import { readBody } from '../api/http-json.js';
import type { SafeHtml } from './html.js';

/** The session cookie: `__Host-` (Secure, Path=/, no Domain), HttpOnly, SameSite=Strict. */
export const SESSION_COOKIE = '__Host-posagent-session';
/** The sign-in form's CSRF token before there is a session (double submit: cookie = form field). */
export const SIGN_IN_COOKIE = '__Host-posagent-signin';
/** Form bodies of the portal are small: a rename, a config template. */
export const MAX_FORM_BYTES = 32 * 1024;
const MAX_FIELDS = 64;

/** Headers on every portal answer: no framing, no sniffing, scripts and styles only from the portal itself. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
  'strict-transport-security': 'max-age=31536000',
};

export function cookieOf(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function setCookie(name: string, value: string, maxAgeSec?: number): string {
  const age = maxAgeSec === undefined ? '' : `; Max-Age=${maxAgeSec}`;
  return `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=Strict${age}`;
}

export const clearCookie = (name: string) => setCookie(name, '', 0);

/** Reads an `application/x-www-form-urlencoded` body (the portal's forms; htmx sends the same). */
export async function readForm(req: IncomingMessage, deadlineMs: number): Promise<URLSearchParams> {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    throw new Refusal(
      'unsupported_media_type',
      'the portal takes form posts (application/x-www-form-urlencoded)',
    );
  const body = await readBody(req, MAX_FORM_BYTES, deadlineMs, {
    tooLarge: (max) => `a form has at most ${max} bytes`,
    late: (ms) => `the form did not arrive within ${ms} ms`,
  });
  const form = new URLSearchParams(body.toString('utf8'));
  if ([...form.keys()].length > MAX_FIELDS)
    throw new Refusal('invalid_request', `a form has at most ${MAX_FIELDS} fields`);
  return form;
}

export function sendPage(
  res: ServerResponse,
  status: number,
  page: SafeHtml,
  headers: Record<string, string | string[]> = {},
): void {
  const body = Buffer.from(page.text);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'text/html; charset=utf-8',
    'content-length': body.length,
    ...headers,
  });
  res.end(body);
}

/** A 303 to `location` (after a form post, so that reload does not post again); htmx follows it too. */
export function redirect(
  res: ServerResponse,
  location: string,
  headers: Record<string, string | string[]> = {},
): void {
  res.writeHead(303, { ...SECURITY_HEADERS, location, 'content-length': 0, ...headers });
  res.end();
}

export function sendAsset(res: ServerResponse, contentType: string, body: Buffer): void {
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': contentType,
    'content-length': body.length,
    'cache-control': 'public, max-age=3600',
  });
  res.end(body);
}

/**
 * The request comes from the portal's own pages: its Origin (or, without one, its Referer) is the
 * request's host. Neither header (a script, curl) is let through: the CSRF token still decides.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const host = req.headers.host;
  const self = `https://${host}`;
  const origin = req.headers.origin;
  if (origin !== undefined) return typeof host === 'string' && origin === self;
  const referer = req.headers.referer;
  if (referer === undefined) return true;
  return typeof host === 'string' && (referer === self || referer.startsWith(`${self}/`));
}
