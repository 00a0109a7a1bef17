import { test, expect, Browser, Page } from '@playwright/test';
import { spawn, execFileSync, ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DOCTOR, DOCTOR_PASSWORD, csrfHeader, signIn } from './auth';
import { greyPng } from './png';

// A reading session at the pace of a radiologist with 80 films a day: ten studies arrive from the
// modality (8 plain films, 2 films with a phantom nodule), the server pre-reads them in the background,
// and the reader goes through the worklist in its order: a normal film gets the 正常胸片 template by its
// code and is signed; a nodule film gets the automatic measurement and the AI's draft with it, the nodule
// template, and is signed; J opens the next unread study. Per case it prints the actions (clicks and key
// presses; the typing of free text and template codes excluded), the wall time, and whether the pre-read
// was ready when the study opened. Its own server: the others run with pre-reads off.

const NODULE_SIDE = 96;
const NORMAL = 8;
const NODULES = 2;

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => done(port));
    });
  });
}

/** `medgemma-x serve` with pre-reads on (the default) and the tiny model, on a data dir of its own. */
async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const bin = process.env.MEDGEMMA_X_E2E_BIN!;
  const data = mkdtempSync(join(tmpdir(), 'medgemma-x-reading-'));
  execFileSync(bin, ['user', 'add', DOCTOR, '--role', 'radiologist', '--display-name', '测试医师',
    '--password-stdin', '--data-dir', data], { input: `${DOCTOR_PASSWORD}\n` });
  const port = await freePort();
  const child = spawn(bin, ['serve', '--bind', `127.0.0.1:${port}`, '--data-dir', data,
    '--model-dir', process.env.MEDGEMMA_X_E2E_MODEL_DIR!, '--log-format', 'json'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then((r) => r.json()).catch(() => null);
    if (ready?.model?.loaded === true) return { url, child };
    if (Date.now() > deadline) throw new Error(`the reading server did not load its model: ${JSON.stringify(ready)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The reader's hands: every click and key press counts; typed text does not. A case's count begins with
 * the action that opened it (the worklist click for the first, J for the others). */
class Hands {
  actions = 0;
  constructor(private page: Page) {}
  async press(key: string) {
    this.actions++;
    await this.page.keyboard.press(key);
  }
  async clickAt(point: { x: number; y: number }) {
    this.actions++;
    await this.page.mouse.click(point.x, point.y);
  }
  async click(locator: ReturnType<Page['locator']>) {
    this.actions++;
    await locator.click();
  }
  async type(text: string) {
    await this.page.keyboard.type(text);
  }
}

/** Each study's pre-read state, as the worklist has it. */
async function preReads(page: Page): Promise<Map<number, string | null>> {
  const list = await (await page.request.get('/api/v1/studies?limit=50')).json();
  return new Map(list.studies.map((s: { id: number; pre_read?: string }) => [s.id, s.pre_read ?? null]));
}

test('a reading session: ten studies in worklist order, by template or AI draft, signed one after another', async ({ browser }) => {
  test.setTimeout(900_000);
  const { url, child } = await startServer();
  try {
    await session(browser, url);
  } finally {
    child.kill('SIGTERM');
  }
});

async function session(browser: Browser, url: string) {
  const context = await browser.newContext({ baseURL: url });
  const page = await context.newPage();
  await signIn(page);

  // The studies arrive (uploaded here as a modality would send them: not the reader's actions).
  const kinds = new Map<number, 'normal' | 'nodule'>();
  const arrived = new Map<number, number>();
  const discs = new Map<number, { x: number; y: number }>();
  for (let i = 0; i < NORMAL + NODULES; i++) {
    const nodule = i >= NORMAL;
    // A nodule film: a bright disc of radius 10 pixels (10 mm at 0.5 mm) in a darker field, placed per film.
    const disc = { x: 40 + i, y: 50 };
    const film = nodule
      ? greyPng(NODULE_SIDE, NODULE_SIDE, (x, y) => ((x - disc.x) ** 2 + (y - disc.y) ** 2 < 100 ? 210 : 35))
      : greyPng(64, 64, (x, y) => (x * (i + 3) + y * 5) % 256);
    const upload = await page.request.post('/api/v1/uploads', {
      headers: await csrfHeader(page),
      multipart: {
        patient_id: `READ-${i + 1}`, patient_name: `阅片${i + 1}`, exam_date: '2026-12-07', pixel_spacing_mm: '0.5',
        files: { name: `film${i + 1}.png`, mimeType: 'image/png', buffer: film },
      },
    });
    expect(upload.status()).toBe(200);
    const study = (await upload.json()).files[0].study_id as number;
    kinds.set(study, nodule ? 'nodule' : 'normal');
    if (nodule) discs.set(study, disc);
    arrived.set(study, Date.now());
  }
  // The reader comes to the worklist half a minute after the last study arrived; meanwhile, how long the
  // pre-reads of all ten take.
  const lastArrival = Date.now();
  let allReady: number | null = null;
  while (Date.now() - lastArrival < 30_000) {
    const states = await preReads(page);
    if (allReady === null && [...kinds.keys()].every((s) => states.get(s) === 'ready')) {
      allReady = (Date.now() - lastArrival) / 1000;
    }
    await page.waitForTimeout(500);
  }
  console.log(`reading: every pre-read ready ${allReady === null ? 'not within 30 s' : `${allReady.toFixed(1)} s`} after the last arrival`);

  const hands = new Hands(page);
  await page.goto('/studies');
  await expect(page.locator('main.worklist')).toHaveAttribute('data-hydrated', 'true');
  await hands.click(page.locator('a.study-link').first());

  const cases: { study: number; kind: string; actions: number; seconds: number; ready: string; arrivedS: number }[] = [];
  let previous = '/studies';
  for (let n = 0; n < NORMAL + NODULES; n++) {
    await page.waitForURL((u) => /^\/studies\/\d+$/.test(u.pathname) && u.pathname !== previous);
    previous = new URL(page.url()).pathname;
    const study = Number(previous.split('/').pop());
    const kind = kinds.get(study)!;
    expect(kind, `study ${study} is one of the session's`).toBeDefined();
    await expect(page.locator('main.study')).toHaveAttribute('data-hydrated', 'true');
    console.log(`reading: case ${n + 1}: study ${study} (${kind}): ${await page.locator('main.study h1').textContent()}`);
    const opened = Date.now();
    const ready = (await preReads(page)).get(study) ?? 'none';
    const panel = page.locator('.report-panel');
    await expect(panel.locator('.template-insert').first()).toBeVisible();
    // The pre-read's heatmap is over the image from the start.
    await expect(page.locator('.heatmap-state')).toHaveText('已有热力图');

    if (kind === 'nodule') {
      // The automatic measurement: N, then one click on the nodule.
      await expect.poll(() => page.locator('canvas.study-canvas').getAttribute('data-renders').then(Number)).toBeGreaterThan(0);
      await hands.press('n');
      const box = (await page.locator('canvas.study-canvas').boundingBox())!;
      const disc = discs.get(study)!;
      await hands.clickAt({ x: box.x + ((disc.x + 0.5) * box.width) / NODULE_SIDE,
                            y: box.y + ((disc.y + 0.5) * box.height) / NODULE_SIDE });
      await expect(page.locator('.measurement-item')).toHaveCount(1);
      // G: the AI drafts the report with the measurement.
      await hands.press('g');
      await expect(panel.locator('.report-state')).toContainText('草稿', { timeout: 300_000 });
      await expect(panel.locator('.form-status')).toContainText('已由AI草稿创建');
      // The measurement is a finding of the draft: its axes to a tenth of a millimetre as the viewer shows
      // them, its place left for the reader (the automatic method is its basis, not a place).
      const longAxes = await panel.locator('input[aria-label^="长径"]').evaluateAll((inputs) =>
        inputs.map((i) => (i as HTMLInputElement).value));
      const measured = longAxes.findIndex((v) => Number(v) > 8 && Number(v) < 12);
      expect(measured, `a finding with the nodule's ~10 mm long axis: ${longAxes}`).toBeGreaterThanOrEqual(0);
      expect(longAxes[measured]).toMatch(/^\d+(\.\d)?$/);
      await expect(panel.getByLabel(`部位 ${measured + 1}`, { exact: true })).toHaveValue('未标注部位');
      // The nodule template's wording on top of the model's: M, the code, Enter.
      await hands.press('m');
      await hands.type('jj');
      await hands.press('Enter');
      await expect(panel.locator('.form-status')).toContainText('已插入模板');
    } else {
      await hands.press('m');
      await hands.type('zc');
      await hands.press('Enter');
      await expect(panel.locator('.report-state')).toContainText('草稿');
      await expect(panel.getByLabel('检查所见与印象')).toHaveValue(/肋膈角锐利/);
    }
    await hands.press('Control+Enter');
    await expect(panel.locator('.report-state')).toContainText('已签发');
    // Ctrl+Enter in the code box signed; it was not taken for a template code.
    await expect(panel.locator('.template-bar .status-error')).toHaveCount(0);
    const seconds = (Date.now() - opened) / 1000;
    cases.push({ study, kind, actions: hands.actions, seconds, ready, arrivedS: (opened - arrived.get(study)!) / 1000 });
    if (n === 0) await page.screenshot({ path: 'test-results/reading-signed.png', fullPage: true });
    hands.actions = 0;
    if (n < NORMAL + NODULES - 1) {
      await expect(panel.locator('.next-study a')).toBeVisible();
      await hands.press('j');
    }
  }

  for (const c of cases) {
    console.log(`reading: study ${c.study} (${c.kind}): ${c.actions} actions, ${c.seconds.toFixed(1)} s, ` +
      `pre-read on open: ${c.ready} (arrived ${c.arrivedS.toFixed(0)} s earlier)`);
  }
  const worst = (kind: string) => Math.max(...cases.filter((c) => c.kind === kind).map((c) => c.actions));
  console.log(`reading: at most ${worst('normal')} actions for a normal case (goal 6), ${worst('nodule')} for a nodule case (goal 12)`);
  writeFileSync(resolve(__dirname, '../test-results/reading-session.json'), JSON.stringify(cases, null, 2));
  expect(cases).toHaveLength(NORMAL + NODULES);
  for (const c of cases) {
    expect(c.actions, `study ${c.study}`).toBeLessThanOrEqual(c.kind === 'normal' ? 6 : 12);
    expect(c.ready, `study ${c.study}'s pre-read when it opened, ${c.arrivedS.toFixed(0)} s after it arrived`).toBe('ready');
  }
  await context.close();
}
