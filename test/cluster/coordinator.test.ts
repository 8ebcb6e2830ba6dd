/**
 * Coordinator mode (C2.5b): three `Usher` instances share a real etcd; one is elected
 * coordinator, computes the plan and hands it out; all apply the same plan. The coordinator
 * stops: another is elected, and the plan for the two left is handed out with a higher epoch.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { ClusterSummary } from '../../src/cluster/cluster-role.js';
import { validateConfig } from '../../src/config/load.js';
import { Usher } from '../../src/runtime.js';
import { createLogger } from '../../src/util/logger.js';
import { startEtcd } from '../registry/fixtures/etcd-server.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';

const skip = needsCommands('cluster coordinator mode', 'etcd');
const logger = createLogger({ level: 'silent', format: 'json' });

test('coordinator mode: one elected member hands out the plan, another takes over when it stops', {
  skip,
  timeout: 60_000,
}, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const prefix = `/usher-test-${randomBytes(4).toString('hex')}/`;
  const availability: Record<string, number> = { n1: 1, n2: 2, n3: 1 };
  const ushers = new Map<string, Usher>();
  t.after(() => Promise.all([...ushers.values()].map((u) => u.close())));
  for (const [id, a] of Object.entries(availability)) {
    const config = validateConfig({
      registry: { kind: 'etcd', etcd: { endpoints: [etcd.endpoint], prefix, leaseTtlMs: 2000 } },
      pools: { web: { health: { kind: 'none' } } },
      cluster: {
        pool: 'web',
        member: { id, address: '127.0.0.1', port: 80 },
        vip: '10.99.0.100',
        exchange: 'coordinator',
        filter: 'none',
        availability: a,
        intervalMs: 200,
      },
    });
    ushers.set(id, await Usher.start(config, { logger }));
  }
  const summaries = () =>
    [...ushers.entries()].map(([id, u]) => [id, u.roles().cluster as ClusterSummary | undefined] as const);
  const agreed = (ids: string[]) => {
    const all = summaries().filter(([id]) => ids.includes(id));
    const first = all[0]![1];
    assert.ok(first, 'a plan is in force');
    for (const [id, s] of all) {
      assert.equal(s?.mode, 'coordinator', `${id} runs in coordinator mode`);
      assert.equal(
        s?.epoch,
        first.epoch,
        `${id} applies the same epoch: ${JSON.stringify(all.map(([i, x]) => [i, x?.epoch]))}`,
      );
      assert.deepEqual(
        Object.keys(s!.ranges).sort(),
        [...ids].sort(),
        `${id}'s plan covers exactly ${ids.join(', ')}`,
      );
      assert.ok(
        s?.coordinator && ids.includes(s.coordinator),
        `${id} knows the coordinator: ${s?.coordinator}`,
      );
    }
    return first;
  };
  const plan = await eventually(() => agreed(['n1', 'n2', 'n3']), 20_000, 50);
  // The shares follow availability 1:2:1 (within the bucket noise).
  assert.ok(Math.abs(plan.shares.n2! - 0.5) < 0.03, `n2's share ${plan.shares.n2}`);
  const coordinator = plan.coordinator!;
  t.diagnostic(`coordinator ${coordinator}, epoch ${plan.epoch}`);

  await ushers.get(coordinator)!.close();
  ushers.delete(coordinator);
  const rest = [...ushers.keys()];
  const next = await eventually(() => agreed(rest), 20_000, 50);
  assert.ok(next.epoch > plan.epoch, `a newer epoch: ${next.epoch} > ${plan.epoch}`);
  assert.notEqual(next.coordinator, coordinator, 'another member coordinates');
  t.diagnostic(`then coordinator ${next.coordinator}, epoch ${next.epoch}`);
});
