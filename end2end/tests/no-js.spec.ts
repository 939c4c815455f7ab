// Every data page is readable before its WebAssembly has loaded, and with JavaScript off: the
// server waits for a page's data (SsrMode::Async on the data routes) and sends it in the HTML,
// instead of streaming placeholders that only a script fills in.
import { expect, test } from '@playwright/test';
import { join } from 'node:path';

test.use({ javaScriptEnabled: false });

test('each page shows its data with JavaScript off', async ({ page }) => {
  await page.goto('/syncs');
  await expect(page.locator('.sync-table tbody tr')).toHaveCount(14);
  await expect(page.locator('tr[data-type="customers"]')).toBeVisible();
  await expect(page.locator('.loading')).toHaveCount(0);

  await page.goto('/tasks');
  await expect(page.getByText('Loading jobs…')).toHaveCount(0);
  await expect(page.locator('[data-testid="no-jobs"], ul.job-list li.job').first()).toBeVisible();

  await page.goto('/');
  await expect(page.locator('ol.steps .step-name').first()).toContainText('Import web data');
  await expect(page.getByText('Loading the daily sync…')).toHaveCount(0);

  await page.goto('/orders');
  await expect(page.getByText('Loading drafts…')).toHaveCount(0);
});

test.describe('as an admin', () => {
  test.use({ storageState: join(process.env.E2E_DATA_DIR ?? '', 'admin.json') });

  test('the admin pages show their data with JavaScript off', async ({ page }) => {
    await page.goto('/admin');
    await expect(page.getByTestId('users')).toContainText('e2e-admin');
    await expect(page.getByText('Loading people…')).toHaveCount(0);
    await page.goto('/admin/audit');
    await expect(page.getByText('Loading the log…')).toHaveCount(0);
  });
});
