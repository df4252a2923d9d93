import { existsSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  enrollWithCli,
  newEnrollmentCode,
  startCloud,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/** Issue 3: wrong, expired and reused codes → clear error, exit 1, nothing written to the state dir. */
describe('enrollment refusals', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud(['--enroll-max-failures', '5']);
  });
  afterAll(() => cloud?.stop());

  async function refused(code: string, expectedCode: string, expectedText: RegExp) {
    const dirs = agentDirs();
    const r = await enrollWithCli(cloud, code, dirs);
    expect(r.code).toBe(1);
    const err = r.json<{ error: { code: string; message: string } }>().error;
    expect(err.code).toBe(expectedCode);
    expect(err.message).toMatch(expectedText);
    // Nothing written: not even the state dir exists.
    expect(existsSync(dirs.stateDir)).toBe(false);
    expect(readdirSync(dirname(dirs.stateDir))).toEqual(['agent.json']);
    return r;
  }

  it('refuses a wrong code', async () => {
    const r = await refused('ZZZZ-ZZZZ', 'invalid_code', /ZZZZ-ZZZZ is not recognised/);
    expect(r.json<{ error: { hint: string } }>().error.hint).toMatch(/ABCD-EFGH/);
  });

  it('refuses an expired code', async () => {
    const { code, expiresAt } = await newEnrollmentCode(cloud, 'Till 2', 1);
    // REST times are Unix seconds; the refusal says the moment in ISO 8601.
    await waitFor(() => Date.now() > (expiresAt + 1) * 1000, 'the code to expire');
    await refused(
      code,
      'code_expired',
      new RegExp(`expired at ${new Date(expiresAt * 1000).toISOString().slice(0, 16)}`),
    );
  });

  it('refuses a code that was already used, and the human output says why', async () => {
    const { code } = await newEnrollmentCode(cloud, 'Till 3');
    const first = agentDirs();
    expect((await enrollWithCli(cloud, code, first, { human: true })).code).toBe(0);
    await refused(code, 'code_used', /already used/);
    const human = await enrollWithCli(cloud, code, agentDirs(), { human: true });
    expect(human.code).toBe(1);
    expect(human.stderr).toMatch(/error: enrollment failed: enrollment code .* was already used/);
    expect(human.stderr).toMatch(/hint: generate a new enrollment code/);
  });

  it('refuses to enroll an enrolled terminal again without --force (exit 5), identity unchanged', async () => {
    const a = await enrollAgent(cloud);
    const { code } = await newEnrollmentCode(cloud, 'Again');
    const r = await enrollWithCli(cloud, code, a.dirs);
    expect(r.code).toBe(5);
    expect(r.json<{ error: { code: string } }>().error.code).toBe('already_enrolled');
    const s = await cli(['status', '--json', ...a.dirs.flags]);
    expect(s.json<{ terminalId: string }>().terminalId).toBe(a.terminalId);
  });

  it('usage errors exit 2', async () => {
    const r = await cli(['enroll', '--code', 'ABCD-EFGH', '--json', ...agentDirs().flags]);
    expect(r.code).toBe(2);
    expect(r.json<{ error: { message: string } }>().error.message).toMatch(/--cloud/);
    expect((await cli(['enroll', '--no-such-flag'])).code).toBe(2);
  });

  it('rate-limits failed attempts per address (429 rate_limited), even for a valid code', async () => {
    // A separate cloud so the other tests' failures do not count here.
    const c = await startCloud(['--enroll-max-failures', '3']);
    try {
      const bad = { method: 'code', code: 'NOPE-NOPE', csr: 'x' };
      for (let i = 0; i < 3; i++) expect((await c.api('POST', '/v1/enroll', bad, null)).status).toBe(404);
      const limited = await c.api<{ error: { code: string; message: string } }>(
        'POST',
        '/v1/enroll',
        bad,
        null,
      );
      expect(limited.status).toBe(429);
      expect(limited.body.error.code).toBe('rate_limited');
      const { code } = await newEnrollmentCode(c);
      const dirs = agentDirs();
      const r = await enrollWithCli(c, code, dirs);
      expect(r.code).toBe(1);
      expect(r.json<{ error: { code: string; message: string } }>().error).toMatchObject({
        code: 'rate_limited',
      });
      expect(existsSync(dirs.stateDir)).toBe(false);
    } finally {
      await c.stop();
    }
  });
});
