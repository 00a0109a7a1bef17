import { test, expect } from '@playwright/test';

test('home page hydrates and shows the product, the AI label and live server status', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });

  await page.goto('/');
  await expect(page).toHaveTitle('MedGemma-X');
  await expect(page.locator('h1')).toHaveText('MedGemma-X');
  await expect(page.getByText('【AI辅助分析】结论仅供参考，须由执业医师复核确认')).toBeVisible();

  // Set by an effect, which only runs once the wasm has hydrated the page.
  await expect(page.locator('main.home')).toHaveAttribute('data-hydrated', 'true');
  // Fetched from /readyz by the hydrated page: the server side renders only "checking".
  await expect(page.locator('.status-database')).toHaveText('正常 / OK');
  // The e2e server runs the tiny random test model, and says so.
  await expect(page.locator('.status-model')).toContainText('随机测试模型');
  await expect(page.locator('.status-version')).toHaveText(/^\d+\.\d+\.\d+$/);

  await page.screenshot({ path: 'test-results/home.png', fullPage: true });
  expect(problems).toEqual([]);
});
