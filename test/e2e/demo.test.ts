/**
 * The demo as a user gets it from `npm start`: the real `usher run` process with the demo
 * config (on ephemeral ports, so it cannot collide), opened in Debian's chromium. The
 * dashboard must show every demo member up, and their load must change live.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { needsCommands } from '../support/env.js';
import { UsherProcess } from '../support/usher-process.js';

const skip = needsCommands('demo dashboard in a browser', 'chromium');
const resultsDir = fileURLToPath(new URL('../../test-results/', import.meta.url));

test('npm start demo: the dashboard shows live members in a real browser', { skip }, async (t) => {
  const demo = readFileSync('examples/demo.yaml', 'utf8')
    .replace(/port: 9180/, 'port: 0')
    .replace(/port: 9190/, 'port: 0')
    .replace(/basePort: \d+/g, 'basePort: 0')
    .replace(/format: auto/, 'format: json');
  const dir = mkdtempSync(join(tmpdir(), 'usher-demo-'));
  const config = join(dir, 'demo.yaml');
  writeFileSync(config, demo);
  const usher = new UsherProcess(['run', config]);
  t.after(() => usher.stop('SIGKILL'));
  const url = (await usher.waitFor(/dashboard (http:\/\/127\.0\.0\.1:\d+\/)/))[1]!;

  const browser = await chromium.launch({
    executablePath: execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim(),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
    ],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);

  const ids = ['web-1', 'web-2', 'web-3', 'game-1', 'game-2'];
  const deadline = Date.now() + 20000;
  const health = async (id: string) =>
    page.locator(`[data-member-id="${id}"] [data-field="health"]`).textContent({ timeout: 2000 });
  const users = async () =>
    Promise.all(
      ids.map((id) =>
        page.locator(`[data-member-id="${id}"] [data-field="users"]`).textContent({ timeout: 2000 }),
      ),
    );

  // Every demo member is on the page and up (its health checks pass).
  for (const id of ids) {
    for (;;) {
      const h = await health(id).catch(() => null);
      if (h?.trim() === 'up') break;
      assert.ok(Date.now() < deadline, `${id} never showed up as up (last: ${h})`);
      await page.waitForTimeout(100);
    }
  }
  // Their load reports arrive live: the users figures change without a reload.
  const first = (await users()).join();
  for (;;) {
    const now = (await users()).join();
    if (now !== first) break;
    assert.ok(Date.now() < deadline, `users never changed from ${first}`);
    await page.waitForTimeout(200);
  }
  // Demo players were placed by the assigner and play on the game worlds: their sessions show
  // as users of the game members.
  for (;;) {
    const counts = await Promise.all(
      ['game-1', 'game-2'].map((id) =>
        page.locator(`[data-member-id="${id}"] [data-field="users"]`).textContent({ timeout: 2000 }),
      ),
    );
    if (counts.every((c) => Number(c) > 0)) break;
    assert.ok(Date.now() < deadline, `players never reached both worlds: ${counts.join(', ')}`);
    await page.waitForTimeout(200);
  }
  // The assigner's panel: assignments made per member and the sessions each reports now.
  for (;;) {
    const assigned = await page
      .locator('[data-role="assigner"] [data-field="assigner-assignments"]')
      .textContent({ timeout: 2000 })
      .catch(() => null);
    const sessions = await page
      .locator('[data-role="assigner"] [data-field="sessions"]')
      .allTextContents()
      .catch(() => []);
    if (Number(assigned) > 0 && sessions.length === 2 && sessions.every((x) => Number(x) > 0)) break;
    assert.ok(
      Date.now() < deadline,
      `the assigner panel never showed assignments (${assigned}, ${sessions.join()})`,
    );
    await page.waitForTimeout(200);
  }
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'demo-dashboard.png'), fullPage: true });

  const exit = await usher.stop('SIGTERM');
  assert.equal(exit.code, 0, usher.stderr);
});
