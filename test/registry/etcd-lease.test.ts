/**
 * Leases and outages against a real etcd: a member process that dies stops renewing and is
 * removed with reason lease-expired; an instance that loses etcd keeps its last view, says so,
 * fails writes, and picks up where it was when etcd comes back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import { EtcdRegistry } from '../../src/registry/etcd/index.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';
import { EventRecorder, MemberProcess } from './fixtures/etcd-helpers.js';
import { type EtcdServer, startEtcd } from './fixtures/etcd-server.js';

const skip = needsCommands('etcd registry', 'etcd');
const TTL_MS = 1_000;
/** etcd checks leases for expiry every 500 ms; the rest is slack for a busy machine. */
const EXPIRY_DEADLINE_MS = TTL_MS + 9_000;

const freshPrefix = () => `/usher-test/${randomBytes(6).toString('hex')}/`;

describe('etcd registry: leases and outages', { skip }, () => {
  let server: EtcdServer;
  const cleanups: (() => Promise<void>)[] = [];
  before(async () => {
    server = await startEtcd({ name: 'lease' });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });
  after(async () => {
    await server?.stop();
  });

  async function registry(prefix: string): Promise<EtcdRegistry> {
    const r = await EtcdRegistry.start({ endpoints: [server.endpoint], prefix, dialTimeoutMs: 2_000 });
    cleanups.push(() => r.close());
    return r;
  }

  it('a member process killed with SIGKILL is removed with reason lease-expired', async () => {
    const prefix = freshPrefix();
    const watcher = await registry(prefix);
    const log = new EventRecorder(watcher);
    const member = new MemberProcess({ endpoint: server.endpoint, prefix, id: 'proc-1', ttlMs: TTL_MS });
    cleanups.push(() => member.kill());

    await log.waitFor((e) => e.type === 'member-added' && e.member.id === 'proc-1', 'member-added(proc-1)');
    // Renewals over more than twice the TTL keep it registered.
    await member.waitLine((l) => l.type === 'kept' && (l.n as number) >= 10, '10 renewals');
    assert.ok(await watcher.get('proc-1'), 'still registered while renewed');
    assert.deepEqual(
      log.events.filter((e) => e.type === 'member-removed').map((e) => e.type),
      [],
      'no removal while renewed',
    );

    await member.kill();
    const removed = await log.waitFor(
      (e) => e.type === 'member-removed' && e.id === 'proc-1',
      'member-removed(proc-1) after SIGKILL',
      EXPIRY_DEADLINE_MS,
    );
    assert.equal(removed.type === 'member-removed' && removed.reason, 'lease-expired');
    assert.equal(await watcher.get('proc-1'), undefined);
  });

  it('etcd down: the last view stays, writes fail; etcd back: the watch resumes, own members stay', async () => {
    const prefix = freshPrefix();
    const self = await registry(prefix);
    const other = await registry(prefix);
    const log = new EventRecorder(self);
    await self.register(makeMember({ id: 'self-1' }), { ttlMs: 2_000 });
    const renew = setInterval(() => self.keepAlive('self-1').catch(() => {}), 300);
    cleanups.push(async () => clearInterval(renew));
    await other.assign('before', 1);
    await log.waitFor(
      (e) => e.type === 'assignment-set' && e.assignment.key === 'before',
      'assignment before',
    );
    const revisionBefore = (await self.snapshot()).revision;

    server.kill();
    await eventually(() => assert.equal(self.connected, false, 'self sees etcd gone'), 10_000);
    assert.equal(self.stats().connected, false);
    assert.ok(await self.get('self-1'), 'get answers from the last view');
    const snap = await self.snapshot();
    assert.equal(snap.revision, revisionBefore);
    assert.deepEqual(
      snap.assignments.map((a) => a.key),
      ['before'],
    );
    await assert.rejects(self.assign('during', 1), (error: Error & { code?: string }) => {
      assert.equal(error.code, 'USHER_ERR_REGISTRY', 'a write while etcd is down');
      return true;
    });
    assert.ok(self.stats().writesFailed >= 1, 'failed writes are counted');

    await server.restart();
    await eventually(() => assert.equal(self.connected, true, 'self reconnected'), 30_000);
    assert.ok(self.stats().reconnects >= 1, 'the reconnect is counted');
    await eventually(() => other.assign('after', 2), 30_000);
    await log.waitFor(
      (e) => e.type === 'assignment-set' && e.assignment.key === 'after',
      'a change made elsewhere after the outage',
      30_000,
    );
    await eventually(async () => assert.ok(await other.get('self-1'), 'self-1 present for others'), 10_000);
    await self.setHealth('self-1', 'draining', 'after the outage');
    await log.waitFor((e) => e.type === 'health' && e.id === 'self-1', 'health(self-1) after the outage');
  });
});
