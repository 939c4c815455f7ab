// Baton's browser tests: Debian's Chromium (never a downloaded browser) against a real
// `baton serve` that Playwright starts on a free port with a fresh SQLite database. Before it
// serves, the CLI adds one person per role and an API token (as an admin would); the `setup`
// project signs each person in once and keeps their cookies for the specs.
import { defineConfig } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const port = Number(process.env.E2E_PORT ?? 3917);
const binary = process.env.BATON_BIN ?? 'target/debug/baton';
// One data directory for the runner and its workers (which load this file again).
const dataDir = (process.env.E2E_DATA_DIR ??= mkdtempSync(join(tmpdir(), 'baton-e2e-')));
process.env.E2E_BINARY = binary;

const people = ['admin', 'staff', 'viewer']
  .map((role) => `printf '%s\\n' '${role}-password' | ${binary} user add e2e-${role} --role ${role} --password-stdin`)
  .join(' && ');

const chromium = {
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
};

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
    launchOptions: chromium,
  },
  projects: [
    { name: 'setup', testMatch: /auth\.setup\.ts/ },
    {
      name: 'browser',
      dependencies: ['setup'],
      testIgnore: /auth\.setup\.ts/,
      // Staff by default: the people who run the daily sync; specs of other roles say so.
      use: { storageState: join(dataDir, 'staff.json') },
    },
  ],
  webServer: {
    command: `sh -c "${people.replace(/"/g, '\\"')} && ${binary} token create --name e2e --role admin > ${join(dataDir, 'token')} && exec ${binary} serve"`,
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
      // A closed tab that says nothing lets go after 3 s, not a minute.
      BATON_SMART_SYNC_GRACE: '3s',
    },
  },
});
