import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { chromium } from 'playwright-core';
import { startApp, TEST_ADMIN } from './helpers/app.js';

/** Debian's chromium package; `.ci/run` installs it, a bare Node.js machine may lack it. */
const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-sync',
  '--disable-quic',
];
const SCREENSHOTS = join(process.cwd(), '.tmp');

if (!existsSync(CHROMIUM)) {
  test.skip(`Swagger UI in headless Chromium — skipped: ${CHROMIUM} is missing (apt-get install chromium)`, () => {});
} else {
  test('the Swagger UI lists every user operation, and "Try it out" on login returns a token', async (t) => {
    const app = await startApp('sqlite');
    t.teardown(() => app.close());
    const profile = mkdtempSync(join(tmpdir(), 'tr-chromium-'));
    t.teardown(() => rmSync(profile, { recursive: true, force: true }));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
    });
    t.teardown(() => browser.close());
    // The UI must work with no CDN: every request leaves for this app only.
    const outside: string[] = [];
    const failed: string[] = [];
    await browser.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(app.url)) return route.continue();
      outside.push(url);
      return route.abort();
    });
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(20_000);
    page.on('response', (res) => {
      if (res.status() >= 400) failed.push(`${res.status()} ${res.url()}`);
    });

    await page.goto(`${app.url}/docs`);
    await page.locator('.opblock').first().waitFor();

    const shown = await page
      .locator('.opblock-summary')
      .evaluateAll((els) =>
        els.map(
          (el) =>
            `${el.querySelector('.opblock-summary-method')?.textContent} ${el.querySelector('.opblock-summary-path')?.getAttribute('data-path')}`,
        ),
      );
    const documented = Object.entries((await app.request('GET', '/openapi.json')).body.paths as object).flatMap(
      ([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    t.log(`${shown.length} operations listed`);
    t.deepEqual([...shown].sort(), [...documented].sort());
    for (const op of [
      'POST /api/auth/register',
      'POST /api/auth/login',
      'POST /api/auth/refresh',
      'POST /api/auth/logout',
      'GET /api/users/me',
      'GET /api/admin/users',
      'GET /api/credits/balance',
      'GET /api/credits/transactions',
      'POST /api/admin/credits',
    ]) {
      t.true(shown.includes(op), `${op} is listed`);
    }

    const login = page.locator('.opblock-post', { has: page.locator('[data-path="/api/auth/login"]') });
    await login.locator('.opblock-summary').click();
    await login.getByRole('button', { name: 'Try it out' }).click();
    await login.locator('textarea.body-param__text').fill(JSON.stringify(TEST_ADMIN));
    await login.getByRole('button', { name: 'Execute' }).click();

    const live = login.locator('.live-responses-table .response');
    await live.first().waitFor();
    const status = (await live.locator('.response-col_status').first().textContent())?.trim();
    const body = await live
      .locator('.response-col_description .microlight, .response-col_description pre')
      .first()
      .textContent();
    mkdirSync(SCREENSHOTS, { recursive: true });
    const shot = join(SCREENSHOTS, 'swagger-ui-login.png');
    await login.locator('.live-responses-table').evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await page.screenshot({ path: shot });
    t.log(`screenshot: ${shot}`);

    t.is(status, '200');
    const parsed = JSON.parse(body ?? '');
    t.true(parsed.success);
    t.regex(parsed.data.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    t.is(parsed.data.user.email, TEST_ADMIN.email);
    t.is(parsed.data.user.role, 'admin');
    // The only outside request is the web font the Swagger UI page asks for; it renders without it.
    t.log(`blocked outside requests: ${outside.length ? outside.join(', ') : 'none'}`);
    t.deepEqual(
      failed.filter((f) => !f.endsWith('/favicon.png')),
      [],
      'every asset of the page is served by the app',
    );
  });
}
