import { test, expect, Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { csrfHeader, signIn } from './auth';

const fixture = (name: string) => resolve(__dirname, '../../target/fixtures/dicom/synthetic', name);

// The CT phantom (imaging/tests/fixtures/make_dicom_fixtures.py): 256×256, PixelSpacing 0.7 mm, lung at
// −850 HU, a 23.4 × 19.1 mm nodule of 40 HU centred at (170, 160); file windows −600/1500 and 40/350.
const SIDE = 256;

/** PS3.3 C.11.2.1.2.1, as the viewer windows (measure::window). */
function windowed(hu: number, center: number, width: number) {
  const c = center - 0.5;
  const half = (width - 1) / 2;
  if (hu <= c - half) return 0;
  if (hu > c + half) return 255;
  return Math.round(((hu - c) / (width - 1) + 0.5) * 255);
}

/** The grey value the canvas holds at an image pixel. */
async function canvasGrey(page: Page, x: number, y: number) {
  return page.locator('canvas.study-canvas').evaluate(
    (c: HTMLCanvasElement, [x, y]) => c.getContext('2d')!.getImageData(x, y, 1, 1).data[0],
    [x, y],
  );
}

/** Where an image point (pixel centres at whole numbers) is on the screen. */
async function screenOf(page: Page, x: number, y: number) {
  const box = (await page.locator('canvas.study-canvas').boundingBox())!;
  return { x: box.x + ((x + 0.5) * box.width) / SIDE, y: box.y + ((y + 0.5) * box.height) / SIDE };
}

async function drag(page: Page, from: { x: number; y: number }, to: { x: number; y: number }) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move(to.x, to.y, { steps: 8 });
  await page.mouse.up();
}

test('upload a DICOM and a JPEG from the worklist: progress, outcome, and the films render', async ({ page }) => {
  await signIn(page);
  await expect(page.locator('main.worklist')).toHaveAttribute('data-hydrated', 'true');
  // The film's patient, for the JPEG (the DICOM brings its own).
  await page.locator('.film-identity summary').click();
  await page.locator('input.upload-patient-id').fill('E2E-UPLOAD-1');
  await page.locator('input.upload-patient-name').fill('上传测试');
  await page.locator('input.upload-exam-date').fill('2025-11-02');
  await page.locator('input.upload-spacing').fill('0.143');
  await page.locator('input.file-input').setInputFiles([fixture('ct_phantom.dcm'), fixture('cxr.jpg')]);

  const rows = page.locator('.upload-row');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(0)).toHaveClass(/upload-done/);
  await expect(rows.nth(1)).toHaveClass(/upload-done/);
  await expect(rows.nth(0).locator('.upload-detail')).toHaveText(/已保存|已存在/);
  await expect(rows.nth(0).locator('progress')).toHaveAttribute('value', '1');
  await page.screenshot({ path: 'test-results/worklist-upload.png', fullPage: true });
  // The worklist reloaded with the new studies.
  await expect(page.getByRole('link', { name: 'PHANTOM CT' }).first()).toBeVisible();

  // A file the server cannot read is named with the reason, and the batch goes on.
  await page.locator('input.file-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
  await expect(rows).toHaveCount(3);
  await expect(rows.nth(2)).toHaveClass(/upload-failed/);
  await expect(rows.nth(2).locator('.upload-detail')).toContainText('未接收');

  // The JPEG opens in the viewer and is drawn from its values.
  await rows.nth(1).locator('a.upload-open').click();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const canvas = page.locator('canvas.study-canvas');
  await expect.poll(() => canvas.getAttribute('data-renders').then(Number)).toBeGreaterThan(0);
  await page.screenshot({ path: 'test-results/viewer-jpeg.png', fullPage: true });
});

