/**
 * Seed 003 end to end, in a real browser: three `usher run` processes form a status mesh, each
 * runs a live-data stream server and the list service. Debian's Chromium (playwright-core)
 * opens the demo page, which uses the browser SDK bundle: it fetches the list, picks a server,
 * and receives ticks. The test kills (-9) the process whose server the page uses; the page
 * moves to another server and keeps receiving. A screenshot is saved in test-results/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { needsCommands } from '../support/env.js';
import { UsherProcess } from '../support/usher-process.js';
import { eventually } from '../support/wait.js';

const skip = needsCommands('live-data browser failover test', 'chromium');
const resultsDir = fileURLToPath(new URL('../../test-results/', import.meta.url));

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

interface DemoState {
  server: string | null;
  state: string;
  ticks: number;
  ticksByServer: Record<string, number>;
  events: { kind: string; text: string }[];
}

test('the demo page keeps receiving ticks when its server is killed', {
  skip,
  timeout: 120_000,
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'usher-live-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ports = await freePorts(9);
  const nodes = ['n1', 'n2', 'n3'].map((node, i) => ({
    node,
    mesh: ports[i]!,
    list: ports[3 + i]!,
    stream: ports[6 + i]!,
  }));
  const processes: UsherProcess[] = [];
  t.after(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
  });
  for (const n of nodes) {
    const config = {
      registry: {
        kind: 'mesh',
        mesh: {
          node: n.node,
          port: n.mesh,
          seeds: nodes.filter((o) => o !== n).map((o) => `127.0.0.1:${o.mesh}`),
          intervalMs: 200,
          suspicionMinMs: 1000,
          suspicionMaxMs: 4000,
        },
      },
      log: { level: 'warn', format: 'json' },
      pools: { live: { policy: { name: 'priority-load' }, health: { kind: 'tcp', intervalMs: 500 } } },
      list: { port: n.list, pools: ['live'] },
      demo: { streams: [{ pool: 'live', name: n.node, count: 1, basePort: n.stream, tickMs: 100 }] },
    };
    const file = join(dir, `${n.node}.json`);
    writeFileSync(file, JSON.stringify(config));
    const p = new UsherProcess(['run', file], { USHER_MESH_SECRET: 'a test secret of some length' });
    processes.push(p);
  }
  await Promise.all(processes.map((p) => p.waitFor(/usher: running/)));
  const listUrls = nodes.map((n) => `http://127.0.0.1:${n.list}/usher/list/live`);
  // Every list service lists all three servers, up.
  await eventually(
    async () => {
      for (const url of listUrls) {
        const doc = (await (await fetch(url)).json()) as { servers: { id: string; status: string }[] };
        assert.deepEqual(
          doc.servers.map((s) => `${s.id}:${s.status}`),
          ['n1-1:up', 'n2-1:up', 'n3-1:up'],
          `the list at ${url}`,
        );
      }
    },
    15_000,
    100,
  );

  const chromiumPath =
    execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim() || '/usr/bin/chromium';
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
    ],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(`http://127.0.0.1:${nodes[0]!.list}/demo/live?lists=${listUrls.join(',')}`);
  const demo = () => page.evaluate(() => (window as unknown as { usherDemo: DemoState }).usherDemo);

  const first = await eventually(
    async () => {
      const s = await demo();
      assert.equal(s.state, 'open', `stream state: ${JSON.stringify(s)}`);
      assert.ok(s.server && (s.ticksByServer[s.server] ?? 0) >= 5, `ticks: ${JSON.stringify(s)}`);
      return s;
    },
    15_000,
    100,
  );
  const victim = nodes.findIndex((n) => first.server === `${n.node}-1`);
  assert.ok(victim >= 0, `the page uses one of the three servers: ${first.server}`);
  processes[victim]!.child.kill('SIGKILL');
  await processes[victim]!.exited;

  const after = await eventually(
    async () => {
      const s = await demo();
      assert.ok(s.server && s.server !== first.server, `moved to another server: ${JSON.stringify(s)}`);
      assert.equal(s.state, 'open');
      assert.ok((s.ticksByServer[s.server] ?? 0) >= 5, `keeps receiving from ${s.server}`);
      return s;
    },
    15_000,
    100,
  );
  assert.ok(
    after.events.some((e) => e.kind === 'lost'),
    'the page saw the loss',
  );
  assert.ok(
    after.events.some((e) => e.kind === 'reconnected'),
    'and the reconnection',
  );
  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  mkdirSync(resultsDir, { recursive: true });
  await page.screenshot({ path: join(resultsDir, 'live-failover.png') });

  // The surviving list services mark the killed server down (mesh and health checks agree).
  const survivor = listUrls.find((_, i) => i !== victim)!;
  await eventually(
    async () => {
      const doc = (await (await fetch(survivor)).json()) as { servers: { id: string; status: string }[] };
      assert.equal(doc.servers.find((s) => s.id === first.server)?.status, 'down');
    },
    10_000,
    100,
  );
});
