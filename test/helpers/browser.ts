import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../../bench/chromium.mjs';

export { CHROMIUM };

export interface TestBrowser {
  context: BrowserContext;
  /** Every request the pages tried to send off the loopback interface (each was aborted). */
  offLoopback: string[];
  /** Every URL requested from the daemon, in order. */
  requests: string[];
  /** Page errors and console errors (a CSP violation is reported there); answered 4xx requests are expected (problem+json shown in the page). */
  errors: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * Launches Chromium headless with a fresh profile and the network "unplugged": every request
 * whose host is not loopback is aborted and recorded.
 */
export async function launchBrowser(viewport = { width: 1280, height: 800 }): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'observd-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    // A small /dev/shm (CI containers) would crash the renderer: keep shared memory in /tmp.
    args: [...CHROMIUM_ARGS, '--disable-dev-shm-usage'],
  });
  const offLoopback: string[] = [];
  const requests: string[] = [];
  const errors: string[] = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (
      (url.protocol === 'http:' || url.protocol === 'https:' || url.protocol === 'ws:' || url.protocol === 'wss:') &&
      !LOOPBACK.has(url.hostname)
    ) {
      offLoopback.push(url.href);
      return route.abort('internetdisconnected');
    }
    requests.push(url.href);
    return route.continue();
  });
  const watch = (page: Page) => {
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d /.test(msg.text()))
        errors.push(`console: ${msg.text()}`);
    });
  };
  context.on('page', watch);
  for (const p of context.pages()) watch(p);
  return {
    context,
    offLoopback,
    requests,
    errors,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a screenshot into docs/console/ when OBSERVD_SCREENSHOTS=1 (so CI does not dirty the tree). */
export async function screenshot(page: Page, name: string, fullPage = false): Promise<void> {
  if (process.env.OBSERVD_SCREENSHOTS !== '1') return;
  const dir = join(process.cwd(), 'docs', 'console');
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage });
}
