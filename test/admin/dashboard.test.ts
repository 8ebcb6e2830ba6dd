/**
 * The live dashboard in a real browser (Debian's chromium driven by playwright-core): members
 * render, and registry changes show up on the page without a reload.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { makeMember } from '../../src/core/model.js';
import { needsCommands } from '../support/env.js';
import { eventually, startAdmin } from './helpers.js';

const skip = needsCommands('dashboard browser test', 'chromium');
const resultsDir = fileURLToPath(new URL('../../test-results/', import.meta.url));

function chromiumPath(): string {
  return (
    execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || '/usr/bin/chromium'
  );
}

async function launch(t: { after(fn: () => Promise<void>): void }): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  t.after(() => browser.close());
  return browser;
}

/** Text of `[data-member-id=id] [data-field=field]`, or null when it is not on the page. */
function field(page: Page, id: string, name: string): Promise<string | null> {
  return page
    .locator(`[data-member-id="${id}"] [data-field="${name}"]`)
    .first()
    .textContent({ timeout: 1000 })
    .catch(() => null);
}

test('the dashboard renders members and follows registry changes live', { skip }, async (t) => {
  const { server, registry } = await startAdmin(t, {
    roles: () => ({
      assigner: { clients: 17, policy: 'p2c', lastAssignment: { member: 'web-1', ms: 3 } },
      cluster: {
        epoch: 3,
        space: { lo: 0, hi: 31999 },
        ranges: {
          a: [[0, 15999]],
          b: [
            [16000, 19999],
            [24000, 31999],
          ],
          c: [[20000, 23999]],
        },
        shares: { a: 0.5, b: 0.375, c: 0.125 },
      },
    }),
  });
  await registry.register(
    makeMember({
      id: 'web-4',
      pool: 'web',
      addresses: ['10.0.0.4'],
      ports: { main: 8080 },
      labels: { note: '<img src=x onerror="window.pwned=1">' },
    }),
  );
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors: string[] = [];
  const foreign: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) foreign.push(r.url());
  });

  await page.goto(`${server.url}/`);

  // Members render with their fields.
  await eventually(async () => {
    assert.equal(await page.locator('[data-field="connection"]').getAttribute('data-state'), 'live');
    assert.equal(await page.locator('[data-member-id]').count(), 5);
  });
  assert.deepEqual(
    await page.locator('[data-pool]').evaluateAll((els) => els.map((e) => e.getAttribute('data-pool'))),
    ['web', 'empty', 'chat'],
  );
  assert.equal(await field(page, 'web-1', 'address'), '10.0.0.1:8080');
  assert.equal(await field(page, 'web-3', 'address'), '[fd00::3]:8080');
  assert.equal(await field(page, 'web-1', 'users'), '12');
  assert.equal(await field(page, 'web-1', 'cpu'), '25%');
  assert.equal(await field(page, 'web-1', 'site'), 'eu-west');
  assert.equal(await field(page, 'web-1', 'weight'), '2');
  assert.equal(await field(page, 'web-2', 'users'), '–');
  assert.equal(await field(page, 'web-3', 'health'), 'suspect');
  assert.equal(await field(page, 'web-2', 'health'), 'up');
  assert.equal(await field(page, 'web-4', 'labels'), 'note=<img src=x onerror="window.pwned=1">');
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  assert.match((await page.locator('[data-pool="empty"]').textContent()) ?? '', /No members registered/);
  assert.match(
    (await page.locator('[data-panels] [data-role="assigner"]').textContent()) ?? '',
    /clients\s*17.*lastAssignment\.member\s*web-1/s,
  );

  // The cluster panel draws the value space divided among members.
  assert.equal(await page.locator('[data-role="cluster"] [data-field="value-space"] rect').count(), 4);
  assert.equal(
    await page.locator('[data-role="cluster"] tr[data-member="b"] [data-field="share"]').textContent(),
    '37.5%',
  );

  // Live updates: load, health, a new member, a removed one.
  for (let i = 1; i <= 12; i++) {
    await registry.report('web-2', {
      users: i * 7,
      connections: i * 9,
      inFlight: 0,
      cpu: Math.min(1, i / 12),
      custom: {},
      timestamp: 10_000 + i,
    });
  }
  await registry.report('web-1', {
    users: 30 + 12,
    connections: 61,
    inFlight: 2,
    cpu: 0.4,
    custom: {},
    timestamp: 20_000,
  });
  await registry.setHealth('web-3', 'down', 'probe timeout');
  await registry.setHealth('web-2', 'draining', 'admin drain');
  await registry.register(
    makeMember({ id: 'chat-2', pool: 'chat', addresses: ['10.0.1.2'], ports: { ws: 9000 } }),
    { health: 'suspect' },
  );
  await registry.deregister('web-4', 'scaled in');

  await eventually(async () => {
    assert.equal(await field(page, 'web-1', 'users'), '42');
    assert.equal(await field(page, 'web-1', 'connections'), '61');
    assert.equal(await field(page, 'web-2', 'users'), '84');
    assert.equal(await field(page, 'web-3', 'health'), 'down');
    assert.equal(
      await page.locator('[data-member-id="web-3"] [data-field="health"]').getAttribute('data-state'),
      'down',
    );
    assert.equal(await field(page, 'web-2', 'health'), 'draining');
    assert.equal(await field(page, 'chat-2', 'health'), 'suspect', 'health of an added member is fetched');
    // Status over time: web-3 went from suspect to down; the timeline keeps both.
    assert.deepEqual(
      await page
        .locator('[data-member-id="web-3"] [data-field="timeline"] i')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))),
      ['suspect', 'down'],
    );
    assert.equal(await page.locator('[data-member-id="web-4"]').count(), 0);
  });
  const points = await page
    .locator('[data-member-id="web-2"] [data-field="sparkline"] polyline')
    .getAttribute('points');
  assert.equal(points?.split(' ').length, 12, 'the sparkline has one point per report');
  assert.match((await page.locator('[data-field="updated"]').textContent()) ?? '', /\d/);

  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: `${resultsDir}dashboard.png`, fullPage: true });
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(foreign, [], 'the page loads nothing from elsewhere');
});

test('the dashboard shows it is reconnecting when the server goes away', { skip }, async (t) => {
  const { server } = await startAdmin(t);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(`${server.url}/`);
  const indicator = page.locator('[data-field="connection"]');
  await eventually(async () => assert.equal(await indicator.getAttribute('data-state'), 'live'));
  await server.close();
  await eventually(async () => assert.equal(await indicator.getAttribute('data-state'), 'reconnecting'));
  assert.equal(await indicator.textContent(), 'reconnecting');
});
