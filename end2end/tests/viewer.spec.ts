import { test, expect } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { csrfHeader, signIn } from './auth';

test('a CT slice is shown through the chest window presets, and inverted', async ({ page }) => {
  await signIn(page);
  const file = resolve(__dirname, '../../target/fixtures/dicom/synthetic/ct_phantom.dcm');
  const upload = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: { files: { name: 'ct_phantom.dcm', mimeType: 'application/dicom', buffer: readFileSync(file) } },
  });
  expect(upload.status()).toBe(200);
  const study = (await upload.json()).files[0].study_id;

  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const image = page.locator('img.study-image');
  await expect(image).toBeVisible();

  // 肺窗 −600/1500: the server renders through exactly that window and says so in its headers.
  const lung = page.locator('button.window-preset[data-key="lung"]');
  await expect(lung).toHaveText('肺窗');
  const rendered = page.waitForResponse((r) => r.url().includes('image.png') && r.url().includes('window_center=-600'));
  await lung.click();
  const response = await rendered;
  expect(response.headers()['x-window-center']).toBe('-600');
  expect(response.headers()['x-window-width']).toBe('1500');
  await expect(lung).toHaveAttribute('aria-pressed', 'true');
  await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBeGreaterThan(0);
  await page.screenshot({ path: 'test-results/viewer-lung-window.png', fullPage: true });

  // 纵隔窗, then inverted.
  await page.locator('button.window-preset[data-key="mediastinum"]').click();
  await expect(image).toHaveAttribute('src', /window_center=40&window_width=350/);
  await page.locator('input.invert-toggle').check();
  await expect(image).toHaveAttribute('src', /invert=true/);
  // Back to the file's default.
  await page.getByRole('button', { name: '默认 / Default' }).click();
  await expect(image).not.toHaveAttribute('src', /window_center/);
});
