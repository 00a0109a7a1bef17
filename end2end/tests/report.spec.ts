import { test, expect } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { csrfHeader, signIn } from './auth';
import { greyPng } from './png';

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
  await panel.getByRole('button', { name: '空白报告' }).click();
  await expect(panel.locator('.report-state')).toContainText('草稿');

  await panel.getByLabel('检查所见与印象').fill('右肺上叶尖段见一实性结节，边界清楚。');
  await panel.getByRole('button', { name: '添加所见' }).click();
  await panel.getByLabel('部位 1').fill('右肺上叶尖段');
  await panel.getByLabel('所见 1').fill('实性结节');
  await panel.getByLabel('密度 1').fill('软组织密度');
  await panel.getByLabel('长径 1', { exact: true }).fill('8.2');
  await panel.getByLabel('短径 1', { exact: true }).fill('6.1');
  await panel.getByLabel('建议').fill('建议12个月后低剂量CT复查。');
  await panel.getByRole('button', { name: '签发' }).click();
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

  // Signed: one click to the next study nobody has begun (a film uploaded for it, so there is one).
  const next = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: { patient_id: 'E2E-NEXT-1', files: { name: 'next.png', mimeType: 'image/png', buffer: greyPng(32, 32, (x, y) => (x * 7 + y * 3) % 256) } },
  });
  expect(next.status()).toBe(200);
  await page.reload();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const link = page.locator('.report-panel .next-study a');
  await expect(link).toHaveText('下一个未读检查 →');
  await link.click();
  await page.waitForURL((url) => url.pathname.startsWith('/studies/') && url.pathname !== `/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.report-panel').getByRole('button', { name: '空白报告' })).toBeVisible();
});

test('a screening CT finding takes its axes from a viewer measurement and shows its Lung-RADS category', async ({ page }) => {
  await signIn(page);
  const upload = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: { files: { name: 'ct_padded.dcm', mimeType: 'application/dicom', buffer: readFileSync(fixture('ct_padded.dcm')) } },
  });
  expect(upload.status()).toBe(200);
  const { study_id: study, instance_id: instance } = (await upload.json()).files[0];
  // A bidirectional measurement as the viewer saves it: 16 × 14 pixels at 0.7 mm = 11.2 × 9.8 mm.
  const saved = await page.request.post(`/api/v1/studies/${study}/measurements`, {
    headers: await csrfHeader(page),
    data: { instance_id: instance, shape: { kind: 'bidirectional', long: [{ x: 10, y: 10 }, { x: 26, y: 10 }], short: [{ x: 18, y: 6 }, { x: 18, y: 20 }] },
            window: { center: -600, width: 1500 } },
  });
  expect(saved.status()).toBe(201);
  const measurement = (await saved.json()).id;
  // The same patient's exam a year earlier (a film of its own), with the nodule measured at the same place,
  // smaller: 12 × 6 pixels at 0.7 mm = 8.4 × 4.2 mm.
  const prior = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: {
      patient_id: 'P0064', exam_date: '2024-10-15', modality: 'CT', pixel_spacing_mm: '0.7',
      files: { name: 'prior.png', mimeType: 'image/png', buffer: greyPng(64, 64, (x, y) => ((x - 17) ** 2 + (y - 10) ** 2 < 30 ? 200 : 20)) },
    },
  });
  expect(prior.status()).toBe(200);
  const { study_id: priorStudy, instance_id: priorInstance } = (await prior.json()).files[0];
  expect((await page.request.post(`/api/v1/studies/${priorStudy}/measurements`, {
    headers: await csrfHeader(page),
    data: { instance_id: priorInstance, shape: { kind: 'bidirectional', long: [{ x: 11, y: 10 }, { x: 23, y: 10 }], short: [{ x: 17, y: 7 }, { x: 17, y: 13 }] } },
  })).status()).toBe(201);

  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const panel = page.locator('.report-panel');
  await panel.getByRole('button', { name: '空白报告' }).click();
  await expect(panel.locator('.report-state')).toContainText('草稿');
  await panel.getByRole('button', { name: '添加所见' }).click();
  await panel.getByLabel('部位 1').fill('右肺上叶尖段');
  await panel.getByLabel('所见 1').fill('实性结节');
  await panel.getByLabel('测量 1').selectOption(String(measurement));
  await expect(panel.getByLabel('长径 1', { exact: true })).toHaveValue('11.2');
  await expect(panel.getByLabel('短径 1', { exact: true })).toHaveValue('9.8');
  await expect(panel.locator('.finding-basis')).toContainText('窗宽 1500 / 窗位 -600 · 像素间距 0.700 × 0.700 毫米');
  await panel.getByLabel('结节类型 1').selectOption('solid');
  await panel.locator('input.screening-toggle').check();
  // Mean diameter 10.5 mm, solid, baseline: 4A; spiculation on a category 4 nodule: 4X.
  await expect(panel.locator('.lung-rads-category')).toHaveText('Lung-RADS 4A');
  await panel.getByLabel('毛刺 1').check();
  await expect(panel.locator('.lung-rads-category')).toHaveText('Lung-RADS 4X');
  await expect(panel.locator('.lung-rads-basis')).toContainText('右肺上叶尖段');
  // The prior exam's measurement at the same place is offered; the radiologist confirms the match.
  await expect(panel.locator('.prior-suggestion')).toContainText('既往检查 2024-10-15 同一位置的测量');
  await expect(panel.locator('.prior-suggestion')).toContainText('8.4 × 4.2 毫米');
  await panel.getByRole('button', { name: '采用为既往大小' }).click();
  await expect(panel.getByLabel('既往日期 1')).toHaveValue('2024-10-15');
  await expect(panel.getByLabel('既往长径 1')).toHaveValue('8.4');
  await expect(panel.locator('.finding-change')).toContainText('较2024-10-15增大4.2毫米（VDT');
  await expect(panel.locator('.lung-rads-basis')).toContainText('间隔12个月');
  await panel.getByRole('button', { name: '保存' }).click();
  await expect(panel.locator('.form-status')).toHaveText('已保存');
  await page.screenshot({ path: 'test-results/report-lung-rads.png', fullPage: true });

  // Edited again after that save, the finding keeps its new text: the saved version comes back as new
  // forms, and the fields on screen are bound to those (they were bound to the replaced ones).
  await panel.getByLabel('所见 1').fill('实性结节（复核）');
  await panel.getByRole('button', { name: '保存' }).click();
  await expect
    .poll(async () => (await (await page.request.get(`/api/v1/studies/${study}/reports`)).json())[0].report.findings[0].feature)
    .toBe('实性结节（复核）');

  // The server's saved report carries the same category, the link to the measurement and its basis.
  const reports = await (await page.request.get(`/api/v1/studies/${study}/reports`)).json();
  const report = reports[0].report;
  expect(report.guideline_results[0].category).toBe('4X');
  expect(report.findings[0].measurement_ids).toEqual([String(measurement)]);
  expect(report.findings[0].nodule_features).toEqual(['spiculation']);
  expect(report.findings[0].measurements.basis).toContain('PixelSpacing');
  expect(report.findings[0].change).toMatch(/^较2024-10-15增大4\.2毫米（VDT \d+天）$/);

  // On the English page the live category box and the change read in English (the report stays Chinese).
  await page.locator('button.lang-switch').click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(panel.locator('.lung-rads-category')).toHaveText('Lung-RADS 4X');
  await expect(panel.locator('.lung-rads-basis')).toContainText('follow-up round, 12');
  const cjk = /[\u3000-\u9fff\uff00-\uffef]/;
  expect(await panel.locator('.lung-rads-management').innerText()).not.toMatch(cjk);
  await expect(panel.locator('.finding-change')).toContainText('2024-10-15');
  expect(await panel.locator('.finding-change').innerText()).not.toMatch(cjk);
  // The viewer beside it too, window presets included.
  await expect(page.locator('button.window-preset[data-key="lung"]')).toHaveText('Lung');
  expect(await page.locator('.image-panel').first().innerText()).not.toMatch(cjk);
  // What the English page writes into the report stays Chinese: the report is printed and sent in Chinese.
  await panel.locator('select.use-measurement').selectOption(String(measurement));
  await expect(panel.locator('.finding-basis')).toContainText('窗宽 1500 / 窗位 -600 · 像素间距 0.700 × 0.700 毫米');
  await page.screenshot({ path: 'test-results/report-lung-rads-english.png', fullPage: true });
  await page.locator('button.lang-switch').click();
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await expect(panel.locator('.lung-rads-basis')).toContainText('间隔12个月');

  // Signed, the PDF shows the category with its basis and the measurement as a key image.
  await panel.getByLabel('检查所见与印象').fill('右肺上叶尖段见一实性结节，边缘毛刺。');
  await panel.getByRole('button', { name: '签发' }).click();
  await expect(panel.locator('.report-state')).toContainText('已签发');
  const download = page.waitForEvent('download');
  await panel.locator('a.export[data-format="pdf"]').click();
  const pdfPath = resolve(__dirname, '../test-results/report-lung-rads.pdf');
  await (await download).saveAs(pdfPath);
  const text = execFileSync('pdftotext', [pdfPath, '-']).toString();
  expect(text).toContain('关键图像');
  expect(text).toContain('11.2×9.8毫米');
  expect(text).toContain('Lung-RADS v2022 4X');
  expect(text.replace(/\s+/g, '')).toContain('随访对比：较2024-10-15增大4.2毫米');
  // Numbers are never broken across lines.
  expect(text).not.toMatch(/\d\n\d/);
  expect(execFileSync('pdfimages', ['-list', pdfPath]).toString().trim().split('\n')).toHaveLength(3);
  execFileSync('pdftoppm', ['-r', '60', '-png', pdfPath, resolve(__dirname, '../test-results/report-lung-rads-pdf')]);
});

test('生成结构化报告 on the study page: the AI drafts with the saved measurement, the report opens from it, marked until edited', async ({ page }) => {
  // The random model writes the whole schema's worth of draft: a minute on a busy 2-core machine.
  test.setTimeout(180_000);
  await signIn(page);
  // A film of its own (a grey square in a darker field) with a pixel spacing, so its measurement is in mm.
  const upload = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: {
      patient_id: 'E2E-DRAFT-1', patient_name: '草稿测试', exam_date: '2026-10-20', pixel_spacing_mm: '0.5',
      files: { name: 'draft.png', mimeType: 'image/png', buffer: greyPng(96, 96, (x, y) => ((x - 40) ** 2 + (y - 50) ** 2 < 100 ? 210 : 35)) },
    },
  });
  expect(upload.status()).toBe(200);
  const { study_id: study, instance_id: instance } = (await upload.json()).files[0];
  // 24 × 14 pixels at 0.5 mm: 12.0 × 7.0 mm, labelled with its place as the viewer saves it.
  const saved = await page.request.post(`/api/v1/studies/${study}/measurements`, {
    headers: await csrfHeader(page),
    data: { instance_id: instance, label: '右肺下叶',
            shape: { kind: 'bidirectional', long: [{ x: 28, y: 50 }, { x: 52, y: 50 }], short: [{ x: 40, y: 43 }, { x: 40, y: 57 }] } },
  });
  expect(saved.status()).toBe(201);

  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const panel = page.locator('.report-panel');
  await panel.getByRole('button', { name: '生成结构化报告' }).click();
  // Progress while the model writes, then the report as a draft from it.
  await expect(panel.locator('.form-status')).toContainText('AI 正在生成结构化报告');
  await expect(panel.locator('.report-state')).toContainText('草稿', { timeout: 150_000 });
  await expect(panel.locator('.form-status')).toContainText('已由AI草稿创建');
  // The finding that carries the saved measurement (the random model writes the others).
  const findings = panel.locator('fieldset.finding');
  let index = 0;
  for (let i = 1; i <= (await findings.count()); i++) {
    if ((await panel.getByLabel(`长径 ${i}`, { exact: true }).inputValue()) === '12') index = i;
  }
  expect(index, 'a finding with the 12.0 mm long axis').toBeGreaterThan(0);
  const measured = findings.nth(index - 1);
  await expect(panel.getByLabel(`短径 ${index}`, { exact: true })).toHaveValue('7');
  await expect(panel.getByLabel(`部位 ${index}`, { exact: true })).toHaveValue('右肺下叶');
  // The radiologist's measurement became a finding of its own (no model finding was at that place): it
  // is not the model's writing. What the model wrote is marked, until a person edits it.
  await expect(measured).not.toHaveClass(/ai-drafted/);
  const drafted = panel.locator('fieldset.finding.ai-drafted');
  const marked = await drafted.count();
  expect(marked, 'the model wrote findings of its own').toBeGreaterThan(0);
  await expect(drafted.first().locator('.ai-drafted-mark')).toHaveText('AI草稿，未经修改');
  await page.screenshot({ path: 'test-results/report-ai-draft.png', fullPage: true });
  await drafted.first().locator('input[aria-label^="部位"]').fill('右肺下叶背段');
  await expect(drafted).toHaveCount(marked - 1);
});
