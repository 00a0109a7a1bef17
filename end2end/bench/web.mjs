// Time to an interactive page in Debian's Chromium: from navigation start to the moment the hydrated app
// marks its <main> (data-hydrated="true"), median of N fresh browser contexts (cold cache each time).
// Usage: node end2end/bench/web.mjs BASE_URL SESSION_COOKIE PATH... (scripts/bench_web.py runs it against a
// fresh server; SESSION_COOKIE is `mgx_session=…` of a signed-in user)
import { chromium } from '@playwright/test';

const [base, sessionCookie, ...paths] = process.argv.slice(2);
const [cookieName, cookieValue] = sessionCookie.split('=');
const runs = 5;
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const results = {};
for (const path of paths) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    await context.addCookies([{ name: cookieName, value: cookieValue, url: base }]);
    const page = await context.newPage();
    await page.goto(base + path);
    await page.locator('main[data-hydrated="true"]').waitFor({ timeout: 30_000 });
    const ms = await page.evaluate(() => performance.now());
    times.push(ms);
    await context.close();
  }
  times.sort((a, b) => a - b);
  results[path] = { median_ms: times[Math.floor(runs / 2)], max_ms: times[runs - 1] };
}
await browser.close();
console.log(JSON.stringify(results));