test('a CT slice is windowed in the browser: presets, invert, drag', async ({ page }) => {
  // The ward's usual screen: everything fits its width.
  await page.setViewportSize({ width: 1366, height: 768 });
  await signIn(page);
  await page.getByRole('link', { name: 'PHANTOM CT' }).first().click();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const canvas = page.locator('canvas.study-canvas');
  await expect.poll(() => canvas.getAttribute('data-renders').then(Number)).toBeGreaterThan(0);

  // The file's first window (−600/1500) is the default: lung −850 HU and nodule 40 HU as the standard says.
  const lung = [30, 220] as const;
  const nodule = [170, 160] as const;
  expect(await canvasGrey(page, ...lung)).toBe(windowed(-850, -600, 1500));
  expect(await canvasGrey(page, ...nodule)).toBe(windowed(40, -600, 1500));
  await expect(page.locator('.viewer-caption')).toContainText('PHANTOM CT');
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1366);
  await page.screenshot({ path: 'test-results/viewer-lung-window-1366x768.png' });

  // 纵隔窗 40/350: lung black, nodule mid-grey; inverted: lung white. No image requests: all in the browser.
  let pngRequests = 0;
  page.on('request', (r) => { if (r.url().includes('image.png')) pngRequests++; });
  await page.locator('button.window-preset[data-key="mediastinum"]').click();
  await expect(page.locator('button.window-preset[data-key="mediastinum"]')).toHaveAttribute('aria-pressed', 'true');
  expect(await canvasGrey(page, ...lung)).toBe(0);
  expect(await canvasGrey(page, ...nodule)).toBe(windowed(40, 40, 350));
  await page.locator('input.invert-toggle').check();
  expect(await canvasGrey(page, ...lung)).toBe(255);
  await page.locator('input.invert-toggle').uncheck();

  // Dragging with the window tool widens the window (right) and raises the level (down).
  const before = await page.locator('.viewer-info').textContent();
  const renders = Number(await canvas.getAttribute('data-renders'));
  await page.locator('button.tool-window').click();
  await drag(page, await screenOf(page, 100, 100), await screenOf(page, 160, 140));
  await expect(page.locator('.viewer-info')).not.toHaveText(before!);
  expect(Number(await canvas.getAttribute('data-renders'))).toBeGreaterThan(renders);
  expect(await canvasGrey(page, ...nodule)).not.toBe(windowed(40, 40, 350));
  expect(pngRequests).toBe(0);

  // R resets to the default window.
  await page.keyboard.press('r');
  await expect.poll(() => canvasGrey(page, ...lung)).toBe(windowed(-850, -600, 1500));
});

test('a length on the phantom reads its millimetres, is saved with the study, and can be deleted and undone', async ({ page }) => {
  await signIn(page);
  await page.getByRole('link', { name: 'PHANTOM CT' }).first().click();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await expect.poll(() => page.locator('canvas.study-canvas').getAttribute('data-renders').then(Number)).toBeGreaterThan(0);
  const items = page.locator('.measurement-item');
  const existing = await items.count();

  // 100 pixels along a row at 0.7 mm: 70.0 毫米, with the window and the spacing as its basis.
  await page.keyboard.press('l');
  await expect(page.locator('button.tool-length')).toHaveAttribute('aria-pressed', 'true');
  await drag(page, await screenOf(page, 20, 20), await screenOf(page, 120, 20));
  await expect(items).toHaveCount(existing + 1);
  const line = items.last();
  await expect(line.locator('.measurement-value')).toHaveText('70.0 毫米');
  await expect(line.locator('.measurement-basis')).toContainText('窗宽 1500 / 窗位 -600');
  await expect(line.locator('.measurement-basis')).toContainText('像素间距 0.700 × 0.700 毫米（PixelSpacing）');
  await expect(page.locator('g.measurement text').last()).toHaveText('70.0 毫米');

  // An ellipse inside the nodule reads its 40 HU.
  await page.locator('button.tool-ellipse').click();
  await drag(page, await screenOf(page, 165, 156), await screenOf(page, 175, 164));
  await expect(items).toHaveCount(existing + 2);
  await expect(items.last().locator('.measurement-value')).toContainText('均值 40.0 HU');
  await page.screenshot({ path: 'test-results/viewer-measurements.png', fullPage: true });

  // An angle in two drags (first arm to the vertex, then the second arm): a right angle.
  await page.keyboard.press('a');
  await drag(page, await screenOf(page, 40, 60), await screenOf(page, 80, 60));
  await expect(page.locator('.viewer-hint')).toContainText('第二条边');
  await drag(page, await screenOf(page, 80, 60), await screenOf(page, 80, 100));
  await expect(items).toHaveCount(existing + 3);
  await expect(items.last().locator('.measurement-value')).toHaveText('90.0°');

  // A text arrow: its label is asked for.
  page.once('dialog', (d) => d.accept('右肺结节'));
  await page.keyboard.press('t');
  await drag(page, await screenOf(page, 215, 215), await screenOf(page, 180, 172));
  await expect(items).toHaveCount(existing + 4);
  await expect(items.last()).toContainText('箭头 右肺结节');

  // Automatic measurement from one click on the 23.4 × 19.1 mm nodule: within a pixel (0.7 mm).
  await page.keyboard.press('n');
  const click = await screenOf(page, 170, 160);
  await page.mouse.click(click.x, click.y);
  await expect(items).toHaveCount(existing + 5);
  await expect(items.last().locator('.measurement-label')).toContainText('自动');
  const auto = (await items.last().locator('.measurement-value').textContent())!;
  const [long, short] = auto.match(/([\d.]+) × ([\d.]+) 毫米/)!.slice(1).map(Number);
  expect(Math.abs(long - 23.4)).toBeLessThanOrEqual(0.7);
  expect(Math.abs(short - 19.1)).toBeLessThanOrEqual(0.7);
  await expect(page.locator('polygon.nodule-outline')).toHaveCount(1);
  await page.screenshot({ path: 'test-results/viewer-tools.png', fullPage: true });

  // Saved with the study: a reload shows them all.
  await page.reload();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await expect(items).toHaveCount(existing + 5);

  // Delete the length, then undo the delete.
  await items.filter({ hasText: '70.0 毫米' }).locator('button.measurement-delete').click();
  await expect(items).toHaveCount(existing + 4);
  await page.keyboard.press('Control+z');
  await expect(items).toHaveCount(existing + 5);
  await expect(items.filter({ hasText: '70.0 毫米' })).toHaveCount(1);
});

