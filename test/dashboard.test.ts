/**
 * The dashboard in real Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): login by token, numbers equal to the API, a rejection
 * appearing live over server-sent events.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startTestNode, devPost, checkpointNow, type TestNode } from './support/node.ts';

const CHROMIUM = '/usr/bin/chromium';
let node: TestNode;
let browser: Browser;

before(async () => {
  node = await startTestNode();
  for (let i = 0; i < 7; i++) await devPost(`${node.url}/v1/events`, { amount: String(1000 * (i + 1)), beneficiary: i % 2 ? 'dev:carol' : 'dev:dave' }, `device${i % 3}`);
  await checkpointNow(node);
  await node.anchorer.tick();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});
after(async () => {
  await browser?.close();
  await node.cleanup();
});

test('chromium is installed (.ci/run installs it from Debian)', () => {
  assert.ok(existsSync(CHROMIUM));
});

test('the dashboard needs the admin token, then shows the same numbers as the API, and rejections arrive live', async () => {
  const token = readFileSync(node.data.tokenFile, 'utf8').trim();
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const denied = await page.goto(`${node.adminUrl}/`);
  assert.equal(denied!.status(), 401);
  const bad = await page.goto(`${node.adminUrl}/?token=wrong`);
  assert.equal(bad!.status(), 401);
  await page.goto(`${node.adminUrl}/?token=${encodeURIComponent(token)}`);
  assert.equal(new URL(page.url()).search, '', 'redirected to / without the token in the URL');
  const cookie = (await page.context().cookies()).find((c) => c.name === 'nexus_session')!;
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');

  const summary = await (await fetch(`${node.url}/v1/summary`, { headers: { 'x-nexus-dev-identity': 'device0' } })).json() as { entries: number; totals: Record<string, string> };
  assert.equal(await page.textContent('#entries'), String(summary.entries));
  for (const k of ['amount', 'creator', 'pool', 'fee']) assert.equal(await page.textContent(`#${k}`), summary.totals[k], k);
  assert.equal(await page.locator('#events tbody tr').count(), 7);
  assert.equal(await page.textContent('#events tbody tr:first-child td:first-child'), '6');
  assert.match(await page.textContent('#checkpoints tbody') ?? '', /file: confirmed/);

  const before = Number(await page.textContent('#rejections-total'));
  // Give the event stream a moment to connect, then get rejected.
  await page.waitForTimeout(300);
  const res = await fetch(`${node.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-nexus-dev-identity': 'bad name!' }, body: '{"amount":"1"}' });
  assert.equal(res.status, 401);
  await page.waitForFunction((n) => Number(document.getElementById('rejections-total')!.textContent) === n + 1, before, { timeout: 5000 });
  assert.equal(await page.textContent('#rejections tbody tr:first-child td:nth-child(3)'), 'DEV_IDENTITY_INVALID');
  await page.screenshot({ path: join(tmpdir(), 'nexus-dashboard.png'), fullPage: true });
  const csp = (await page.goto(`${node.adminUrl}/`))!.headers()['content-security-policy'];
  assert.match(csp!, /script-src 'nonce-/);
});
