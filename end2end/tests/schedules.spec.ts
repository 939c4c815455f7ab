// Schedules and the run history on the Syncs page, in a real browser: an admin turns a schedule
// off and on, edits its interval and sees the new next run, types a bad cron and sees which field
// is wrong; staff run a schedule now, and the history chart draws a bar for the finished run that
// opens its job in the tasks view. Screenshots of each.
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { signIn } from './people';

const shots = 'screenshots';
mkdirSync(shots, { recursive: true });

async function openSyncs(page: Page) {
  await page.goto('/syncs');
  await expect(page.getByRole('heading', { level: 1, name: 'Syncs' })).toBeVisible();
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live');
}

test.describe('an admin', () => {
  // Signed in here: the people spec signs the shared admin session out.
  test.use({ storageState: { cookies: [], origins: [] } });

  test('turns a schedule off and on, edits its interval, and sees a bad cron named', async ({ page }) => {
    await signIn(page, 'admin', '/syncs');
    await openSyncs(page);
    const row = page.locator('tr[data-schedule="employee-changes"]');
    await expect(row).toHaveAttribute('data-enabled', 'true');
    await expect(row.getByTestId('timing')).toHaveText('0 */6 * * *');

    // Off, then on again: the next run goes and comes back.
    await row.getByTestId('toggle').click();
    await expect(row).toHaveAttribute('data-enabled', 'false');
    await expect(row.getByTestId('next-run')).toHaveText('off');
    await expect(row.getByTestId('file-timing')).toContainText('baton.toml says 0 */6 * * *');
    await row.getByTestId('toggle').click();
    await expect(row).toHaveAttribute('data-enabled', 'true');
    await expect(row.getByTestId('next-run').locator('time')).toBeVisible();

    // An interval: the preview lists five runs, Save shows the new next run.
    await row.getByTestId('edit').click();
    const editor = page.getByTestId('schedule-editor');
    await editor.getByLabel('every', { exact: true }).check();
    await editor.getByTestId('every').fill('45m');
    await expect(editor.getByTestId('preview').locator('li')).toHaveCount(5);
    const before = Date.now();
    await editor.getByTestId('save-schedule').click();
    await expect(editor).toHaveCount(0);
    await expect(row.getByTestId('timing')).toHaveText('every 45m');
    const next = Date.parse((await row.getByTestId('next-run').locator('time').getAttribute('datetime')) as string);
    expect(next).toBeGreaterThanOrEqual(before + 45 * 60_000 - 1_000);
    expect(next).toBeLessThanOrEqual(Date.now() + 45 * 60_000 + 1_000);

    // A bad cron: the field and why, before and after Save; nothing saved.
    await row.getByTestId('edit').click();
    await editor.getByLabel('on a cron schedule').check();
    await editor.getByTestId('cron').fill('61 * * * *');
    await expect(editor.getByTestId('cron-error')).toContainText('field 1 (minute) `61` is not valid');
    await editor.getByTestId('save-schedule').click();
    await expect(editor.getByTestId('cron-error')).toContainText('field 1 (minute)');
    await page.screenshot({ path: `${shots}/schedule-bad-cron.png`, fullPage: true });
    await expect(row.getByTestId('timing')).toHaveText('every 45m');
    // Fixed, in a zone: saved.
    await editor.getByTestId('cron').fill('0 */6 * * *');
    await editor.getByTestId('tz').fill('Europe/Rome');
    await expect(editor.getByTestId('cron-error')).toHaveCount(0);
    await editor.getByTestId('save-schedule').click();
    await expect(editor).toHaveCount(0);
    await expect(row.getByTestId('timing')).toHaveText('0 */6 * * * (Europe/Rome)');
    await page.screenshot({ path: `${shots}/schedules.png`, fullPage: true });
  });
});

test('Run now from a schedule, then its bar in the history chart opens the job', async ({ page }) => {
  await openSyncs(page);
  const row = page.locator('tr[data-schedule="employee-changes"]');
  // Staff run schedules but do not change them.
  await expect(row.getByTestId('edit')).toHaveCount(0);
  await row.getByTestId('run-now').click();
  const chart = page.locator('figure[data-testid="run-chart"][data-type="employee-changes"]');
  const bar = chart.locator('a[data-job]').last();
  await expect(bar).toBeAttached({ timeout: 30_000 });
  const job = (await bar.getAttribute('data-job')) as string;
  await expect(bar).toHaveAttribute('data-outcome', /succeeded|failed/);
  await page.screenshot({ path: `${shots}/run-history.png`, fullPage: true });
  await bar.click();
  await page.waitForURL(`**/tasks?job=${job}`);
  const focused = page.getByTestId('focused-job');
  await expect(focused.locator(`li[data-job="${job}"]`)).toBeVisible();
  await expect(focused.locator('details')).toHaveAttribute('open', '');
});
