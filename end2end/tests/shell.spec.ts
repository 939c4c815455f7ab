// The web shell in a real browser: server rendering, hydration, client routing, and live events
// over SSE and, when SSE is blocked, by polling.
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { blockEventStream } from './live';

const shots = 'screenshots';
mkdirSync(shots, { recursive: true });

/** Opens the activity drawer; clicks until the WASM has hydrated and the click takes effect. */
async function openActivity(page: Page) {
  const toggle = page.getByRole('button', { name: /server activity/ });
  await expect(async () => {
    if ((await toggle.getAttribute('aria-expanded')) !== 'true') {
      await toggle.click();
    }
    await expect(toggle).toHaveAttribute('aria-expanded', 'true', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
}

test('the home page is server-rendered, then hydrates and reacts to a click', async ({ page }) => {
  // Without JavaScript the server's HTML alone carries the page.
  const response = await page.request.get('/');
  expect(response.status()).toBe(200);
  expect(await response.text()).toContain('Daily sync');

  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Daily sync' })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link')).toHaveText([
    'Daily sync',
    'Order form',
    'Drafts',
    'Tasks',
    'Syncs',
  ]);
  await expect(page).toHaveTitle('Daily sync · Baton');
  await openActivity(page);
  await expect(page.getByRole('list', { name: 'Recent server events' })).toBeVisible();
});

test('a heartbeat arrives over server-sent events and is shown', async ({ page }) => {
  await page.goto('/');
  const status = page.locator('.live-status');
  await expect(status).toHaveAttribute('data-connection', 'live');
  await expect(status.getByText('Live')).toBeVisible();
  await expect(page.getByTestId('last-heartbeat')).toContainText('heartbeat');
  await openActivity(page);
  const row = page.locator('.activity-row[data-event="heartbeat"]').first();
  await expect(row).toContainText('Server alive, database reachable');
  await page.screenshot({ path: `${shots}/live-sse.png`, fullPage: true });
});

test('with /api/events blocked the page falls back to polling and still shows heartbeats', async ({ page }) => {
  const blocked = await blockEventStream(page);
  await page.goto('/');
  const status = page.locator('.live-status');
  await expect(status).toHaveAttribute('data-connection', 'polling', { timeout: 20_000 });
  await expect(page.getByTestId('last-heartbeat')).toContainText('heartbeat', { timeout: 15_000 });
  await openActivity(page);
  await expect(page.locator('.activity-row[data-event="heartbeat"]').first()).toBeVisible();
  expect(blocked()).toBeGreaterThan(0);
  await page.screenshot({ path: `${shots}/live-polling.png`, fullPage: true });
});

test('navigation happens in the page, keeping its state', async ({ page }) => {
  await page.goto('/');
  await openActivity(page);
  await page.getByRole('link', { name: 'Tasks' }).click();
  await expect(page).toHaveURL(/\/tasks$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Tasks' })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Tasks' })).toHaveAttribute('aria-current', 'page');
  // A full reload would have closed the drawer again.
  await expect(page.getByRole('button', { name: /server activity/ })).toHaveAttribute('aria-expanded', 'true');
  await page.screenshot({ path: `${shots}/tasks.png`, fullPage: true });
});

test('an unknown address shows a not-found page with status 404', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1, name: 'Page not found' })).toBeVisible();
});
