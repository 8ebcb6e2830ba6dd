/**
 * Scale-out with `usher run`: two processes share one view through a real etcd. A runs two
 * live-data servers (its members), B only serves the list; B lists A's servers. A is killed
 * with SIGKILL: its members' lease is no longer renewed and B's list drops them within the TTL.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { needsCommands } from '../support/env.js';
import { UsherProcess } from '../support/usher-process.js';
import { eventually } from '../support/wait.js';
import { startEtcd } from './fixtures/etcd-server.js';

const skip = needsCommands('usher over etcd', 'etcd');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

test('two usher processes share one view through etcd; a killed one’s members vanish within the lease', {
  skip,
  timeout: 90_000,
}, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const dir = mkdtempSync(join(tmpdir(), 'usher-etcd-run-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = `/usher-test-${randomBytes(4).toString('hex')}/`;
  const registry = { kind: 'etcd', etcd: { endpoints: [etcd.endpoint], prefix, leaseTtlMs: 2000 } };
  const listPort = await freePort();
  const adminPort = await freePort();
  const configs = {
    a: {
      registry,
      log: { level: 'warn', format: 'json' },
      pools: { live: { health: { kind: 'none' } } },
      demo: { streams: [{ pool: 'live', name: 'a', count: 2, basePort: 0 }] },
    },
    b: {
      registry,
      log: { level: 'warn', format: 'json' },
      pools: { live: { health: { kind: 'none' } } },
      list: { port: listPort, pools: ['live'] },
      admin: { port: adminPort },
    },
  };
  const processes: UsherProcess[] = [];
  t.after(() => Promise.all(processes.map((p) => p.stop('SIGKILL'))));
  for (const [name, config] of Object.entries(configs)) {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(config));
    processes.push(new UsherProcess(['run', file]));
  }
  await Promise.all(processes.map((p) => p.waitFor(/usher: running/, 30_000)));
  const list = async () =>
    (
      (await (await fetch(`http://127.0.0.1:${listPort}/usher/list/live`)).json()) as {
        servers: { id: string; status: string }[];
      }
    ).servers.map((s) => `${s.id}:${s.status}`);

  await eventually(
    async () => assert.deepEqual(await list(), ['a-1:up', 'a-2:up'], "B lists A's servers"),
    10_000,
    50,
  );
  const killedAt = Date.now();
  await processes[0]!.stop('SIGKILL');
  const gone = await eventually(
    async () => {
      assert.deepEqual(await list(), [], "A's servers leave B's list");
      return Date.now() - killedAt;
    },
    15_000,
    50,
  );
  t.diagnostic(`A's members left B's list ${gone} ms after A was killed (lease 2 s)`);
  // The lease is 2 s, renewed every third; etcd grants whole seconds: the members go within about 3 s.
  assert.ok(gone <= 2000 + 1500, `gone within the lease and a margin: ${gone} ms`);

  // etcd goes away: B keeps serving its last view and says so in its metrics.
  const connected = async () => {
    const text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    return /^usher_registry_connected\{kind="etcd"\} (\d)/m.exec(text)?.[1];
  };
  assert.equal(await connected(), '1', 'connected to etcd');
  etcd.kill();
  await eventually(
    async () => assert.equal(await connected(), '0', 'the metric says etcd is gone'),
    15_000,
    100,
  );
  assert.deepEqual(await list(), [], 'the list is still served, from the last view');
});
