// Baton's browser tests: Debian's Chromium (never a downloaded browser) against a real
// `baton serve` that Playwright starts on a free port with a fresh SQLite database.
import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const port = Number(process.env.E2E_PORT ?? 3917);
const binary = process.env.BATON_BIN ?? 'target/debug/baton';
const dataDir = mkdtempSync(join(tmpdir(), 'baton-e2e-'));

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
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
    command: `${binary} serve`,
    cwd: '..',
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
    env: {
      BATON_ADDR: `127.0.0.1:${port}`,
      BATON_DATA_DIR: dataDir,
      BATON_CONFIG: '/dev/null',
      BATON_HEARTBEAT_INTERVAL: '1s',
      BATON_LOG: 'info',
      // Demo mode (no [connections]): slow the demo ERP down so a pull is seen running.
      BATON_DEMO_ERP_LATENCY: '150ms',
    },
  },
});
