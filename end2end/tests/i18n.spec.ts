import { test, expect, Page } from '@playwright/test';
import { csrfHeader, signIn } from './auth';
import { greyPng } from './png';

const CJK = /[\u3000-\u9fff\uff00-\uffef]/g;

/** The lines with Chinese characters in an element's visible text: an English page has none of its own
 * (the signed-in radiologist's name and the switch back to 中文 are not the page's, and neither are the
 * report templates' names: the department writes them, like a patient's name they are data). */
async function chineseIn(page: Page, selector: string): Promise<string[]> {
  const text = await page.locator(selector).first().evaluate((element: HTMLElement) => {
    const data = [...element.querySelectorAll<HTMLElement>('.template-list')];
    data.forEach((d) => (d.style.display = 'none'));
    const shown = element.innerText;
    data.forEach((d) => (d.style.display = ''));
    return shown;
  });
  return text.split('\n').filter((line) => line.match(CJK) && !['测试医师', '中文'].includes(line.trim()));
}

test('the English switch: server-rendered and hydrated pages in English, remembered, and back to Chinese', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  // The sign-in page offers the switch before anyone signs in.
  await page.goto('/login');
  await expect(page.locator('main.login')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await expect(page.locator('button.lang-switch')).toHaveText('English');
  await signIn(page);

  // A film of our own (bytes no other test uploads), with an ASCII name: the study page holds no Chinese data.
  const upload = await page.request.post('/api/v1/uploads', {
    headers: await csrfHeader(page),
    multipart: {
      patient_id: 'E2E-LANG-1', patient_name: 'Test Patient', exam_date: '2025-11-01', pixel_spacing_mm: '0.5',
      files: { name: 'lang.png', mimeType: 'image/png', buffer: greyPng(240, 200, (x, y) => (x * 7 + y * 3) % 256) },
    },
  });
  const study = (await upload.json()).files[0].study_id as number;

  await page.goto('/studies');
  await expect(page.locator('main.worklist')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('main.worklist h1')).toHaveText('工作列表');
  await page.locator('button.lang-switch').click();
  // The page reloads in English.
  await expect(page.locator('main.worklist h1')).toHaveText('Worklist');
  await expect(page.locator('main.worklist')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('html')).toHaveAttribute('lang', 'en');
  await expect(page.locator('button.lang-switch')).toHaveText('中文');
  await expect(page.locator('.upload')).toContainText('Drop DICOM, JPEG, PNG or zip files here');
  expect(await chineseIn(page, '.upload')).toEqual([]);
  await expect(page.locator('table.studies th').first()).toHaveText('Patient');

  // Rendered in English by the server (the cookie travels with every request), before any wasm runs.
  const html = await (await page.request.get(`/studies/${study}`)).text();
  expect(html).toContain('<html lang="en"');
  // (The study's data comes after hydration: the server renders the page's loading state.)
  expect(html).toContain('>Loading…<');
  expect(html).not.toContain('加载中');

  // The study page: viewer, chat and report panels all in English.
  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const canvas = page.locator('canvas.study-canvas');
  await expect.poll(() => canvas.getAttribute('data-renders').then(Number)).toBeGreaterThan(0);
  await expect(page.locator('button.viewer-tool.tool-length')).toHaveText('Length');
  await expect(page.locator('textarea.chat-text')).toHaveAttribute('placeholder', /^Ask a question/);
  await expect(page.locator('.report-panel h2')).toHaveText('Report');
  expect(await chineseIn(page, 'main.study')).toEqual([]);
  // A measurement reads in millimetres, its basis in English.
  await page.keyboard.press('l');
  const box = (await canvas.boundingBox())!;
  await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await expect(page.locator('.measurement-item').first()).toContainText(/Length \d+\.\d mm/);
  await expect(page.locator('.measurement-item').first()).toContainText('pixel spacing 0.500 × 0.500 mm (pixel spacing given by the uploader)');
  expect(await chineseIn(page, 'main.study')).toEqual([]);
  await page.screenshot({ path: 'test-results/study-english.png', fullPage: true });

  // An error from the server reads in English too.
  await page.route('**/api/v1/studies/*/chat', (route) =>
    route.request().method() === 'POST'
      ? route.fulfill({ status: 503, contentType: 'application/json',
          body: JSON.stringify({ error: { code: 'model_loading', message_zh: '模型加载中', message_en: 'The model is loading' } }) })
      : route.continue());
  await page.locator('textarea.chat-text').fill('Describe this film');
  await page.locator('button.send').click();
  await expect(page.locator('.answer-error')).toHaveText('The model is loading');
  await page.unroute('**/api/v1/studies/*/chat');

  // The other pages a radiologist opens: the home page (with the server's status) and the account page.
  await page.goto('/');
  await expect(page.locator('main.home')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('.status-database')).toHaveText('OK');
  await expect(page.locator('.status-model')).toContainText('random test model');
  expect(await chineseIn(page, 'main.home')).toEqual(['【AI辅助分析】结论仅供参考，须由执业医师复核确认']);
  await page.goto('/account');
  await expect(page.locator('main.account')).toHaveAttribute('data-hydrated', 'true');
  await expect(page.locator('main.account h1')).toHaveText('Account');
  expect(await chineseIn(page, 'main.account')).toEqual([]);
  await page.goto(`/studies/${study}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');

  // Back to Chinese, remembered across pages.
  await page.locator('button.lang-switch').click();
  await expect(page.locator('button.viewer-tool.tool-length')).toHaveText('长度');
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await page.goto('/studies');
  await expect(page.locator('main.worklist h1')).toHaveText('工作列表');
  expect(problems).toEqual([]);
});
