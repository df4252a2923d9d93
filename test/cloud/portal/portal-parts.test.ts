import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escapeHtml, html } from '../../../cloud/portal/html.js';
import { OperatorAccounts } from '../../../cloud/portal/operator-accounts.js';
import { hashPassword, verifyPassword } from '../../../cloud/portal/passwords.js';
import { mayDo, PORTAL_ACTIONS } from '../../../cloud/portal/portal-roles.js';
import { PortalSessions, sameToken } from '../../../cloud/portal/portal-sessions.js';
import { openSqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import { isRefusal, type Refusal } from '../../../protocol/refusal.js';
import { tempDir } from '../../support/processes.js';

/** Issue 21: the portal's parts in-process, over a real SQLite store. */
function refusalOf(fn: () => Promise<unknown>): Promise<Refusal> {
  return fn().then(
    () => {
      throw new Error('expected a refusal');
    },
    (err: unknown) => {
      if (!isRefusal(err)) throw err;
      return err;
    },
  );
}

function parts(clock = { now: 1_000_000 }) {
  const store = openSqliteStore(join(tempDir('portal'), 'cloud.db'));
  const now = () => clock.now;
  const accounts = new OperatorAccounts({
    operators: store.operators,
    sessions: store.portalSessions,
    failures: store.enrollmentLimits,
    limits: { perSource: 3, perAccount: 4, global: 100, windowMs: 60_000 },
    now,
  });
  const sessions = new PortalSessions({
    sessions: store.portalSessions,
    operators: store.operators,
    limits: { idleMs: 10_000, maxMs: 100_000 },
    now,
  });
  return { store, accounts, sessions, clock };
}

describe('html', () => {
  it('escapes every value that is not itself html, arrays included', () => {
    const name = `<script>alert("x")</script>'&\``;
    expect(html`<td>${name}</td>`.text).toBe(
      '<td>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;&#96;</td>',
    );
    expect(html`<ul>${['<a>', html`<li>ok</li>`]}</ul>`.text).toBe('<ul>&lt;a&gt;<li>ok</li></ul>');
    expect(html`${null}${undefined}${false}${0}`.text).toBe('0');
    expect(escapeHtml('" onmouseover="x')).toBe('&quot; onmouseover=&quot;x');
  });
});

describe('passwords', () => {
  it('scrypt with a salt of its own: the same password hashes differently, verifies, and a wrong one does not', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[\w-]+\$[\w-]+$/);
    await expect(verifyPassword('correct horse battery', a)).resolves.toBe(true);
    await expect(verifyPassword('correct horse batterY', a)).resolves.toBe(false);
    await expect(verifyPassword('correct horse battery', 'md5$abc')).resolves.toBe(false);
  });

  it('refuses a password too short or too long, with the rule in the message', async () => {
    const short = await refusalOf(() => hashPassword('short'));
    expect(short.code).toBe('weak_password');
    expect(short.message).toBe('a password needs at least 12 characters (it had 5)');
    expect((await refusalOf(() => hashPassword('x'.repeat(257)))).message).toContain('at most 256');
  });
});

describe('roles', () => {
  it('support looks, checks, reboots, locks, renews and reprovisions; only admin deactivates, replaces, configures, publishes, manages', () => {
    for (const a of [
      'view',
      'terminal.check_connection',
      'terminal.reboot',
      'terminal.lock',
      'terminal.unlock',
      'terminal.rotate_certificate',
      'terminal.reprovision',
    ] as const)
      expect(mayDo('support', a), a).toBe(true);
    for (const a of [
      'terminal.deactivate',
      'terminal.decommission',
      'terminal.replace',
      'terminal.configure',
      'location.configure',
      'release.publish',
      'operator.manage',
      'webhook.manage',
    ] as const)
      expect(mayDo('support', a), a).toBe(false);
    for (const a of Object.keys(PORTAL_ACTIONS) as (keyof typeof PORTAL_ACTIONS)[])
      expect(mayDo('admin', a), a).toBe(true);
  });
});