// Last in this file: the series joins the phantom's study (same Study Instance UID).
test('a CT series scrolls slice by slice with the keyboard, keeping the window', async ({ page }) => {
  await signIn(page);
  const slices = [1, 2, 3, 4, 5].map((n) => fixture(`ct_series/slice${n}.dcm`));
  await page.locator('input.file-input').setInputFiles(slices);
  await expect(page.locator('.upload-row.upload-done')).toHaveCount(5);
  await page.getByRole('link', { name: 'PHANTOM CT' }).first().click();
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  const canvas = page.locator('canvas.study-canvas');
  await expect.poll(() => canvas.getAttribute('data-renders').then(Number)).toBeGreaterThan(0);
  await expect(page.locator('.image-position')).toHaveText('1 / 6');

  await page.locator('button.window-preset[data-key="mediastinum"]').click();
  const renders = Number(await canvas.getAttribute('data-renders'));
  await page.keyboard.press('ArrowDown');
  await expect(page.locator('.image-position')).toHaveText('2 / 6');
  await expect.poll(() => canvas.getAttribute('data-renders').then(Number)).toBeGreaterThan(renders);
  // The slice is drawn through the window chosen on the first.
  expect(await canvasGrey(page, 30, 220)).toBe(0);
  expect(await canvasGrey(page, 170, 160)).toBe(windowed(40, 40, 350));
  // The first image's measurements are not shown on the second.
  await expect(page.locator('.measurement-item')).toHaveCount(0);
  await page.locator('button.image-next').click();
  await expect(page.locator('.image-position')).toHaveText('3 / 6');
  await page.keyboard.press('PageUp');
  await page.keyboard.press('PageUp');
  await expect(page.locator('.image-position')).toHaveText('1 / 6');
  await expect(page.locator('button.image-prev')).toBeDisabled();
  await expect(page.locator('.measurement-item').first()).toBeVisible();

  // The chat asks about the slice on screen, and the answer's heatmap lies on that slice only.
  await page.keyboard.press('ArrowDown');
  await expect(page.locator('.image-position')).toHaveText('2 / 6');
  await expect(page.locator('.chat-scope')).toContainText('当前第 2/6 幅');
  const chatPost = () => page.waitForRequest((r) => r.url().endsWith('/chat') && r.method() === 'POST');
  let posted = chatPost();
  await page.locator('textarea.chat-text').fill('这一层有结节吗？');
  await page.locator('button.send').click();
  const onSlice = JSON.parse((await posted).postData()!).images;
  expect(onSlice).toHaveLength(1);
  await expect(page.locator('.chat-answer').last()).toHaveAttribute('data-streaming', 'false');
  await expect(page.locator('.chat-answer').last().locator('.answer-error')).toHaveCount(0);
  const cells = page.locator('rect.heat-cell');
  await expect.poll(() => cells.count()).toBeGreaterThan(0);
  await page.keyboard.press('ArrowUp');
  await expect(page.locator('.image-position')).toHaveText('1 / 6');
  await expect(cells).toHaveCount(0);
  // Asked on the first slice, the question names another image.
  posted = chatPost();
  await page.locator('textarea.chat-text').fill('这一层呢？');
  await page.locator('button.send').click();
  const onFirst = JSON.parse((await posted).postData()!).images;
  expect(onFirst).toHaveLength(1);
  expect(onFirst[0]).not.toEqual(onSlice[0]);
  await expect(page.locator('.chat-answer').last()).toHaveAttribute('data-streaming', 'false');
  await expect.poll(() => cells.count()).toBeGreaterThan(0);
  // The whole series: the server picks the slices.
  await page.locator('input.scope-series').check();
  posted = chatPost();
  await page.locator('textarea.chat-text').fill('整个序列有什么发现？');
  await page.locator('button.send').click();
  expect(JSON.parse((await posted).postData()!).images).toEqual([]);
  await expect(page.locator('.chat-answer').last()).toHaveAttribute('data-streaming', 'false');
  await expect(page.locator('.chat-answer').last().locator('.answer-error')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/chat-ct-scope.png', fullPage: true });
});

test('a prior study of the same patient opens beside the current one and zooms and pans with it', async ({ page }) => {
  const console: string[] = [];
  page.on('console', (m) => console.push(m.text()));
  await signIn(page);
  const upload = async (file: string, date: string) => {
    const response = await page.request.post('/api/v1/uploads', {
      headers: await csrfHeader(page),
      multipart: { patient_id: 'E2E-PRIOR-1', patient_name: '对比测试', exam_date: date, pixel_spacing_mm: '0.5',
                   files: { name: file, mimeType: 'image/png', buffer: readFileSync(fixture(file)) } },
    });
    expect(response.status()).toBe(200);
    return (await response.json()).files[0].study_id as number;
  };
  await upload('grey32.png', '2024-10-01');
  const current = await upload('photo_rgb.png', '2025-10-01');

  await page.goto(`/studies/${current}`);
  await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
  await page.locator('select.compare-select').selectOption({ label: '2024-10-01 DX' });
  const prior = page.locator('.prior');
  await expect(prior.locator('.prior-caption')).toContainText('2024-10-01');
  await expect.poll(() => prior.locator('canvas.study-canvas').getAttribute('data-renders').then(Number)).toBeGreaterThan(0);

  // Zoom on the current image: the prior zooms by the same factor over its own fit (its size differs).
  const stages = page.locator('.stage');
  const scale = async (i: number) =>
    Number((await stages.nth(i).evaluate((e: HTMLElement) => e.style.transform)).match(/scale\(([\d.e-]+)\)/)![1]);
  const before = [await scale(0), await scale(1)];
  const box = (await page.locator('.image-panel').first().locator('.viewport').boundingBox())!;
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  // (The page is taller than the window: a wheel that reached the page would scroll it.)
  expect(await page.evaluate(() => document.documentElement.scrollHeight > window.innerHeight)).toBe(true);
  const scrolled = await page.evaluate(() => window.scrollY);
  await page.mouse.wheel(0, -100);
  await expect.poll(() => scale(0)).toBeGreaterThan(before[0]);
  const after = [await scale(0), await scale(1)];
  // (The style attribute keeps six significant digits.)
  expect(after[1] / before[1]).toBeCloseTo(after[0] / before[0], 4);
  // The wheel zoomed the image and left the page where it was (Leptos's wheel listener can cancel it).
  await page.mouse.wheel(0, 100);
  await expect.poll(() => scale(0)).toBeCloseTo(before[0], 4);
  expect(await page.evaluate(() => window.scrollY)).toBe(scrolled);
  expect(console.filter((m) => m.includes('passive'))).toEqual([]);
  await page.screenshot({ path: 'test-results/viewer-compare.png', fullPage: true });
});
