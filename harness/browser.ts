import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * A real Chromium for the portal's browser tests: Debian's (`apt-get install chromium`, which
 * .ci/run does), driven by playwright-core — no browser download. POSAGENT_CHROMIUM names another
 * binary. A missing browser fails the test with what to install; it never skips.
 */
export const CHROMIUM = process.env.POSAGENT_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `the portal's browser tests need Chromium at ${CHROMIUM}: apt-get install chromium (or set POSAGENT_CHROMIUM)`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-extensions',
      '--disable-sync',
      '--no-first-run',
      '--metrics-recording-only',
    ],
  });
}

/** A browser profile of its own (cookies apart), trusting the loopback cloud's certificate. */
export function newContext(
  browser: Browser,
  viewport = { width: 1280, height: 900 },
): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport });
}

/** Where screenshots go: test artifacts, not committed (.gitignore). */
export const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts', 'portal');

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

let axeSource: string | undefined;

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; html: string }[];
}

/**
 * axe-core's accessibility rules run in the page (WCAG 2 A/AA and best practices). Evaluated
 * through the DevTools protocol, so the portal's Content-Security-Policy (no inline script) stays
 * on while it runs.
 */
export async function accessibilityViolations(page: Page): Promise<AxeViolation[]> {
  axeSource ??= readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
  await page.evaluate(axeSource);
  // Browser-side code as a string: the harness's TypeScript has no DOM types.
  return page.evaluate<AxeViolation[]>(`(async () => {
    const r = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => ({ target: n.target, html: n.html.slice(0, 200) })),
    }));
  })()`);
}
