import { test, expect } from '@playwright/test';
import { DOCTOR, DOCTOR_PASSWORD } from './auth';

test('home page hydrates and shows the product, the AI label and live server status', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });

  // Without a session every page leads to the sign-in page, which comes back after signing in.
  await page.goto('/');
  await expect(page).toHaveURL(/\/login\?next=\/$/);
  await expect(page.locator('main.login')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByText('【AI辅助分析】结论仅供参考，须由执业医师复核确认')).toBeVisible();
  await page.getByLabel('用户名').fill(DOCTOR);
  await page.getByLabel('密码').fill('not the password');
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('alert')).toContainText('用户名或密码错误');
  await page.screenshot({ path: 'test-results/login-error.png', fullPage: true });
  await page.getByLabel('密码').fill(DOCTOR_PASSWORD);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page).toHaveURL(/\/$/);

  await expect(page).toHaveTitle('MedGemma-X');
  await expect(page.locator('h1')).toHaveText('MedGemma-X');
  await expect(page.getByText('【AI辅助分析】结论仅供参考，须由执业医师复核确认')).toBeVisible();

  // Set by an effect, which only runs once the wasm has hydrated the page.
  await expect(page.locator('main.home')).toHaveAttribute('data-hydrated', 'true');
  // Fetched from /readyz by the hydrated page: the server side renders only "checking".
  await expect(page.locator('.status-database')).toHaveText('正常');
  // The e2e server runs the tiny random test model, and says so.
  await expect(page.locator('.status-model')).toContainText('随机测试模型');
  await expect(page.locator('.status-version')).toHaveText(/^\d+\.\d+\.\d+$/);

  // Who is signed in, and the way out.
  await expect(page.locator('.user-name')).toHaveText('测试医师');
  await expect(page.locator('.user-role')).toContainText('放射科医师');
  await page.screenshot({ path: 'test-results/home.png', fullPage: true });
  await page.getByRole('button', { name: '退出' }).click();
  await expect(page).toHaveURL(/\/login$/);
  const after = await page.request.get('/api/v1/studies');
  expect(after.status()).toBe(401);
  // The failed sign-in shows as a 401 in the console; nothing else may.
  expect(problems.filter((p) => !p.includes('401'))).toEqual([]);
});
