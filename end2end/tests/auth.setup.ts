// Signs each role's person in once through the sign-in page and keeps the cookies.
import { test as setup } from '@playwright/test';
import { signIn, signedIn, type Role } from './people';

for (const role of ['admin', 'staff', 'viewer'] as Role[]) {
  setup(`sign in as ${role}`, async ({ page }) => {
    await signIn(page, role);
    await page.context().storageState({ path: signedIn(role) });
  });
}
