import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headersOf, refusalAnswer, STATUS_OF, statusOf } from '../../../cloud/api/refusal-status.js';
import { EnrollErrorCode } from '../../../protocol/enrollment.js';
import { Refusal } from '../../../protocol/refusal.js';

const CLOUD = join(import.meta.dirname, '../../../cloud');

/** Every refusal code the cloud's sources name: `new Refusal('x'`, the refuse helpers, parseBody's code, EnrollErrorCode. */
function codesInSources(): Set<string> {
  const codes = new Set<string>();
  for (const f of readdirSync(CLOUD, { recursive: true }) as string[]) {
    if (!f.endsWith('.ts')) continue;
    const text = readFileSync(join(CLOUD, f), 'utf8');
    for (const m of text.matchAll(/(?:new Refusal|refuse|\bno)\(\s*'([a-z_]+)'/g)) codes.add(m[1]!);
    for (const m of text.matchAll(/parseBody\([^)]*,\s*'([a-z_]+)'\)/g)) codes.add(m[1]!);
    for (const m of text.matchAll(/EnrollErrorCode\.(\w+)/g))
      codes.add(EnrollErrorCode[m[1] as keyof typeof EnrollErrorCode]);
  }
  return codes;
}

describe('the REST edge: one table from refusal code to HTTP status', () => {
  it('every code the cloud refuses with has a status (none falls through to 500)', () => {
    const codes = codesInSources();
    expect(codes.size).toBeGreaterThan(40);
    const missing = [...codes].filter((c) => STATUS_OF[c] === undefined);
    expect(missing).toEqual([]);
  });

  it('the statuses GUIDE §5 answers with', () => {
    const s = (code: string, details?: Record<string, unknown>) => statusOf(new Refusal(code, 'm', details));
    expect(s('not_found')).toBe(404);
    expect(s('invalid_code')).toBe(404);
    expect(s('code_used')).toBe(409);
    expect(s('code_expired')).toBe(410);
    expect(s('rate_limited')).toBe(429);
    expect(s('unauthorized')).toBe(401);
    expect(s('cloud_busy')).toBe(503);
    expect(s('invalid_config')).toBe(400);
  });

  it('a code that means two things is told apart by details.kind, and only there', () => {
    const s = (code: string, kind?: string) => statusOf(new Refusal(code, 'm', kind ? { kind } : {}));
    expect(s('terminal_deactivated')).toBe(409);
    expect(s('terminal_deactivated', 'authentication')).toBe(403);
    expect(s('invalid_request')).toBe(400);
    expect(s('invalid_request', 'content')).toBe(422);
    expect(s('invalid_release')).toBe(400);
    expect(s('invalid_release', 'content')).toBe(422);
    // A kind the table has no entry for leaves the code's own status.
    expect(s('not_found', 'content')).toBe(404);
  });

  it("a code missing from the table is the cloud's bug: 500", () => {
    expect(statusOf(new Refusal('no_such_code', 'm'))).toBe(500);
  });

  it('Retry-After and Content-Range come from the details; the body is the one error body, without details', () => {
    expect(headersOf(new Refusal('rate_limited', 'm', { retryAfterSec: 12 }))).toEqual({
      'retry-after': '12',
    });
    expect(headersOf(new Refusal('range_not_satisfiable', 'm', { contentRange: 'bytes */10' }))).toEqual({
      'content-range': 'bytes */10',
    });
    const a = refusalAnswer(new Refusal('rate_limited', 'slow down', { retryAfterSec: 3, kind: 'x' }));
    expect(a).toEqual({
      status: 429,
      headers: { 'retry-after': '3' },
      body: { error: { code: 'rate_limited', message: 'slow down' } },
    });
    expect(JSON.stringify(a.body)).toBe('{"error":{"code":"rate_limited","message":"slow down"}}');
  });
});
