// The Tasks page in a real browser: filter and search the job history, look inside a job, and
// retry a cancelled one; cancel several at once.
import { expect, test } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { api } from './people';

const shots = 'screenshots';
mkdirSync(shots, { recursive: true });

test('filter, search, details and retry of a cancelled job', async ({ page, baseURL }) => {
  const request = await api(baseURL);
  // A job of our own, cancelled while it waits or runs.
  const started = await (await request.post('/api/sync/invoices', { data: { triggered_by: 'e2e' } })).json();
  await request.post(`/api/jobs/${started.job_id}/cancel`);

  await page.goto('/tasks');
  await expect(page.getByRole('heading', { level: 1, name: 'Tasks' })).toBeVisible();
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live');

  const row = page.locator(`li.job[data-job="${started.job_id}"]`);
  await expect(row).toHaveAttribute('data-state', 'cancelled');
  await expect(row).toContainText('api · token:e2e · “e2e”');

  await page.getByLabel('State').selectOption('cancelled');
  await expect(page.locator('li.job')).not.toHaveCount(0);
  for (const state of await page.locator('li.job').evaluateAll((els) => els.map((e) => e.getAttribute('data-state')))) {
    expect(state).toBe('cancelled');
  }
  await page.getByLabel('Search').fill('no such thing anywhere');
  await expect(page.getByTestId('no-jobs')).toBeVisible();
  await page.getByLabel('Search').fill('E2E');
  await expect(row).toBeVisible();

  await row.getByText('Details').click();
  await expect(row.locator('.job-details')).toContainText(`"retry_of": null`);
  await page.screenshot({ path: `${shots}/tasks-filtered.png`, fullPage: true });

  await page.getByLabel('State').selectOption('');
  await page.getByLabel('Search').fill('');
  await row.getByRole('button', { name: 'Retry' }).click();
  const retried = page.locator('li.job[data-type="invoices"]').first();
  await expect(retried).not.toHaveAttribute('data-job', started.job_id);
  await expect(retried).toHaveAttribute('data-state', 'completed', { timeout: 15_000 });
  const jobs = await (await request.get('/api/jobs?sync_type=invoices&limit=1')).json();
  expect(jobs.jobs[0].retry_of).toBe(started.job_id);
  expect(jobs.jobs[0].source).toBe('manual');
  expect(jobs.jobs[0].triggered_by).toBe('e2e-staff');

  // The retried job pulled invoices from the demo ERP page by page; its log says so.
  await retried.getByText('Details and log').click();
  const log = retried.getByRole('list', { name: 'Log' });
  // Full on a fresh database, incremental after the daily sync pulled invoices.
  await expect(log).toContainText(/(full|incremental) pull of invoices/);
  await expect(log).toContainText('page 1 (GET http://127.0.0.1:');
  await page.screenshot({ path: `${shots}/tasks-log.png`, fullPage: true });
});

test('a job that changed before the live connection opened is shown as it is', async ({ page, baseURL }) => {
  const request = await api(baseURL);
  // Hold the event stream until the change below is made: the page's read is older than it, and
  // the stream has nothing to resume from.
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  await page.route(
    (url) => url.pathname === '/api/events',
    async (route) => {
      await held;
      await route.continue();
    },
  );
  await page.goto('/tasks');
  await expect(page.getByRole('heading', { level: 1, name: 'Tasks' })).toBeVisible();
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'connecting');

  const started = await (await request.post('/api/sync/ddt', { data: { triggered_by: 'late' } })).json();
  await request.post(`/api/jobs/${started.job_id}/cancel`);
  await expect
    .poll(async () => (await (await request.get(`/api/jobs/${started.job_id}`)).json()).state)
    .toBe('cancelled');
  release();

  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live');
  await expect(page.locator(`li.job[data-job="${started.job_id}"]`)).toHaveAttribute('data-state', 'cancelled');
});

test('bulk cancel: tick waiting jobs, confirm the count, and they end cancelled', async ({ page, baseURL }) => {
  const request = await api(baseURL);
  // An open order form (a smart-sync lease, kept alive) holds every other exclusive sync, so
  // the three below wait for as long as this test needs.
  const tab = `bulk-${Date.now()}`;
  await request.post('/api/customers/smart-sync', { data: { tab_id: tab } });
  const beat = setInterval(() => void request.post('/api/customers/smart-sync/heartbeat', { data: { tab_id: tab } }), 1_000);
  const waiting: string[] = [];
  for (const type of ['ddt', 'invoices', 'prices']) {
    waiting.push((await (await request.post(`/api/sync/${type}`)).json()).job_id);
  }
  try {
    await page.goto('/tasks');
    await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live');
    await page.getByLabel('State').selectOption('pending');
    for (const id of waiting.slice(0, 2)) {
      await page.locator(`li.job[data-job="${id}"]`).getByTestId('pick').check();
    }
    await expect(page.getByTestId('bulk-bar')).toContainText('2 selected');
    await page.getByTestId('bulk-cancel').click();
    await expect(page.getByTestId('bulk-confirm')).toHaveText('Cancel 2 jobs?');
    await page.screenshot({ path: `${shots}/tasks-bulk-confirm.png`, fullPage: true });
    await page.getByTestId('bulk-yes').click();
    await expect(page.getByTestId('bulk-report')).toHaveText('2 done.');
    await expect(page.getByTestId('bulk-bar')).toHaveCount(0);
    for (const id of waiting.slice(0, 2)) {
      expect((await (await request.get(`/api/jobs/${id}`)).json()).state).toBe('cancelled');
      await expect(page.locator(`li.job[data-job="${id}"]`)).toHaveCount(0);
    }
    // The third was not ticked: it still waits.
    await expect(page.locator(`li.job[data-job="${waiting[2]}"]`)).toHaveAttribute('data-state', 'pending');
  } finally {
    // Leave a quiet engine for the specs after this one.
    clearInterval(beat);
    await request.post('/api/customers/resume-syncs', { data: { tab_id: tab } });
    await request.post('/api/jobs/bulk', { data: { action: 'cancel', ids: waiting } });
  }
});
