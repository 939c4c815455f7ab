// Helpers for the specs that steer the server's built-in demo ERP.
import { expect, type Page } from '@playwright/test';

/** Makes the demo ERP answer the next `requests` requests for `entity` (e.g. "customers") with
 *  `status`, through its `POST /api/_outage`. */
export async function planOutage(page: Page, entity: string, status: number, requests: number) {
  const info = await (await page.request.get('/api/info')).json();
  expect(info.demo_erp, 'the server runs its demo ERP').toBeTruthy();
  const erp = info.demo_erp as string;
  const planned = await page.request.post(`${erp}/_outage`, {
    data: { path: new URL(`${erp}/${entity}`).pathname, status, requests },
  });
  expect(planned.status()).toBe(200);
}