describe('operator accounts', () => {
  it('adds once; a name taken, a bad name or an unknown role is refused and nothing is stored', async () => {
    const { accounts, store } = parts();
    await accounts.add('alice', 'admin', 'correct horse battery');
    expect(
      (await refusalOf(async () => await accounts.add('alice', 'support', 'another long password'))).code,
    ).toBe('operator_exists');
    expect(
      (await refusalOf(async () => await accounts.add('<b>', 'admin', 'correct horse battery'))).code,
    ).toBe('invalid_request');
    const role = await refusalOf(async () => await accounts.add('bob', 'root', 'correct horse battery'));
    expect(role.message).toBe('role must be one of admin, support (got "root")');
    expect((await store.operators.list()).map((o) => [o.name, o.role])).toEqual([['alice', 'admin']]);
  });

  it('a wrong password and an unknown name get the same refusal; past the budget, 429 even with the right password', async () => {
    const { accounts } = parts();
    await accounts.add('alice', 'admin', 'correct horse battery');
    const unknown = await refusalOf(
      async () => await accounts.signIn('mallory', 'whatever it is', '10.0.0.1'),
    );
    const wrong = await refusalOf(async () => await accounts.signIn('alice', 'whatever it is', '10.0.0.1'));
    expect([unknown.code, unknown.message]).toEqual([wrong.code, wrong.message]);
    expect(wrong).toMatchObject({ code: 'sign_in_failed', message: 'wrong operator name or password' });
    await refusalOf(async () => await accounts.signIn('alice', 'whatever it is', '10.0.0.1'));
    const limited = await refusalOf(
      async () => await accounts.signIn('alice', 'correct horse battery', '10.0.0.1'),
    );
    expect(limited.code).toBe('rate_limited');
    expect(limited.details.retryAfterSec).toBeGreaterThan(0);
    // Another address is not refused for this one's failures…
    await expect(accounts.signIn('alice', 'correct horse battery', '10.0.0.2')).resolves.toMatchObject({
      name: 'alice',
    });
  });

  it('guesses spread over addresses are bounded per account', async () => {
    const { accounts } = parts();
    await accounts.add('alice', 'admin', 'correct horse battery');
    for (let i = 0; i < 4; i++)
      await refusalOf(async () => await accounts.signIn('alice', 'guess guess guess', `10.0.1.${i}`));
    const limited = await refusalOf(
      async () => await accounts.signIn('alice', 'correct horse battery', '10.0.2.1'),
    );
    expect(limited.code).toBe('rate_limited');
  });
});

describe('portal sessions', () => {
  it('a token resolves to its operator with the role of now; the store holds only its hash', async () => {
    const { accounts, sessions, store } = parts();
    await accounts.add('alice', 'admin', 'correct horse battery');
    const { token } = await sessions.open('alice');
    expect(await sessions.resolve(token)).toMatchObject({ operator: 'alice', role: 'admin' });
    expect(
      JSON.stringify(await store.portalSessions.get((await sessions.resolve(token))!.tokenHash)),
    ).not.toContain(token);
    await accounts.setRole('alice', 'support');
    expect((await sessions.resolve(token))?.role).toBe('support');
    expect(await sessions.resolve('nonsense')).toBeUndefined();
    expect(await sessions.resolve('x'.repeat(10_000))).toBeUndefined();
  });

  it('expires when idle, and at its absolute limit even when used', async () => {
    const { accounts, sessions, clock } = parts();
    await accounts.add('alice', 'admin', 'correct horse battery');
    const idle = (await sessions.open('alice')).token;
    clock.now += 10_001;
    expect(await sessions.resolve(idle)).toBeUndefined();
    const busy = (await sessions.open('alice')).token;
    for (let i = 0; i < 11; i++) {
      clock.now += 9_000;
      expect(await sessions.resolve(busy), `after ${i} steps`).toBeDefined();
    }
    clock.now += 9_000;
    expect(await sessions.resolve(busy)).toBeUndefined();
  });

  it('a new password or removal signs every session of that operator out', async () => {
    const { accounts, sessions } = parts();
    await accounts.add('alice', 'admin', 'correct horse battery');
    const a = (await sessions.open('alice')).token;
    await accounts.setPassword('alice', 'a brand new long password');
    expect(await sessions.resolve(a)).toBeUndefined();
    const b = (await sessions.open('alice')).token;
    await accounts.remove('alice');
    expect(await sessions.resolve(b)).toBeUndefined();
  });

  it('CSRF tokens compare in constant time and never match a missing value', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abd', 'abc')).toBe(false);
    expect(sameToken('ab', 'abc')).toBe(false);
    expect(sameToken(undefined, 'abc')).toBe(false);
  });
});
