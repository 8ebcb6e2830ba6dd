/**
 * Three balancer instances share one view through etcd while members come and go: a member
 * instance registers, reports, drains and deregisters members in a burst, and the three
 * watchers end with identical snapshots that match what was written, having each seen every
 * change in the same order.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import { EtcdRegistry } from '../../src/registry/etcd/index.js';
import type { RegistryEvent } from '../../src/registry/registry.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';
import { startEtcd } from './fixtures/etcd-server.js';

const skip = needsCommands('etcd balancers', 'etcd');

test('three balancers stay consistent while members come and go', { skip, timeout: 60_000 }, async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const prefix = `/usher-test-${randomBytes(4).toString('hex')}/`;
  const open = () => EtcdRegistry.start({ endpoints: [etcd.endpoint], prefix });
  const writer = await open();
  const balancers = [await open(), await open(), await open()];
  t.after(() => Promise.all([writer, ...balancers].map((r) => r.close())));
  const seen = balancers.map(() => [] as string[]);
  for (const [i, b] of balancers.entries()) {
    b.watch((e: RegistryEvent) => {
      if (e.type === 'member-added' || e.type === 'member-removed' || e.type === 'health')
        seen[i]!.push(`${e.type}:${e.type === 'member-added' ? e.member.id : e.id}`);
    });
  }

  // A burst of churn: 40 members join, half of them report, a quarter drain, a third leave.
  const ids = Array.from({ length: 40 }, (_, i) => `m${i}`);
  await Promise.all(ids.map((id) => writer.register(makeMember({ id, pool: 'web' }))));
  await Promise.all(
    ids
      .filter((_, i) => i % 2 === 0)
      .map((id, i) =>
        writer.report(id, {
          users: i,
          connections: i,
          inFlight: 0,
          cpu: 0,
          custom: {},
          timestamp: Date.now(),
        }),
      ),
  );
  await Promise.all(ids.filter((_, i) => i % 4 === 1).map((id) => writer.setHealth(id, 'draining', 'test')));
  await Promise.all(ids.filter((_, i) => i % 3 === 2).map((id) => writer.deregister(id, 'scaled in')));

  const expected = ids.filter((_, i) => i % 3 !== 2).sort();
  const views = await eventually(
    async () => {
      const snaps = await Promise.all(balancers.map((b) => b.snapshot()));
      const shapes = snaps.map((s) =>
        s.members
          .map((v) => `${v.member.id}:${v.health}:${v.load?.users ?? '-'}`)
          .sort()
          .join(','),
      );
      for (const [i, s] of snaps.entries())
        assert.deepEqual(
          s.members.map((v) => v.member.id).sort(),
          expected,
          `balancer ${i} has the members left`,
        );
      assert.equal(new Set(shapes).size, 1, 'the three views are identical');
      return snaps[0]!;
    },
    15_000,
    50,
  );
  assert.equal(
    views.members.filter((v) => v.health === 'draining').length,
    ids.filter((_, i) => i % 4 === 1 && i % 3 !== 2).length,
  );
  // Every balancer saw the same changes in the same order.
  assert.deepEqual(seen[1], seen[0], 'balancer 1 saw what balancer 0 saw');
  assert.deepEqual(seen[2], seen[0], 'balancer 2 saw what balancer 0 saw');
});
