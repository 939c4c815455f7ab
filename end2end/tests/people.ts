// Who the specs are: one person per role, added by the CLI before the server started (see
// playwright.config.ts), and an admin API token for specs that call the API directly.
import { type APIRequestContext, type Page, expect, request } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const dataDir = process.env.E2E_DATA_DIR as string;
export type Role = 'admin' | 'staff' | 'viewer';

/** The saved cookies of `role`'s signed-in browser. */
export const signedIn = (role: Role) => join(dataDir, `${role}.json`);

/** Signs `role`'s person in through the sign-in page. */
export async function signIn(page: Page, role: Role, next = '/') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  const submit = page.getByRole('button', { name: 'Sign in' });
  // The button is enabled once the page has hydrated (a form sent before would put the
  // password in the URL).
  await expect(submit).toBeEnabled({ timeout: 20_000 });
  await page.getByLabel('User name').fill(`e2e-${role}`);
  await page.getByLabel('Password').fill(`${role}-password`);
  await submit.click();
  await page.waitForURL((url) => url.pathname === next.split('?')[0]);
}

/** An API client with the admin token (what a script would use). */
export async function api(baseURL: string | undefined): Promise<APIRequestContext> {
  const token = readFileSync(join(dataDir, 'token'), 'utf8').trim().split('\n').pop() as string;
  return request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
}
