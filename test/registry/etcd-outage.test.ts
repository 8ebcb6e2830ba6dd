/**
 * One instance cut off etcd (a TCP proxy between them) while etcd and the other instances run
 * on: its members' leases expire and are registered again when the path is back; a watch that
 * fell behind a compaction reads the state again and reports the differences as events.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { makeMember } from '../../src/core/model.js';
import { EtcdRegistry } from '../../src/registry/etcd/index.js';
import { needsCommands } from '../support/env.js';
import { eventually } from '../support/wait.js';
import { EventRecorder } from './fixtures/etcd-helpers.js';
import { startProxy, type TcpProxy } from './fixtures/etcd-proxy.js';
import { type EtcdServer, startEtcd } from './fixtures/etcd-server.js';

const skip = needsCommands('etcd registry', 'etcd');
const freshPrefix = () => `/usher-test/${randomBytes(6).toString('hex')}/`;
const is =
  <T extends string>(type: T, id: string) =>
  (e: { type: string; id?: string; member?: { id: string }; assignment?: { key: string }; key?: string }) =>
    e.type === type && (e.id ?? e.member?.id ?? e.assignment?.key ?? e.key) === id;

describe('etcd registry: partitions', { skip }, () => {
  let server: EtcdServer;
  let proxy: TcpProxy;
  let raw: Etcd3;
  const cleanups: (() => Promise<void>)[] = [];
  before(async () => {
    server = await startEtcd({ name: 'outage' });
    raw = new Etcd3({ hosts: [server.endpoint] });
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });
  after(async () => {
    raw?.close();
    await server?.stop();
  });

  async function start(endpoint: string, prefix: string): Promise<EtcdRegistry> {
    const r = await EtcdRegistry.start({ endpoints: [endpoint], prefix, dialTimeoutMs: 2_000 });
    cleanups.push(() => r.close());
    return r;
  }

  async function cutOff(prefix: string) {
    proxy = await startProxy(server.clientPort);
    cleanups.push(() => proxy.close());
    const cut = await start(proxy.endpoint, prefix);
    const other = await start(server.endpoint, prefix);
    return { cut, other };
  }

  it('a member whose lease expired during a partition is registered again when it ends', async () => {
    const prefix = freshPrefix();
    const { cut, other } = await cutOff(prefix);
    const log = new EventRecorder(other);
    await cut.register(makeMember({ id: 'far-1' }), { ttlMs: 1_000, health: 'draining' });
    const renew = setInterval(() => cut.keepAlive('far-1').catch(() => {}), 200);
    cleanups.push(async () => clearInterval(renew));
    await log.waitFor(is('member-added', 'far-1'), 'member-added(far-1)');

    await proxy.cut();
    const removed = await log.waitFor(is('member-removed', 'far-1'), 'expiry during the partition');
    assert.equal(removed.type === 'member-removed' && removed.reason, 'lease-expired');
    await eventually(() => assert.equal(cut.connected, false, 'the cut instance knows'), 10_000);
    assert.equal((await cut.get('far-1'))?.health, 'draining', 'the cut instance keeps its last view');

    const mark = log.events.length;
    await proxy.restore();
    await log.waitFor(is('member-added', 'far-1'), 'far-1 registered again', 30_000, mark);
    await eventually(() => assert.equal(cut.stats().reregistered, 1, 'counted as re-registered'));
    await eventually(async () => assert.equal((await other.get('far-1'))?.health, 'draining', 'health kept'));
    // Renewals work again on the new lease: far-1 outlives a control member with the same TTL.
    const since = log.events.length;
    await other.register(makeMember({ id: 'control' }), { ttlMs: 1_000 });
    await log.waitFor(is('member-removed', 'control'), 'expiry of the control member', 10_000, since);
    assert.deepEqual(
      log.events.slice(since).filter(is('member-removed', 'far-1')),
      [],
      'far-1 is renewed on its new lease',
    );
  });

  it('a member deregistered elsewhere during the partition is not brought back', async () => {
    const prefix = freshPrefix();
    const { cut, other } = await cutOff(prefix);
    const log = new EventRecorder(other);
    await cut.register(makeMember({ id: 'far-2' }));
    await log.waitFor(is('member-added', 'far-2'), 'member-added(far-2)');
    await proxy.cut();
    await other.deregister('far-2', 'operator');
    await log.waitFor(is('member-removed', 'far-2'), 'member-removed(far-2)');
    const cutLog = new EventRecorder(cut);
    await proxy.restore();
    const removed = await cutLog.waitFor(is('member-removed', 'far-2'), 'the cut instance learns', 30_000);
    assert.equal(removed.type === 'member-removed' && removed.reason, 'operator');
    await other.assign('fence', 1);
    await cutLog.waitFor(is('assignment-set', 'fence'), 'fence on the cut instance', 10_000);
    assert.equal(await other.get('far-2'), undefined);
    assert.equal(cut.stats().reregistered, 0);
  });

  it('a watch that fell behind a compaction reads the state again and emits the differences', async () => {
    const prefix = freshPrefix();
    const { cut, other } = await cutOff(prefix);
    await other.register(makeMember({ id: 'stays' }));
    await other.register(makeMember({ id: 'goes' }));
    await other.assign('k', 1);
    await other.assign('gone', 1);
    await eventually(async () => assert.equal((await cut.snapshot()).assignments.length, 2, 'cut caught up'));
    const log = new EventRecorder(cut);

    await proxy.cut();
    await eventually(() => assert.equal(cut.connected, false, 'cut off'), 10_000);
    await other.deregister('goes', 'scaled-in');
    await other.register(makeMember({ id: 'new' }));
    await other.setHealth('stays', 'down', 'probe');
    await other.assign('k', 2);
    await other.unassign('gone');
    const { header } = await raw.get(`${prefix}x`).exec();
    await raw.kv.compact({ revision: header.revision, physical: true });
    await proxy.restore();

    await eventually(() => assert.ok(cut.stats().resyncs >= 1, 'resynced after the compaction'), 30_000);
    await log.waitFor(is('member-added', 'new'), 'member-added(new)');
    const removed = await log.waitFor(is('member-removed', 'goes'), 'member-removed(goes)');
    assert.equal(removed.type === 'member-removed' && removed.reason, 'scaled-in');
    const health = await log.waitFor(is('health', 'stays'), 'health(stays)');
    assert.equal(
      health.type === 'health' && `${health.previous}->${health.health} ${health.reason}`,
      'up->down probe',
    );
    await log.waitFor(is('assignment-set', 'k'), 'assignment-set(k)');
    await log.waitFor(is('assignment-deleted', 'gone'), 'assignment-deleted(gone)');
    const revisions = log.events.map((e) => e.revision);
    assert.deepEqual(
      revisions,
      [...revisions].sort((a, b) => a - b),
      'revisions in order',
    );
    assert.deepEqual(
      (await cut.snapshot()).members.map((v) => v.member.id).sort(),
      (await other.snapshot()).members.map((v) => v.member.id).sort(),
    );
  });
});
