// The daily-sync page in a real browser, against the in-process demo ERP: a whole session from
// Start to the last checkmark with both buttons, a step that fails and is retried, and the page
// advancing by polling when /api/events is blocked. A screenshot of each state; nothing but the
// toast stack moves unless a person clicked.
import { expect, test, type Page } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { planOutage } from './demo';
import { blockEventStream } from './live';

const shots = 'screenshots';
mkdirSync(shots, { recursive: true });

const step = (page: Page, n: number) => page.locator(`li.step[data-step="${n}"]`);

/** Clicks Start until the WASM has hydrated and a session exists (a click before that is lost). */
async function start(page: Page) {
  const session = page.getByTestId('session');
  const before = await session.getAttribute('data-state');
  await expect(async () => {
    if ((await session.getAttribute('data-state')) === before) {
      await page.getByTestId('start').click({ timeout: 1_000 });
    }
    await expect(session).toHaveAttribute('data-state', /running|waiting/, { timeout: 2_000 });
  }).toPass({ timeout: 20_000 });
}

type Shift = { value: number; afterInput: boolean; at: number; nodes: string[] };

/** When full-page screenshots were taken: they resize the viewport, which moves everything. */
const shooting: [number, number][] = [];

/** A full-page screenshot of the page as it is, noting when it was taken. */
async function shot(page: Page, name: string) {
  const from = await page.evaluate(() => performance.now());
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  // The resize back lands in the next frames.
  await page.waitForTimeout(100);
  shooting.push([from, await page.evaluate(() => performance.now())]);
}

/** Records the page's layout shifts (Chromium's Layout Instability API), and whether a click or key had just come. */
async function recordLayoutShifts(page: Page) {
  await page.addInitScript(() => {
    const w = window as unknown as { layoutShifts: Shift[] };
    w.layoutShifts = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries() as unknown as {
        value: number;
        hadRecentInput: boolean;
        startTime: number;
        sources?: { node?: Element | Text }[];
      }[]) {
        w.layoutShifts.push({
          value: entry.value,
          afterInput: entry.hadRecentInput,
          at: Math.round(entry.startTime),
          // The toasts are a stack over the page: theirs may move, nothing else.
          nodes: (entry.sources ?? []).map((s) =>
            (s.node instanceof Text ? s.node.parentElement : s.node)?.closest?.('.toasts')
              ? 'toast'
              : s.node instanceof Text
                ? `text "${s.node.textContent}" in .${s.node.parentElement?.className}`
                : (s.node?.className?.toString() ?? s.node?.nodeName ?? '?'),
          ),
        });
      }
    }).observe({ type: 'layout-shift', buffered: true });
  });
}

