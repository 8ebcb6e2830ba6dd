/**
 * The etcd registry on a three-node etcd cluster: when the leader dies, the registry (given
 * every endpoint) keeps working through the two others.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import { EtcdRegistry } from '../../src/registry/etcd/index.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';
import { EventRecorder } from './fixtures/etcd-helpers.js';
import { type EtcdCluster, startEtcdCluster } from './fixtures/etcd-server.js';

const skip = needsCommands('etcd registry', 'etcd');

describe('etcd registry on a three-node cluster', { skip }, () => {
  let cluster: EtcdCluster;
  const registries: EtcdRegistry[] = [];
  before(async () => {
    cluster = await startEtcdCluster(3);
  });
  after(async () => {
    for (const r of registries) await r.close().catch(() => {});
    await cluster?.stop();
  });

  it('keeps working when the leader is killed', async () => {
    const prefix = `/usher-test/${randomBytes(6).toString('hex')}/`;
    const start = async () => {
      const r = await EtcdRegistry.start({ endpoints: [...cluster.endpoints], prefix });
      registries.push(r);
      return r;
    };
    const a = await start();
    const b = await start();
    const log = new EventRecorder(b);
    await a.register(makeMember({ id: 'm1' }));
    await log.waitFor((e) => e.type === 'member-added' && e.member.id === 'm1', 'member-added(m1)');

    const leader = await cluster.leader();
    leader.kill();
    // A write can fail while the two others elect a new leader; it succeeds once they have.
    await eventually(() => a.setHealth('m1', 'down', 'after failover'), 30_000, 200);
    const health = await log.waitFor(
      (e) => e.type === 'health' && e.id === 'm1',
      'health(m1) after the leader died',
      30_000,
    );
    assert.equal(health.type === 'health' && health.health, 'down');
    await eventually(() => b.assign('after-failover', 1), 30_000, 200);
    await eventually(
      async () =>
        assert.ok(
          (await a.snapshot()).assignments.some((x) => x.key === 'after-failover'),
          'a sees what b wrote',
        ),
      30_000,
    );
    const next = await cluster.leader();
    assert.notEqual(next.name, leader.name, 'a new leader was elected');
  });
});
