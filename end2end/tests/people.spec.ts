// People in a real browser: the first start's setup link, signing in (and a wrong password),
// what each role sees, the admin page's tokens and audit log, signing out.
import { expect, test } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signIn, signedIn } from './people';

const shots = 'screenshots';
mkdirSync(shots, { recursive: true });

test.describe('nobody signed in', () => {
  test.use({ storageState: { cookies: [], origins: [] } });

  test('a fresh Baton prints a setup link that creates the first admin', async ({ browser }) => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-first-'));
    const server = spawn(process.env.E2E_BINARY as string, ['serve'], {
      cwd: '..',
      env: { ...process.env, BATON_DATA_DIR: dir, BATON_ADDR: '127.0.0.1:0', BATON_CONFIG: '/dev/null', BATON_LOG: 'info' },
    });
    try {
      let out = '';
      let err = '';
      server.stdout.on('data', (chunk) => (out += chunk));
      server.stderr.on('data', (chunk) => (err += chunk));
      await expect.poll(() => /\/setup\?token=\S+/.test(out) && /listening on http:\/\/\S+/.test(err), { timeout: 30_000 }).toBe(true);
      const addr = (err.match(/listening on (http:\/\/[0-9.:]+)/) as RegExpMatchArray)[1];
      const token = (out.match(/\/setup\?token=(\S+)/) as RegExpMatchArray)[1];
      const context = await browser.newContext({ baseURL: addr });
      const page = await context.newPage();
      // Before setup every page asks to sign in.
      await page.goto('/');
      await expect(page).toHaveURL(/\/login\?next=%2F/);
      await page.goto(`/setup?token=${token}`);
      const create = page.getByRole('button', { name: 'Create admin and sign in' });
      await expect(create).toBeEnabled({ timeout: 20_000 });
      await page.getByLabel('User name').fill('boss');
      await page.getByLabel('Password (at least 8 characters)').fill('boss-password');
      await page.getByLabel('The password again').fill('boss-password');
      await page.screenshot({ path: `${shots}/setup.png`, fullPage: true });
      await create.click();
      await expect(page.getByRole('heading', { level: 1, name: 'Daily sync' })).toBeVisible();
      await expect(page.getByTestId('signed-in')).toContainText('boss');
      await expect(page.getByTestId('role')).toHaveText('admin');
      // The link works once.
      const again = await context.request.post('/api/auth/setup', {
        data: { token, username: 'other', password: 'other-password' },
        headers: { origin: addr },
      });
      expect(again.status()).toBe(403);
      await context.close();
    } finally {
      server.kill('SIGTERM');
    }
  });

  test('signing in: a wrong password is said plainly, the right one leads where the person was going', async ({ page }) => {
    await page.goto('/tasks');
    await expect(page).toHaveURL(/\/login\?next=%2Ftasks/);
    const submit = page.getByRole('button', { name: 'Sign in' });
    await expect(submit).toBeEnabled({ timeout: 20_000 });
    await page.getByLabel('User name').fill('e2e-viewer');
    await page.getByLabel('Password').fill('not-the-password');
    await submit.click();
    await expect(page.getByTestId('login-error')).toHaveText('the user name or the password is wrong');
    await page.screenshot({ path: `${shots}/login-error.png`, fullPage: true });
    await page.getByLabel('Password').fill('viewer-password');
    await submit.click();
    await expect(page).toHaveURL(/\/tasks$/);
    await expect(page.getByRole('heading', { level: 1, name: 'Tasks' })).toBeVisible();
    await expect(page.getByTestId('signed-in')).toContainText('e2e-viewer');
  });
});

test.describe('a viewer', () => {
  test.use({ storageState: signedIn('viewer') });

  test('sees the daily sync and the syncs but no button that changes them', async ({ page }) => {
    await page.goto('/');
    await expect(page.getByRole('heading', { level: 1, name: 'Daily sync' })).toBeVisible();
    await expect(page.getByTestId('role')).toHaveText('viewer');
    await expect(page.getByTestId('session')).toBeVisible();
    await expect(page.getByTestId('start')).toHaveCount(0);
    await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link')).toHaveText(['Daily sync', 'Drafts', 'Tasks', 'Syncs']);
    await page.goto('/syncs');
    await expect(page.getByRole('heading', { level: 1, name: 'Syncs' })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Run now' })).toHaveCount(0);
    await page.screenshot({ path: `${shots}/viewer-syncs.png`, fullPage: true });
    // And the server refuses it anyway.
    const refused = await page.request.post('/api/fn/run_sync', {
      form: { sync_type: 'customers' },
      headers: { origin: new URL(page.url()).origin },
    });
    expect(refused.status()).toBe(403);
  });
});

test.describe('an admin', () => {
  test.use({ storageState: signedIn('admin') });

  test('creates an API token, sees it once, finds it in the audit log, and signs out', async ({ page }) => {
    await page.goto('/admin');
    await expect(page.getByRole('heading', { level: 1, name: 'Admin' })).toBeVisible();
    await expect(page.getByTestId('users')).toContainText('e2e-staff');
    // Hydrated (its live stream is open): a click before that would send the form as a plain
    // GET and reload the page, starting hydration over.
    await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live', { timeout: 30_000 });
    const name = `ui-${Date.now()}`;
    const create = page.getByRole('button', { name: 'Create token' });
    await expect(async () => {
      await page.locator('input[name="token-name"]').fill(name);
      await create.click();
      await expect(page.getByTestId('new-token')).toContainText(name, { timeout: 2_000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.getByTestId('new-token')).toContainText('baton_');
    await expect(page.getByTestId('tokens')).toContainText(name);
    await page.screenshot({ path: `${shots}/admin.png`, fullPage: true });

    await page.getByRole('link', { name: 'Audit log' }).click();
    await expect(page.getByRole('heading', { level: 1, name: 'Audit log' })).toBeVisible();
    const row = page.getByTestId('audit').locator('tr', { hasText: `token:${name}` });
    await expect(row).toContainText('token.create');
    await expect(row).toContainText('e2e-admin');
    await page.screenshot({ path: `${shots}/audit.png`, fullPage: true });

    await page.getByTestId('sign-out').click();
    await expect(page).toHaveURL(/\/login/);
    await page.goto('/admin');
    await expect(page).toHaveURL(/\/login\?next=%2Fadmin/);
  });
});
