// Client-side windowing speed on a large film: open the study page, take the window tool, drag across
// the image in small steps (each pointer move re-windows every pixel in wasm and puts it on the canvas),
// and report the viewer's own timing of each redraw (data-render-ms, set by the viewer after each one)
// and the redraws per second the drag got.
// Usage: node end2end/bench/window.mjs BASE_URL SESSION_COOKIE STUDY_PATH (scripts/bench_web.py runs it)
import { chromium } from '@playwright/test';

const [base, sessionCookie, path] = process.argv.slice(2);
const [cookieName, cookieValue] = sessionCookie.split('=');
const steps = 60;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
await context.addCookies([{ name: cookieName, value: cookieValue, url: base }]);
const page = await context.newPage();
await page.goto(base + path);
const canvas = page.locator('canvas.study-canvas');
await page.waitForFunction(() => Number(document.querySelector('canvas.study-canvas')?.dataset.renders) > 0, null, { timeout: 60_000 });
const size = await canvas.evaluate((c) => `${c.width}x${c.height}`);
// Collect every redraw's time as the viewer writes it.
await canvas.evaluate((c) => {
  window.__renderMs = [];
  new MutationObserver(() => window.__renderMs.push(Number(c.dataset.renderMs))).observe(c, {
    attributes: true,
    attributeFilter: ['data-render-ms'],
  });
});
await page.locator('button.tool-window').click();
const box = await canvas.boundingBox();
const [x0, y0] = [box.x + box.width / 2, box.y + box.height / 2];
await page.mouse.move(x0, y0);
await page.mouse.down();
const started = Date.now();
for (let i = 1; i <= steps; i++) await page.mouse.move(x0 + i * 3, y0 + i * 2);
// Let the last redraw land before stopping the clock.
await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
const elapsed = Date.now() - started;
await page.mouse.up();
const ms = (await page.evaluate(() => window.__renderMs)).sort((a, b) => a - b);
await browser.close();
const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
console.log(JSON.stringify({
  image: size,
  moves: steps,
  redraws: ms.length,
  redraw_ms_median: at(0.5),
  redraw_ms_p95: at(0.95),
  redraws_per_s_during_drag: (ms.length * 1000) / elapsed,
}));
