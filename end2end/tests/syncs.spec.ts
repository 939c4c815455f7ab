// The Syncs page in a real browser against the real engine: run a sync now and watch it go
// through running to succeeded live, and cancel one while it runs.
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { planOutage } from './demo';

const shots = 'screenshots';
mkdirSync(shots, { recursive: true });

/** Opens the Syncs page and waits until it has hydrated and its live stream is open. */
async function openSyncs(page: Page) {
  await page.goto('/syncs');
  await expect(page.getByRole('heading', { level: 1, name: 'Syncs' })).toBeVisible();
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live');
}

test('every sync type is listed, highest priority first, with the lock free', async ({ page }) => {
  // The server's HTML already carries the table.
  const html = await (await page.request.get('/syncs')).text();
  expect(html).toContain('sync-table');
  await openSyncs(page);
  await expect(page.locator('.sync-table tbody tr')).toHaveCount(14);
  await expect(page.locator('.sync-table tbody tr .type-name')).toHaveText([
    'export-drafts', 'export-orders', 'web-export', 'orders', 'customers', 'ddt', 'invoices', 'prices', 'products',
    'employee-changes', 'employee-history', 'employee-snapshot', 'records', 'validate',
  ]);
  // No [connections] configured: the page says plainly that this is the demo ERP.
  await expect(page.getByTestId('demo-banner')).toContainText('Demo mode');
  await expect(page.getByTestId('demo-banner')).toContainText('http://127.0.0.1:');
});

test('Run now starts a sync that shows running with progress, then succeeded', async ({ page }) => {
  await openSyncs(page);
  const row = page.locator('tr[data-type="products"]');
  await row.getByRole('button', { name: 'Run now' }).click();
  await expect(row).toHaveAttribute('data-state', 'running');
  await expect(page.getByTestId('current-job')).toHaveAttribute('data-type', 'products');
  await expect(row.getByRole('progressbar')).toBeVisible();
  await page.screenshot({ path: `${shots}/syncs-running.png`, fullPage: true });
  await expect(row).toHaveAttribute('data-state', 'success', { timeout: 15_000 });
  await expect(page.getByTestId('mutex-free')).toBeVisible();
  await expect(row.getByRole('button', { name: 'Run now' })).toBeEnabled();
  await page.screenshot({ path: `${shots}/syncs-succeeded.png`, fullPage: true });
});

test('a running sync can be cancelled from its row', async ({ page }) => {
  await openSyncs(page);
  const row = page.locator('tr[data-type="orders"]');
  // The demo ERP answers the next orders requests 503 (retried after 1 s each), so the pull runs
  // long enough to be cancelled even when it has little to fetch.
  await planOutage(page, 'orders', 503, 5);
  await row.getByRole('button', { name: 'Run now' }).click();
  await expect(row).toHaveAttribute('data-state', 'running');
  await row.getByRole('button', { name: 'Cancel' }).click();
  // The job ends cancelled once its task stops.
  await expect
    .poll(async () => (await (await page.request.get('/api/jobs?sync_type=orders&limit=1')).json()).jobs[0].state)
    .toBe('cancelled');
  // The row is back to what it was before: idle, or the success of an earlier run (the daily sync's).
  await expect(row).toHaveAttribute('data-state', /^(idle|success)$/);
  await expect(row.getByRole('button', { name: 'Run now' })).toBeEnabled();
  const jobs = await (await page.request.get('/api/jobs?sync_type=orders&limit=1')).json();
  expect(jobs.jobs[0].source).toBe('manual');
});
