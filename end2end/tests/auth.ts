import { expect, Page } from '@playwright/test';

/** The radiologist serve.sh adds before the server starts. */
export const DOCTOR = 'e2e-doctor';
export const DOCTOR_PASSWORD = process.env.MEDGEMMA_X_E2E_PASSWORD!;

/** Signs in through the sign-in page, as a radiologist does, and waits for the page it leads to. */
export async function signIn(page: Page, next = '/studies') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await expect(page.locator('main.login')).toHaveAttribute('data-hydrated', 'true');
  await page.getByLabel('用户名').fill(DOCTOR);
  await page.getByLabel('密码').fill(DOCTOR_PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();
  await page.waitForURL((url) => url.pathname === next);
}

/** The session's CSRF token as a header, for API calls made through `page.request` (same cookies). */
export async function csrfHeader(page: Page) {
  const me = await (await page.request.get('/api/v1/auth/me')).json();
  return { 'x-csrf-token': me.csrf_token as string };
}
