// Helpers shared by the specs about live events.
import type { Page } from '@playwright/test';

/** Makes every request to the SSE route fail, as a proxy that breaks streams would; the polling
 *  route stays open. Returns a function telling how many requests were refused so far. */
export async function blockEventStream(page: Page): Promise<() => number> {
  let blocked = 0;
  await page.route(
    (url) => url.pathname === '/api/events',
    (route) => {
      blocked += 1;
      return route.abort();
    },
  );
  return () => blocked;
}
