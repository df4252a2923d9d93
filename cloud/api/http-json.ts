import type { IncomingMessage, ServerResponse } from 'node:http';
import { Refusal } from '../../protocol/refusal.js';
import { markForm } from '../body-validation.js';
import { parseFormBody } from './form-body.js';
import { refusalAnswer } from './refusal-status.js';

export const MAX_BODY_BYTES = 64 * 1024;
/** How deep objects and arrays may nest in a request body (a config is 4 levels deep). */
export const MAX_JSON_DEPTH = 32;

/** True when JSON text nests objects/arrays deeper than `max` (strings skipped); linear, no recursion. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * A request body read whole: refused past `maxBytes` (413) or when it has not all arrived within
 * `deadlineMs` (408; 0: no deadline), each with the caller's words. The one body reader of the
 * cloud's HTTP edges (the REST API's JSON and forms, the portal's forms).
 */
export async function readBody(
  req: IncomingMessage,
  maxBytes: number,
  deadlineMs: number,
  say: { tooLarge(maxBytes: number): string; late(deadlineMs: number): string },
): Promise<Buffer> {
  refuseDeclaredOver(req, maxBytes, say.tooLarge(maxBytes));
  const chunks: Buffer[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const late =
    deadlineMs > 0
      ? new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Refusal('request_timeout', say.late(deadlineMs))), deadlineMs);
        })
      : undefined;
  const read = (async () => {
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) throw new Refusal('body_too_large', say.tooLarge(maxBytes));
      chunks.push(chunk as Buffer);
    }
  })();
  try {
    await (late ? Promise.race([read, late]) : read);
  } finally {
    clearTimeout(timer);
    read.catch(() => {});
  }
  return Buffer.concat(chunks);
}

/** A body whose declared length is over the limit is refused at once (413), before any of it is read. */
export function refuseDeclaredOver(
  req: Pick<IncomingMessage, 'headers'>,
  maxBytes: number,
  message: string,
): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw new Refusal('body_too_large', message);
}

/** A control character (NUL and the C0/C1 ranges): never in a name, an id or a query. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * A path parameter, percent-decoded; a malformed escape (`%zz`, a lone `%E2`) or a control
 * character (`%00`: PostgreSQL cannot even compare it) is the client's error.
 */
export function decodePathSegment(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw new Refusal(
      'invalid_path',
      `the path segment "${segment.slice(0, 64)}" is not valid percent-encoding`,
    );
  }
  if (CONTROL.test(decoded))
    throw new Refusal('invalid_path', 'a path segment contains a control character (e.g. %00)');
  return decoded;
}

/** Query parameters: none may hold a NUL character (no engine stores or compares it). */
export function checkQuery(query: URLSearchParams): URLSearchParams {
  for (const [k, v] of query)
    if (k.includes('\0') || v.includes('\0'))
      throw new Refusal(
        'invalid_request',
        `the query parameter "${k.replace(/\0/g, '')}" contains a NUL character`,
      );
  return query;
}

/** Where a parsed body holds a string with NUL (PostgreSQL's text cannot): its path, or null. */
function nulAt(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.includes('\0') ? path || '/' : null;
  if (depth > MAX_JSON_DEPTH || typeof value !== 'object' || value === null) return null;
  for (const [k, v] of Object.entries(value)) {
    if (k.includes('\0')) return `${path}/${k.replace(/\0/g, '')}`;
    const at = nulAt(v, `${path}/${k}`, depth + 1);
    if (at) return at;
  }
  return null;
}

/**
 * Reads a JSON object body (or a form-encoded one, into the same shape); an empty body is `{}`. Refuses bad JSON, a body too large,
 * or a body that has not all arrived within `deadlineMs` (408: a slow body holds a connection
 * only that long).
 */
export async function readJsonBody(
  req: IncomingMessage,
  maxBytes = MAX_BODY_BYTES,
  deadlineMs = 0,
): Promise<Record<string, unknown>> {
  const body = await readBody(req, maxBytes, deadlineMs, {
    tooLarge: (max) => `request body exceeds ${max} bytes`,
    late: (ms) => `the request body did not arrive within ${ms} ms`,
  });
  if (body.length === 0) return {};
  const text = body.toString('utf8');
  // `curl -d` (the VINR examples) sends a form; the route's schema converts its strings.
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    const form = parseFormBody(text.trim());
    const nul = nulAt(form, '');
    if (nul) throw new Refusal('invalid_request', `a form field holds a NUL character at ${nul}`);
    return markForm(form);
  }
  if (nestsDeeperThan(text, MAX_JSON_DEPTH))
    throw new Refusal('invalid_json', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Refusal('invalid_json', 'request body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Refusal('invalid_json', 'request body must be a JSON object');
  }
  const nul = nulAt(value, '');
  if (nul)
    throw new Refusal(
      'invalid_json',
      `a string in the request body holds a NUL character (\\u0000) at ${nul}`,
    );
  return value as Record<string, unknown>;
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Answers a refusal: its status and headers from the one table (refusal-status.ts), the one error body. */
export function sendError(res: ServerResponse, r: Refusal): void {
  const a = refusalAnswer(r);
  sendJson(res, a.status, a.body, a.headers);
}