test('a daily sync from Start to the last checkmark, with a failed step retried', async ({ page }) => {
  test.setTimeout(180_000);
  await recordLayoutShifts(page);
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1, name: 'Daily sync' })).toBeVisible();
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'live');
  await expect(page.locator('li.step')).toHaveCount(5);
  await expect(page.getByTestId('recent-changes')).not.toContainText('Loading');
  // Loaded: from here on, the page only updates.
  const loaded = await page.evaluate(() => performance.now());
  await shot(page, 'daily-sync-0-ready');

  await start(page);
  // Step 1 runs: a spinner and a progress bar with figures.
  await expect(step(page, 1)).toHaveAttribute('data-phase', 'processing');
  await expect(step(page, 1).locator('.spinner')).toBeVisible();
  await expect(step(page, 1).locator('.progress-label')).toContainText('jobs done');
  await expect(page.getByTestId('session')).toContainText('manual by e2e-staff');
  await shot(page, 'daily-sync-1-importing');

  // Step 1 done; step 2 waits at its gate, saying how many orders are ready.
  await expect(step(page, 1)).toHaveAttribute('data-phase', 'completed', { timeout: 60_000 });
  await expect(step(page, 1).locator('.step-icon')).toHaveText('✓');
  await expect(step(page, 1).locator('.step-counts')).toContainText('processed');
  await expect(step(page, 2)).toHaveAttribute('data-phase', 'gate');
  await expect(step(page, 2).locator('.step-message')).toContainText(/\d+ orders ready to export/);
  const exportOrders = step(page, 2).getByRole('button', { name: 'Export Orders' });
  await expect(exportOrders).toBeVisible();
  await expect(page.getByTestId('session')).toHaveAttribute('data-state', 'waiting');
  await expect(page.getByTestId('toasts')).toContainText('Import web data done');
  await shot(page, 'daily-sync-2-gate');

  // The ERP refuses the next customers request: step 3 will fail.
  await planOutage(page, 'customers', 422, 1);

  // The button works from the keyboard.
  await exportOrders.focus();
  await page.keyboard.press('Enter');
  await expect(step(page, 2)).toHaveAttribute('data-phase', 'completed', { timeout: 30_000 });
  await expect(step(page, 3)).toHaveAttribute('data-phase', 'failed', { timeout: 60_000 });
  await expect(step(page, 3).locator('.step-message')).toContainText('customers: ');
  await expect(step(page, 3).locator('.step-message')).toContainText('planned outage');
  await expect(page.getByTestId('session')).toHaveAttribute('data-state', 'failed');
  await expect(page.getByTestId('toasts')).toContainText('ERP import failed');
  await shot(page, 'daily-sync-3-failed');

  // Retry step: step 3 runs again and the session goes on to the second gate.
  await step(page, 3).getByRole('button', { name: 'Retry step' }).click();
  await expect(step(page, 3)).toHaveAttribute('data-phase', 'completed', { timeout: 60_000 });
  await expect(step(page, 4)).toHaveAttribute('data-phase', 'completed', { timeout: 30_000 });
  // Validation lists the demo's planted problems.
  const findingsOpened = await page.evaluate(() => performance.now());
  await step(page, 4).getByText(/findings? listed/).click();
  await expect(step(page, 4).locator('.findings li').first()).toBeVisible();
  const confirm = step(page, 5).getByRole('button', { name: 'Confirm' });
  await expect(confirm).toBeVisible();
  await shot(page, 'daily-sync-4-confirm');

  await confirm.click();
  for (let n = 1; n <= 5; n++) {
    await expect(step(page, n)).toHaveAttribute('data-phase', 'completed', { timeout: 30_000 });
  }
  await expect(page.getByTestId('session')).toHaveAttribute('data-state', 'completed_with_warnings');
  await expect(page.getByTestId('warnings')).toContainText('Validation');
  // The session bar counts the warnings and links to them.
  await expect(page.getByTestId('warnings-link')).toHaveText(/^\d+ warnings?$/);
  await expect(page.getByTestId('warnings-link')).toHaveAttribute('href', '#warnings');
  // From the loaded page to the last checkmark nothing on the page moved, neither as the session
  // ran by itself nor after a button (however slow the answer), but for the toast stack and what
  // opening the findings pushed down.
  const shifts = await page.evaluate(() => (window as unknown as { layoutShifts: Shift[] }).layoutShifts);
  expect(
    shifts.filter(
      (s) =>
        s.at >= loaded &&
        s.nodes.some((n) => n !== 'toast') &&
        !(s.afterInput && s.at >= findingsOpened) &&
        !shooting.some(([from, to]) => s.at >= from && s.at <= to),
    ),
  ).toEqual([]);
  await expect(page.getByTestId('start')).toBeEnabled();

  // The timeline is the status table: folded, then every row of this session.
  const timeline = page.getByTestId('timeline');
  await timeline.locator('summary').click();
  await expect(timeline.locator('tbody tr[data-status="failed"]')).toHaveCount(1);
  await expect(timeline.locator('tbody tr')).not.toHaveCount(0);
  // The recent changes panel lists what the imports found.
  await expect(page.getByTestId('recent-changes').locator('li').first()).toBeVisible();
  await shot(page, 'daily-sync-5-done');
});

test('with /api/events blocked the daily sync still advances, by polling', async ({ page }) => {
  test.setTimeout(120_000);
  const blocked = await blockEventStream(page);
  await page.goto('/');
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'polling', { timeout: 20_000 });
  await start(page);
  await expect(step(page, 1)).toHaveAttribute('data-phase', 'processing');
  await expect(step(page, 1)).toHaveAttribute('data-phase', 'completed', { timeout: 60_000 });
  await expect(step(page, 2).getByRole('button', { name: 'Export Orders' })).toBeVisible();
  await step(page, 2).getByRole('button', { name: 'Export Orders' }).click();
  await expect(step(page, 2)).toHaveAttribute('data-phase', 'completed', { timeout: 30_000 });
  // On to the second gate; there no job runs, so the specs after this one start on a quiet engine.
  await expect(step(page, 3)).toHaveAttribute('data-phase', 'completed', { timeout: 60_000 });
  await expect(step(page, 5).getByRole('button', { name: 'Confirm' })).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('.live-status')).toHaveAttribute('data-connection', 'polling');
  expect(blocked()).toBeGreaterThan(0);
  await page.screenshot({ path: `${shots}/daily-sync-polling.png`, fullPage: true });
});
