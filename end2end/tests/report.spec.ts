import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { csrfHeader, signIn } from './auth';

const fixture = (name: string) => resolve(__dirname, '../../target/fixtures/dicom/synthetic', name);

test('a radiologist fills in a report, signs it, and downloads the PDF', async ({ page }) => {
  await signIn(page);
  const upload = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    // A film no other test uploads (the same bytes would be the same study).
    multipart: {
      files: { name: 'cr_monochrome1.dcm', mimeType: 'application/dicom', buffer: readFileSync(fixture('cr_monochrome1.dcm')) },
    },
  });
  expect(upload.status()).toBe(200);
  const study = (await upload.json()).files[0].study_id;

  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const panel = page.locator('.report-panel');
  await panel.getByRole('button', { name: '空白报告 / Blank report' }).click();
  await expect(panel.locator('.report-state')).toContainText('草稿');

  await panel.getByLabel('检查所见与印象 / Findings and impression').fill('右肺上叶尖段见一实性结节，边界清楚。');
  await panel.getByRole('button', { name: '添加所见 / Add a finding' }).click();
  await panel.getByLabel('部位 1').fill('右肺上叶尖段');
  await panel.getByLabel('所见 1').fill('实性结节');
  await panel.getByLabel('密度 1').fill('软组织密度');
  await panel.getByLabel('长径 1').fill('8.2');
  await panel.getByLabel('短径 1').fill('6.1');
  await panel.getByLabel('建议 / Recommendation').fill('建议12个月后低剂量CT复查。');
  await panel.getByRole('button', { name: '签发 / Sign' }).click();
  await expect(panel.locator('.report-state')).toContainText('已签发');
  await expect(panel.locator('.report-signatures')).toContainText('报告医师：测试医师');
  await expect(page.locator('.report-panel .report-state')).toContainText('SHA-256');
  await page.screenshot({ path: 'test-results/report-signed.png', fullPage: true });

  const download = page.waitForEvent('download');
  await panel.locator('a.export[data-format="pdf"]').click();
  const pdfPath = resolve(__dirname, '../test-results/report.pdf');
  await (await download).saveAs(pdfPath);
  expect(readFileSync(pdfPath).subarray(0, 5).toString()).toBe('%PDF-');
  const text = execFileSync('pdftotext', [pdfPath, '-']).toString();
  expect(text).toContain('右肺上叶尖段');
  expect(text).toContain('8.2毫米');
  expect(text).toContain('测试医师');
  // A page of the PDF as an image, to look at.
  execFileSync('pdftoppm', ['-r', '60', '-png', '-f', '1', '-l', '1', pdfPath, resolve(__dirname, '../test-results/report-pdf')]);
  writeFileSync(resolve(__dirname, '../test-results/report.txt'), text);
});
