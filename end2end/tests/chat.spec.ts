import { test, expect, Page } from '@playwright/test';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { csrfHeader, signIn } from './auth';

const fixture = (name: string) => resolve(__dirname, '../../target/fixtures/dicom/synthetic', name);

// A panic on the server (during rendering, say) need not show in the browser: its log must stay clean.
test.afterAll(() => {
  const logs = join(process.env.MEDGEMMA_X_E2E_DATA_DIR!, 'logs');
  const panics = readdirSync(logs)
    .filter((f) => f.startsWith('medgemma-x.') && f.endsWith('.log'))
    .flatMap((f) => readFileSync(join(logs, f), 'utf8').split('\n'))
    .filter((line) => line.includes('"message":"panic"'));
  expect(panics).toEqual([]);
});

test.beforeEach(async ({ page }) => signIn(page));

/** Uploads one film as a study of its own, as the signed-in radiologist; returns the study id. */
async function uploadFilm(page: Page, file: string, patientId: string, name: string, date: string) {
  const upload = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: {
      patient_id: patientId,
      patient_name: name,
      exam_date: date,
      files: { name: file, mimeType: file.endsWith('.png') ? 'image/png' : 'image/jpeg', buffer: readFileSync(fixture(file)) },
    },
  });
  expect(upload.status()).toBe(200);
  return (await upload.json()).files[0].study_id as number;
}

/** The random test model's greedy answer repeats one byte token, which never completes a character, so
 * nothing would stream before the end: the tests sample (and set a length) by amending the page's request
 * on its way to the real server. */
async function sampleAnswers(page: Page, extra: Record<string, unknown>) {
  await page.route('**/api/v1/studies/*/chat', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const body = { ...JSON.parse(route.request().postData() ?? '{}'), temperature: 1.0, ...extra };
    await route.continue({ postData: JSON.stringify(body) });
  });
}

test('ask about an uploaded film: the answer streams in, is labelled, and its heatmap can be toggled', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });

  await uploadFilm(page, 'cxr.jpg', 'E2E-CHAT-1', '测试患者', '2025-10-15');

  await page.goto('/studies');
  await expect(page.locator('main.worklist')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.getByRole('link', { name: '测试患者' }).first()).toBeVisible();
  await page.screenshot({ path: 'test-results/worklist.png', fullPage: true });
  await page.getByRole('link', { name: '测试患者' }).first().click();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.study-title')).toContainText('E2E-CHAT-1');
  // The film is drawn on the viewer's canvas from its values.
  const canvas = page.locator('canvas.study-canvas');
  await expect(canvas).toBeVisible();
  await expect.poll(() => canvas.getAttribute('data-renders').then(Number)).toBeGreaterThan(0);

  await sampleAnswers(page, { max_new_tokens: 3000, min_new_tokens: 3000 });
  const box = page.locator('textarea.chat-text');
  // Enter while an input method is composing picks characters; it must not send.
  await box.fill('右肺上叶这个结节边缘有毛刺');
  await box.dispatchEvent('keydown', { key: 'Enter', isComposing: true });
  await expect(page.locator('.chat-question')).toHaveCount(0);

  await box.fill('右肺上叶这个结节边缘有毛刺，是否符合肺癌影像学特征？');
  await box.press('Enter');
  await expect(page.locator('.chat-question')).toHaveText('右肺上叶这个结节边缘有毛刺，是否符合肺癌影像学特征？');
  const answer = page.locator('.chat-answer').last();
  // Streamed: text shows while the answer is still being written, and keeps growing.
  await expect(answer).toHaveAttribute('data-streaming', 'true');
  await expect.poll(async () => (await answer.locator('.answer-text').textContent())?.length ?? 0).toBeGreaterThan(0);
  const early = (await answer.locator('.answer-text').textContent())?.length ?? 0;
  await page.screenshot({ path: 'test-results/chat-streaming.png', fullPage: true });
  await expect(answer).toHaveAttribute('data-streaming', 'false', { timeout: 60_000 });
  const final = (await answer.locator('.answer-text').textContent())?.length ?? 0;
  expect(final).toBeGreaterThan(early);
  await expect(answer.locator('.answer-advisory')).toHaveText('【AI辅助分析】结论仅供参考，须由执业医师复核确认');
  await expect(page.locator('.test-model-warning')).toBeVisible();

  // The heatmap lies on the image; the toggle hides and shows it.
  await expect(page.locator('.heatmap-state')).toContainText('已有热力图');
  const cells = page.locator('rect.heat-cell');
  expect(await cells.count()).toBeGreaterThan(0);
  await page.screenshot({ path: 'test-results/chat-heatmap.png', fullPage: true });
  await page.locator('input.heatmap-toggle').uncheck();
  await expect(cells).toHaveCount(0);
  await page.locator('input.heatmap-toggle').check();
  expect(await cells.count()).toBeGreaterThan(0);

  // The conversation is kept: a reload shows it.
  await page.reload();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.chat-question')).toHaveCount(1);
  await expect(page.locator('.chat-answer')).toHaveCount(1);
  expect(problems).toEqual([]);
});

test('stop ends a long answer and the next question is answered', async ({ page }) => {
  const study = await uploadFilm(page, 'cxr16.png', 'E2E-CHAT-2', '停止测试', '2025-10-16');
  await sampleAnswers(page, { max_new_tokens: 4000, min_new_tokens: 4000 });
  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('.quick-prompt').first().click();
  const answer = page.locator('.chat-answer').last();
  await expect.poll(async () => (await answer.locator('.answer-text').textContent())?.length ?? 0).toBeGreaterThan(0);
  await page.locator('button.stop').click();
  await expect(answer).toHaveAttribute('data-streaming', 'false');
  await expect(answer.locator('.answer-note')).toContainText('已停止');

  await page.unroute('**/api/v1/studies/*/chat');
  await sampleAnswers(page, { max_new_tokens: 16, min_new_tokens: 16 });
  // The stopped answer can be asked again: the same question, a new answer.
  const question = await page.locator('.chat-question').last().textContent();
  await page.locator('button.retry').click();
  await expect(page.locator('.chat-question')).toHaveCount(2);
  await expect(page.locator('.chat-question').last()).toHaveText(question!);
  await expect(page.locator('.chat-answer').last()).toHaveAttribute('data-streaming', 'false');
  await expect(page.locator('button.retry')).toHaveCount(0);
  await page.locator('textarea.chat-text').fill('请描述这张胸片');
  await page.locator('button.send').click();
  await expect(page.locator('.chat-answer').last()).toHaveAttribute('data-streaming', 'false');
  await expect(page.locator('.chat-answer').last().locator('.answer-error')).toHaveCount(0);
});
