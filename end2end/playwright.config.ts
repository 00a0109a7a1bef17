import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// scripts/test.sh picks a free port and points at the debug binary; these defaults serve a manual run.
const port = Number(process.env.MEDGEMMA_X_E2E_PORT ?? 17860);
const bin = process.env.MEDGEMMA_X_BIN ?? resolve(__dirname, '../target/release/medgemma-x');
// A fresh data dir per run, shared with the worker processes through the environment.
process.env.MEDGEMMA_X_E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'medgemma-x-e2e-'));
// The tiny random test model (scripts/test.sh generates it): chat runs end to end, answers are noise.
process.env.MEDGEMMA_X_E2E_MODEL_DIR ??= resolve(__dirname, '../target/fixtures/tiny-a');
// serve.sh adds the radiologist `e2e-doctor` with this password; the tests sign in with it (tests/auth.ts).
process.env.MEDGEMMA_X_E2E_PASSWORD ??= `e2e ${randomBytes(12).toString('hex')}`;
process.env.MEDGEMMA_X_E2E_BIN = bin;
process.env.MEDGEMMA_X_E2E_PORT = String(port);

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  fullyParallel: false,
  workers: 1,
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      // This machine has no network beyond localhost: keep Chromium from trying.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: resolve(__dirname, 'serve.sh'),
    url: `http://127.0.0.1:${port}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
