import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, FORM, signInAs } from '../support/portal-client.js';
import { addOperator, type Cloud, POSAGENT_CLOUD, startCloud } from '../support/processes.js';

/**
 * Issue 21: the portal's HTTP edge as an attacker meets it, against the built cloud: sign-in CSRF
 * and open redirects, hostile forms, headers, escaping, the operator CLI's refusals.
 */
function userCli(
  cloud: Cloud,
  args: string[],
  stdin = '',
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [POSAGENT_CLOUD, 'user', ...args, '--data-dir', cloud.dataDir]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => resolve({ code, out, err }));
    p.stdin.end(stdin);
  });
}

const PASSWORD = 'correct horse battery staple';
const signIn = (cloud: Cloud, next = '/portal/terminals') => signInAs(cloud, 'alice', PASSWORD, next);

describe('the portal over HTTP, as an attacker', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud();
    await addOperator(cloud, 'alice', 'admin', PASSWORD);
  });
  afterAll(() => cloud?.stop());

  it('every page carries the security headers; the session cookie is __Host-, HttpOnly, Secure, SameSite=Strict', async () => {
    const page = await call(cloud, 'GET', '/portal/sign-in');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['cache-control']).toBe('no-store');
    const { answer, cookie } = await signIn(cloud);
    expect(answer.status).toBe(303);
    expect(cookie).toMatch(/^__Host-posagent-session=[\w-]{40,}$/);
    const set = ([] as string[])
      .concat(answer.headers['set-cookie']!)
      .find((c) => c.startsWith('__Host-posagent-session'))!;
    expect(set).toMatch(/; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  });

  it('sign-in without its CSRF cookie and token is refused, even with the right password', async () => {
    const r = await call(cloud, 'POST', '/portal/sign-in', {
      headers: FORM,
      body: new URLSearchParams({ name: 'alice', password: PASSWORD }).toString(),
    });
    expect(r.status).toBe(403);
    expect(r.body).toContain('The form expired or came from elsewhere');
    expect(r.headers['set-cookie']?.toString() ?? '').not.toContain('__Host-posagent-session');
  });

  it('never redirects off the portal after sign-in (open redirect)', async () => {
    for (const next of [
      '//evil.example/',
      'https://evil.example/',
      '/portal/\\\\evil.example',
      '/elsewhere',
      '/portal/..//evil.example',
      '/portal/\r\nX-Injected: 1',
    ]) {
      const { answer } = await signIn(cloud, next);
      expect(answer.status, next).toBe(303);
      expect(answer.headers.location, next).toBe('/portal/');
    }
  });

  it('hostile forms: too large (413), not a form (415), too many fields (400); a POST from another origin is refused', async () => {
    const { cookie } = await signIn(cloud);
    const big = await call(cloud, 'POST', '/portal/register', {
      headers: { ...FORM, cookie },
      body: `terminalName=${'x'.repeat(40 * 1024)}`,
    });
    expect(big.status).toBe(413);
    expect(big.body).toContain('a form has at most 32768 bytes');
    const json = await call(cloud, 'POST', '/portal/register', {
      headers: { 'content-type': 'application/json', cookie },
      body: '{}',
    });
    expect(json.status).toBe(415);
    const many = await call(cloud, 'POST', '/portal/register', {
      headers: { ...FORM, cookie },
      body: Array.from({ length: 100 }, (_, i) => `f${i}=1`).join('&'),
    });
    expect(many.status).toBe(400);
    const page = await call(cloud, 'GET', '/portal/register', { headers: { cookie } });
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
    const cross = await call(cloud, 'POST', '/portal/register', {
      headers: { ...FORM, cookie, origin: 'https://evil.example' },
      body: new URLSearchParams({ _csrf: csrf, terminalName: 'x', locationId: 'loc_x' }).toString(),
    });
    expect(cross.status).toBe(403);
    expect(cross.body).toContain('csrf_failed');
    // Without an Origin, a Referer from elsewhere is refused the same way.
    const referred = await call(cloud, 'POST', '/portal/register', {
      headers: { ...FORM, cookie, referer: 'https://evil.example/page' },
      body: new URLSearchParams({ _csrf: csrf, terminalName: 'x', locationId: 'loc_x' }).toString(),
    });
    expect(referred.status).toBe(403);
  });

  it('a name with markup is shown as text, never run', async () => {
    const loc = await cloud.api<{ id: string }>('POST', '/v1/locations', {
      name: '<img src=x onerror=alert(1)>',
    });
    const { cookie } = await signIn(cloud);
    const stores = await call(cloud, 'GET', '/portal/organizations/org_default', { headers: { cookie } });
    expect(stores.status).toBe(200);
    expect(stores.body).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(stores.body).not.toContain('<img src=x');
    expect(loc.status).toBe(201);
  });

  it('a signed-out poll gets 401 with HX-Redirect; a signed-out POST 401; an unknown page 404; assets need no session', async () => {
    const poll = await call(cloud, 'GET', '/portal/terminals/rows', {
      headers: { 'hx-request': 'true', 'hx-current-url': `${cloud.url}/portal/terminals?status=online` },
    });
    expect(poll.status).toBe(401);
    // Back to the page that polled, not to the fragment.
    expect(poll.headers['hx-redirect']).toBe('/portal/sign-in?next=%2Fportal%2Fterminals%3Fstatus%3Donline');
    const post = await call(cloud, 'POST', '/portal/register', { headers: FORM, body: 'terminalName=x' });
    expect(post.status).toBe(401);
    const { cookie } = await signIn(cloud);
    const missing = await call(cloud, 'GET', '/portal/nothing-here', { headers: { cookie } });
    expect(missing.status).toBe(404);
    const traversal = await call(cloud, 'GET', '/portal/assets/..%2F..%2Fcloud.db');
    expect(traversal.status).toBe(404);
    const htmx = await call(cloud, 'GET', '/portal/assets/htmx.min.js');
    expect(htmx.status).toBe(200);
    expect(htmx.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(htmx.body).toContain('htmx');
    // The REST API is untouched by the portal in front of it.
    expect((await cloud.api('GET', '/v1/terminals')).status).toBe(200);
  });

  it('user add: a short password, a taken name and a wrong data dir are refused with their reasons (exit 1); list shows no hash', async () => {
    const short = await userCli(cloud, ['add', 'bob', '--role', 'support'], 'short\n');
    expect(short.code).toBe(1);
    expect(short.err).toContain('a password needs at least 12 characters');
    const taken = await userCli(cloud, ['add', 'alice', '--role', 'support', '--json'], `${PASSWORD}\n`);
    expect(taken.code).toBe(1);
    expect(JSON.parse(taken.out)).toEqual({
      error: { code: 'operator_exists', message: 'an operator named alice exists already' },
    });
    const role = await userCli(cloud, ['add', 'bob', '--role', 'root'], `${PASSWORD}\n`);
    expect(role.code).toBe(2);
    const list = await userCli(cloud, ['list']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.out).data.map((o: { name: string }) => o.name)).toEqual(['alice']);
    expect(list.out).not.toContain('scrypt');
    const nowhere = spawn(process.execPath, [
      POSAGENT_CLOUD,
      'user',
      'list',
      '--data-dir',
      '/nonexistent/cloud',
    ]);
    let err = '';
    nowhere.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => nowhere.on('exit', r));
    expect(code).toBe(1);
    expect(err).toContain('no cloud store at /nonexistent/cloud/cloud.db');
  });
});
