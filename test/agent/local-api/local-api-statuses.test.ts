import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalApi } from '../../../agent/local-api/local-api.js';
import { localApiRequest } from '../../../agent/local-api/local-api-client.js';
import { LOCAL_API_STATUS, localApiStatus } from '../../../agent/local-api/local-api-statuses.js';
import { parseErrorBody, Refusal } from '../../../protocol/refusal.js';
import { tempDir } from '../../support/processes.js';

const ROOT = join(import.meta.dirname, '../../..');
const AGENT_SIDE = ['agent', 'enroll', 'identity', 'cloud-access', 'diagnostics'];

/** Every `new Refusal('code', …)` in the agent side's source. */
function codesThrown(): Map<string, string> {
  const found = new Map<string, string>();
  for (const folder of AGENT_SIDE)
    for (const f of readdirSync(join(ROOT, folder), { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      const text = readFileSync(join(ROOT, folder, f), 'utf8');
      for (const m of text.matchAll(/new Refusal\(\s*'([a-z0-9_]+)'/g)) found.set(m[1]!, `${folder}/${f}`);
    }
  return found;
}

describe('local API: the one status table', () => {
  it('has a status for every code the agent refuses with', () => {
    const thrown = codesThrown();
    expect(thrown.size).toBeGreaterThan(15);
    const missing = [...thrown].filter(([code]) => localApiStatus(code) === undefined);
    expect(missing).toEqual([]);
  });

  it('keeps the statuses of the contract (GUIDE §5.2)', () => {
    expect(LOCAL_API_STATUS).toMatchObject({
      idempotency_conflict: 409,
      invalid_transaction: 422,
      terminal_locked: 423,
      offline_disabled: 409,
      offline_limit_exceeded: 409,
      not_found: 404,
      internal_error: 500,
    });
    expect(localApiStatus('toString')).toBeUndefined();
    expect(localApiStatus('no_such_code')).toBeUndefined();
  });

  describe('on a real socket', () => {
    let api: LocalApi | undefined;
    afterEach(() => api?.stop());
    const logged: string[] = [];
    const log = { error: (_o: object, m: string) => logged.push(m), warn: () => {} };

    it('answers a refusal with its status and the one error body; an unknown code is a 500', async () => {
      const socket = join(tempDir('statuses'), 'api.sock');
      api = new LocalApi(
        socket,
        [
          {
            method: 'GET',
            pattern: /^\/locked$/,
            handle: () => {
              throw new Refusal('terminal_locked', 'the terminal is locked');
            },
          },
          {
            method: 'GET',
            pattern: /^\/unknown$/,
            handle: () => {
              throw new Refusal('not_in_the_table', 'a code the table lacks');
            },
          },
          {
            method: 'GET',
            pattern: /^\/broken$/,
            handle: () => {
              throw new Error('a bug');
            },
          },
        ],
        log,
      );
      await api.start();
      const locked = await localApiRequest<unknown>(socket, 'GET', '/locked');
      expect(locked.status).toBe(423);
      expect(locked.body).toEqual({ error: { code: 'terminal_locked', message: 'the terminal is locked' } });
      expect(parseErrorBody(locked.body)?.code).toBe('terminal_locked');
      for (const path of ['/unknown', '/broken']) {
        const r = await localApiRequest<unknown>(socket, 'GET', path);
        expect(r.status).toBe(500);
        expect(r.body).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
      }
      expect(logged).toEqual([
        'local API refusal with a code the status table lacks',
        'local API handler failed',
      ]);
      const none = await localApiRequest<unknown>(socket, 'GET', '/nothing');
      expect(none).toEqual({
        status: 404,
        body: { error: { code: 'not_found', message: 'no route /nothing' } },
      });
      const wrong = await localApiRequest<unknown>(socket, 'POST', '/locked');
      expect(wrong.status).toBe(405);
      expect(parseErrorBody(wrong.body)?.code).toBe('method_not_allowed');
    });
  });
});
