// Measures how soon each data page shows its data in Debian's Chromium: first contentful paint
// and the moment the page's data is on screen (median of RUNS loads each, a fresh context per
// load), against a `baton serve` it starts on a fresh SQLite database. MBPS=10 LATENCY=40 (the
// defaults) emulate a modest network in the browser, where the WebAssembly's download shows;
// MBPS=0 turns the emulation off.
//   node tools/first-view.mjs [path/to/baton]   (from end2end/; default ../target/debug/baton)
import { chromium } from 'playwright-core';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const binary = resolve(process.argv[2] ?? '../target/debug/baton');
const runs = Number(process.env.RUNS ?? 5);
const mbps = Number(process.env.MBPS ?? 10);
const latency = Number(process.env.LATENCY ?? 40);
const dir = mkdtempSync(join(tmpdir(), 'baton-first-view-'));
const env = { ...process.env, BATON_DATA_DIR: dir, BATON_ADDR: '127.0.0.1:0', BATON_LOG: 'info', BATON_CONFIG: join(dir, 'none.toml') };
execFileSync('touch', [env.BATON_CONFIG]);
execFileSync('sh', ['-c', `printf 'measure-password\\n' | '${binary}' user add measure --role admin --password-stdin`], { env, cwd: '..' });
const server = spawn(binary, ['serve'], { env, cwd: '..', stdio: ['ignore', 'ignore', 'pipe'] });
const base = await new Promise((ok) => {
  server.stderr.on('data', (chunk) => {
    const m = /listening on (http:\/\/[0-9.:]+)/.exec(chunk.toString());
    if (m) ok(m[1]);
  });
});
const login = await fetch(`${base}/api/auth/login`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', origin: base },
  body: JSON.stringify({ username: 'measure', password: 'measure-password' }),
});
const cookie = login.headers.get('set-cookie').split(';')[0].split('=');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const pages = [
  ['/syncs', '.sync-table tbody tr'],
  ['/tasks', '[data-testid="no-jobs"], ul.job-list li.job'],
  ['/', 'ol.steps .step-name'],
  ['/admin', '[data-testid="users"]'],
];
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
for (const [path, selector] of pages) {
  const fcp = [];
  const data = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    await context.addCookies([{ name: cookie[0], value: cookie[1], url: base }]);
    const page = await context.newPage();
    if (mbps > 0) {
      const cdp = await context.newCDPSession(page);
      const bytes = (mbps * 1e6) / 8;
      await cdp.send('Network.emulateNetworkConditions', {
        offline: false, latency, downloadThroughput: bytes, uploadThroughput: bytes,
      });
    }
    await page.goto(base + path, { waitUntil: 'commit' });
    await page.waitForSelector(selector, { state: 'visible', timeout: 30000 });
    const shown = await page.evaluate(() => performance.now());
    await page.waitForLoadState('load');
    const paint = await page.evaluate(
      () => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
    );
    fcp.push(paint);
    data.push(shown);
    await context.close();
  }
  console.log(`${path.padEnd(8)} ${mbps ? `${mbps} Mbit/s, ${latency} ms: ` : ''}first contentful paint ${median(fcp).toFixed(0)} ms, data on screen ${median(data).toFixed(0)} ms (median of ${runs})`);
}
await browser.close();
server.kill('SIGTERM');
