import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AxeViolation,
  accessibilityViolations,
  launchBrowser,
  newContext,
  screenshot,
} from '../support/browser.js';
import {
  addOperator,
  agentDirs,
  type Cloud,
  enrollWithCli,
  type Proc,
  startAgent,
  startCloud,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 21: the support portal in a real Chromium, against the real cloud and real agents (the
 * built binaries). Screenshots of each page land in test-artifacts/portal/.
 */

const PASSWORD = 'correct horse battery staple';

async function signIn(page: Page, cloud: Cloud, name: string, next = '/portal/terminals'): Promise<void> {
  await page.goto(`${cloud.url}${next}`);
  await page.waitForURL(/\/portal\/sign-in/);
  await page.getByLabel('Operator name').fill(name);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL((u) => u.pathname === next);
}

const serious = (v: AxeViolation[]) => v.filter((x) => x.impact === 'serious' || x.impact === 'critical');

describe('the support portal in a browser', () => {
  let cloud: Cloud;
  let browser: Browser;
  let admin: BrowserContext;
  let page: Page;
  let agent: Proc | undefined;
  let locationId: string;
  let terminalId: string;
  let dirs: ReturnType<typeof agentDirs>;
  /** Every page visited, with what axe found: checked at the end. */
  const audited: { name: string; violations: AxeViolation[] }[] = [];

  async function visit(name: string, p: Page = page): Promise<void> {
    await screenshot(p, name);
    audited.push({ name, violations: await accessibilityViolations(p) });
  }

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
    await addOperator(cloud, 'alice', 'admin', PASSWORD);
    await addOperator(cloud, 'sam', 'support', PASSWORD);
    locationId = (await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Acme Coffee Downtown' }))
      .body.id;
    browser = await launchBrowser();
    admin = await newContext(browser);
    page = await admin.newPage();
  }, 120_000);

  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await browser?.close();
    await cloud?.stop();
  });

  it('sends a signed-out visitor to sign in, and back to the page asked for', async () => {
    const anon = await newContext(browser);
    const p = await anon.newPage();
    const r = await p.goto(`${cloud.url}/portal/terminals?status=online`);
    expect(new URL(p.url()).pathname).toBe('/portal/sign-in');
    expect(new URL(p.url()).searchParams.get('next')).toBe('/portal/terminals?status=online');
    expect(r?.status()).toBe(200);
    await visit('sign-in', p);
    // A wrong password: the same words whichever half was wrong, and no session.
    await p.getByLabel('Operator name').fill('alice');
    await p.getByLabel('Password').fill('not the password at all');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await expect(p.getByRole('alert').textContent()).resolves.toContain('wrong operator name or password');
    expect((await anon.cookies()).map((c) => c.name)).not.toContain('__Host-posagent-session');
    await anon.close();
  });

  it('signs in; the session cookie is HttpOnly, Secure and SameSite=Strict', async () => {
    await signIn(page, cloud, 'alice');
    const cookie = (await admin.cookies()).find((c) => c.name === '__Host-posagent-session');
    expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    await expect(page.getByText('alice (admin)')).toBeDefined();
  });

  it('registers a terminal; an agent enrolls with the code on the page and turns Online in the table without a reload', async () => {
    await page.goto(`${cloud.url}/portal/register`);
    await visit('register');
    await page.getByLabel('Friendly name').fill('Front counter 1');
    await page.getByLabel('Store').selectOption(locationId);
    await page.getByRole('button', { name: 'Create enrollment code' }).click();
    const code = (await page.locator('#enrollment-code').textContent())!.trim();
    expect(code).toMatch(/^[A-Z0-9-]{6,}$/);
    const src = await page.locator('img[alt^="QR code"]').getAttribute('src');
    const png = await page.request.get(`${cloud.url}${src}`);
    expect(png.status(), await png.text()).toBe(200);
    expect(png.headers()['content-type']).toBe('image/png');
    // Browser-side code as strings: the tests' TypeScript has no DOM types.
    await page.waitForFunction(
      `(() => { const img = document.querySelector('img[alt^="QR code"]'); return img && img.complete && img.naturalWidth > 100; })()`,
    );
    await visit('enrollment-code');

    await page.goto(`${cloud.url}/portal/terminals`);
    dirs = agentDirs();
    const enrolled = await enrollWithCli(cloud, code, dirs);
    expect(enrolled.code, enrolled.stdout + enrolled.stderr).toBe(0);
    terminalId = enrolled.json<{ terminalId: string }>().terminalId;
    agent = startAgent(dirs);
    // No reload: htmx swaps the rows in place, so the page's own marker survives.
    await page.evaluate('window.marker = 42');
    const row = page.locator(`tr[data-terminal-id="${terminalId}"]`);
    await row.getByText('Online').waitFor({ timeout: 30_000 });
    expect(await page.evaluate('window.marker')).toBe(42);
    await expect(row.textContent()).resolves.toContain('Front counter 1');
    await visit('terminals');
  });

  it('filters by status and searches by name', async () => {
    await page.goto(`${cloud.url}/portal/terminals?status=offline`);
    await expect(page.locator(`tr[data-terminal-id="${terminalId}"]`).count()).resolves.toBe(0);
    await page.goto(`${cloud.url}/portal/terminals?q=FRONT+counter+1`);
    await expect(page.locator(`tr[data-terminal-id="${terminalId}"]`).count()).resolves.toBe(1);
  });

  it('renames the terminal, and the audit on its page says who did it', async () => {
    await page.goto(`${cloud.url}/portal/terminals/${terminalId}`);
    await page.getByLabel('Name', { exact: true }).fill('Front counter A');
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { level: 1, name: 'Front counter A' }).waitFor();
    const api = await cloud.api<{ name: string }>('GET', `/v1/terminals/${terminalId}`);
    expect(api.body.name).toBe('Front counter A');
    await expect(page.locator('#audit-h + .table-wrap').textContent()).resolves.toMatch(
      /alice\s*terminal\.rename/,
    );
    await visit('terminal');
  });

  it('locks and unlocks: the action goes queued → completed and the lock shows on the page', async () => {
    await page.getByRole('button', { name: 'Lock' }).click();
    await page.getByRole('status').getByText('Lock queued').waitFor();
    // The live part of the page follows the action and the lock without a reload.
    await page.locator('#terminal-live .action-completed').first().waitFor({ timeout: 30_000 });
    await page.locator('#terminal-live').getByText('Locked', { exact: true }).waitFor({ timeout: 30_000 });
    await page.reload();
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.locator('#terminal-live').getByText('Unlocked', { exact: true }).waitFor({ timeout: 30_000 });
    const api = await cloud.api<{ locked: boolean }>('GET', `/v1/terminals/${terminalId}`);
    expect(api.body.locked).toBe(false);
  });

  it('Check connection: ✅ with a round trip while the agent runs; ❌ once it is killed; never refreshed by itself', async () => {
    await page.goto(`${cloud.url}/portal/terminals/${terminalId}`);
    await page.getByRole('button', { name: 'Check connection' }).click();
    await page.locator('#check-result').getByText('✅ Connected').waitFor();
    await expect(page.locator('#check-result').textContent()).resolves.toMatch(/round trip [\d.]+ ms/);
    await visit('check-connection');
    agent!.child.kill('SIGKILL');
    await agent!.exited;
    const first = await page.locator('#check-result').textContent();
    await page.getByRole('button', { name: 'Check connection' }).click();
    await page.locator('#check-result').getByText('❌ Disconnected').waitFor({ timeout: 20_000 });
    expect(first).toContain('✅');
  });

  it('reprovisions on the same record: the code from the page re-enrolls the device, the heartbeat resumes, history and escalation show it', async () => {
    await page.goto(`${cloud.url}/portal/terminals/${terminalId}`);
    await page.getByRole('link', { name: 'Reprovision…' }).click();
    await visit('reprovision-confirm');
    await page.getByRole('button', { name: 'Create reprovision code' }).click();
    const code = (await page.locator('#enrollment-code').textContent())!.trim();
    const again = await enrollWithCli(cloud, code, dirs, { extraArgs: ['--force'] });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.json<{ terminalId: string }>().terminalId).toBe(terminalId);
    agent = startAgent(dirs);
    await page.goto(`${cloud.url}/portal/terminals/${terminalId}`);
    await page.locator('#terminal-live').getByText('Online', { exact: true }).waitFor({ timeout: 30_000 });
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Front counter A');
    const history = await page.locator('#history-h + .table-wrap').textContent();
    // A SIGKILL leaves the status online until the thresholds (only a clean close is offline at once):
    // the history holds what was announced — online, with its reason.
    expect(history).toMatch(/Online\s*heartbeat/);
    const escalation = await page.locator('#escalation-text').textContent();
    expect(escalation).toContain('Organization: default (Default organization)');
    expect(escalation).toContain('Store: Acme Coffee Downtown');
    expect(escalation).toContain(`Terminal: Front counter A (${terminalId})`);
    expect(escalation).toMatch(/Last heartbeat: \d{4}-\d\d-\d\dT/);
    expect(escalation).toMatch(/Certificate expires: \d{4}-/);
    await visit('terminal-after-reprovision');
    const list = await cloud.api<{ data: { id: string }[] }>('GET', `/v1/terminals?locationId=${locationId}`);
    expect(list.body.data.map((t) => t.id)).toEqual([terminalId]);
  });

  it("a failing store config shows the API's validation message and changes nothing", async () => {
    await page.goto(`${cloud.url}/portal/organizations`);
    await visit('organizations');
    await page.getByRole('link', { name: 'Default organization' }).click();
    const store = page.locator(`tr[data-location-id="${locationId}"]`);
    // The store's counts: one active terminal, online.
    await expect(store.locator('td').nth(1).textContent()).resolves.toBe('1');
    await expect(store.locator('td').nth(2).textContent()).resolves.toBe('1');
    await visit('stores');
    await page.getByRole('link', { name: 'Store config of Acme Coffee Downtown' }).click();
    const bad = { tip: { mode: 'percentage', suggestions: [5, 10, 15, 20, 25] } };
    const fromApi = await cloud.api<{ error: { message: string } }>(
      'PUT',
      `/v1/locations/${locationId}/terminal-config`,
      bad,
    );
    expect(fromApi.status).toBeGreaterThanOrEqual(400);
    await page.getByLabel('Mode').selectOption('percentage');
    await page.getByLabel('Suggestions (up to 4)').fill('5, 10, 15, 20, 25');
    await page.getByRole('button', { name: "Save and push to the store's terminals" }).click();
    const alert = await page.getByRole('alert').textContent();
    expect(alert).toContain(fromApi.body.error.message);
    // What was typed stays in the form, to be corrected.
    await expect(page.getByLabel('Suggestions (up to 4)').inputValue()).resolves.toBe('5, 10, 15, 20, 25');
    await visit('store-config');
    const template = await cloud.api<{ template: unknown }>(
      'GET',
      `/v1/locations/${locationId}/terminal-config`,
    );
    expect(template.body.template).toEqual({});
    // Corrected, it saves, and the store's terminal applies it.
    await page.getByLabel('Suggestions (up to 4)').fill('10, 15, 20');
    await page.getByLabel('Idle message (up to 60 characters)').fill('Welcome to Acme');
    await page.getByRole('button', { name: "Save and push to the store's terminals" }).click();
    await page.getByRole('status').getByText('Saved').waitFor();
    const saved = await cloud.api<{ template: unknown }>(
      'GET',
      `/v1/locations/${locationId}/terminal-config`,
    );
    expect(saved.body.template).toEqual({
      tip: { mode: 'percentage', suggestions: [10, 15, 20] },
      display: { idleMessage: 'Welcome to Acme' },
    });
    await waitFor(async () => {
      const c = await cloud.api<{ version: number; appliedVersion: number | null }>(
        'GET',
        `/v1/terminals/${terminalId}/config`,
      );
      return c.body.appliedVersion === c.body.version || undefined;
    }, 'the terminal applied the store template');
  });

  it('refuses a POST without the CSRF token, and nothing changes', async () => {
    const r = await page.request.post(`${cloud.url}/portal/terminals/${terminalId}/rename`, {
      form: { name: 'Hijacked' },
      headers: { origin: cloud.url },
    });
    expect(r.status()).toBe(403);
    expect(await r.text()).toContain('csrf_failed');
    const api = await cloud.api<{ name: string }>('GET', `/v1/terminals/${terminalId}`);
    expect(api.body.name).toBe('Front counter A');
  });

  it('refuses the support role an admin action (decommission), and audits the refusal', async () => {
    const support = await newContext(browser);
    const p = await support.newPage();
    await signIn(p, cloud, 'sam');
    await p.goto(`${cloud.url}/portal/terminals/${terminalId}`);
    await expect(p.getByRole('link', { name: 'Decommission…' }).count()).resolves.toBe(0);
    const r = await p.goto(`${cloud.url}/portal/terminals/${terminalId}/deactivate`);
    expect(r?.status()).toBe(403);
    await expect(p.getByRole('alert').textContent()).resolves.toContain('the support role may not do this');
    await visit('forbidden', p);
    // The form an admin would post, posted by support with a valid token: refused, audited.
    const csrf = await p.locator('input[name=_csrf]').first().getAttribute('value');
    const post = await p.request.post(`${cloud.url}/portal/terminals/${terminalId}/deactivate`, {
      form: { _csrf: csrf!, reason: 'not mine to do' },
      headers: { origin: cloud.url },
    });
    expect(post.status()).toBe(403);
    const api = await cloud.api<{ status: string }>('GET', `/v1/terminals/${terminalId}`);
    expect(api.body.status).not.toBe('deactivated');
    await page.goto(`${cloud.url}/portal/terminals/${terminalId}`);
    await expect(page.locator('#audit-h + .table-wrap').textContent()).resolves.toMatch(
      /sam\s*terminal\.deactivate.*refused/s,
    );
    await support.close();
  });

  it('admin sees the operators and the audit log; support is refused the page', async () => {
    await page.goto(`${cloud.url}/portal/operators`);
    await expect(page.locator('main').textContent()).resolves.toMatch(/alice\s*admin/);
    await expect(page.locator('main').textContent()).resolves.toMatch(/sam\s*terminal\.deactivate/);
    await visit('operators');
    const support = await newContext(browser);
    const p = await support.newPage();
    await signIn(p, cloud, 'sam');
    await expect(p.getByRole('link', { name: 'Operators' }).count()).resolves.toBe(0);
    expect((await p.goto(`${cloud.url}/portal/operators`))?.status()).toBe(403);
    await support.close();
  });

  it('reads without JavaScript', async () => {
    const noJs = await browser.newContext({ ignoreHTTPSErrors: true, javaScriptEnabled: false });
    const p = await noJs.newPage();
    await signIn(p, cloud, 'sam');
    await expect(p.locator(`tr[data-terminal-id="${terminalId}"]`).textContent()).resolves.toContain(
      'Front counter A',
    );
    await noJs.close();
  });

  it('fits a phone', async () => {
    const phone = await newContext(browser, { width: 390, height: 844 });
    const p = await phone.newPage();
    await signIn(p, cloud, 'sam');
    const overflow = await p.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    await visit('terminals-phone', p);
    await phone.close();
  });

  it('every page visited has no serious accessibility violation (axe-core)', () => {
    expect(audited.length).toBeGreaterThanOrEqual(13);
    const found = audited.flatMap((a) => serious(a.violations).map((v) => ({ page: a.name, ...v })));
    expect(found).toEqual([]);
  });

  it('signs out: the session is gone from the server, not just the cookie', async () => {
    const cookie = (await admin.cookies()).find((c) => c.name === '__Host-posagent-session')!;
    await page.goto(`${cloud.url}/portal/terminals`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/portal\/sign-in/);
    const stale = await newContext(browser);
    await stale.addCookies([{ ...cookie }]);
    const p = await stale.newPage();
    await p.goto(`${cloud.url}/portal/terminals`);
    expect(new URL(p.url()).pathname).toBe('/portal/sign-in');
    await stale.close();
  });
});
