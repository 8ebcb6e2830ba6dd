import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { type LoadReport, makeMember } from '../../src/core/model.js';
import { encodeFrame } from '../../src/registry/mesh/framing.js';
import { MeshRegistry } from '../../src/registry/mesh/index.js';
import type { MemberRecord, Message } from '../../src/registry/mesh/messages.js';
import type { RegistryEvent } from '../../src/registry/registry.js';
import { eventually } from '../support/wait.js';
import { connected, startNode } from './fixtures/mesh-cluster.js';

const load = (users: number): LoadReport => ({
  users,
  connections: 0,
  inFlight: 0,
  cpu: 0,
  custom: {},
  timestamp: 1,
});

describe('mesh replication', () => {
  const nodes: MeshRegistry[] = [];
  const cleanups: Array<() => void> = [];
  const start = async (options: Parameters<typeof startNode>[0] = {}) => {
    const node = await startNode(options);
    nodes.push(node);
    return node;
  };
  after(async () => {
    for (const c of cleanups) c();
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('nodes seeded with one form a full mesh; a late joiner gets the whole state, deletions included', async () => {
    const a = await start();
    const b = await start({ seeds: [a.advertise] });
    const c = await start({ seeds: [a.advertise] });
    await connected([a, b, c]);
    await a.register(makeMember({ id: 'm1', pool: 'live' }));
    await b.assign('k', { x: 1 });
    await c.register(makeMember({ id: 'm2', pool: 'live' }));
    await c.deregister('m2', 'scaled-in');
    await b.assign('gone', 1);
    await b.unassign('gone');
    const d = await start({ seeds: [b.advertise] });
    await connected([a, b, c, d]);
    for (const node of [a, b, c, d]) {
      await eventually(async () => {
        const snap = await node.snapshot();
        assert.deepEqual(
          snap.members.map((v) => v.member.id),
          ['m1'],
        );
        assert.deepEqual(
          snap.assignments.map((x) => [x.key, x.value]),
          [['k', { x: 1 }]],
        );
      });
    }
  });

  it('concurrent writes of different fields on different nodes do not clobber each other', async () => {
    const a = await start();
    const b = await start({ seeds: [a.advertise] });
    await connected([a, b]);
    await a.register(makeMember({ id: 'm', pool: 'live' }));
    await eventually(async () => assert.ok(await b.get('m'), 'm visible on b'));
    await Promise.all([b.setHealth('m', 'draining', 'operator on b'), a.report('m', load(7))]);
    await Promise.all([a.assign('same', 'from a'), b.assign('same', 'from b')]);
    for (const node of [a, b]) {
      await eventually(async () => {
        const view = await node.get('m');
        assert.equal(view?.health, 'draining');
        assert.equal(view?.load?.users, 7);
      });
    }
    await eventually(async () => {
      const [x, y] = await Promise.all([a.snapshot(), b.snapshot()]);
      const value = (s: typeof x) => s.assignments.find((v) => v.key === 'same')?.value;
      assert.equal(value(x), value(y), 'last writer wins on both nodes');
    });
  });

  it('keepAlive on another node renews the owner’s lease; unknown ids reject there too', async () => {
    const a = await start();
    const b = await start({ seeds: [a.advertise] });
    await connected([a, b]);
    const removed: RegistryEvent[] = [];
    b.watch((e) => {
      if (e.type === 'member-removed') removed.push(e);
    });
    await a.register(makeMember({ id: 'kept' }), { ttlMs: 300 });
    await a.register(makeMember({ id: 'control' }), { ttlMs: 300 });
    await eventually(async () => assert.ok(await b.get('kept'), 'kept visible on b'));
    const renew = setInterval(() => b.keepAlive('kept').catch(() => {}), 50);
    cleanups.push(() => clearInterval(renew));
    await eventually(() =>
      assert.ok(
        removed.some((e) => e.type === 'member-removed' && e.id === 'control'),
        'control expired',
      ),
    );
    assert.ok(await b.get('kept'), 'renewed through b');
    clearInterval(renew);
    await eventually(() =>
      assert.ok(
        removed.some((e) => e.type === 'member-removed' && e.id === 'kept' && e.reason === 'lease-expired'),
        'kept expired once renewals stopped',
      ),
    );
    await assert.rejects(b.keepAlive('ghost'), { code: 'USHER_ERR_NOT_FOUND' });
  });

  it('close is a graceful leave: peers mark the node left and remove its members', async () => {
    const a = await start();
    const b = await start({ seeds: [a.advertise] });
    await connected([a, b]);
    const events: RegistryEvent[] = [];
    b.watch((e) => events.push(e));
    await a.register(makeMember({ id: 'on-a' }));
    await eventually(async () => assert.ok(await b.get('on-a'), 'on-a visible on b'));
    await a.close();
    await eventually(() => {
      assert.equal(b.nodes().find((n) => n.id === a.nodeId)?.state, 'left');
      const e = events.find((x) => x.type === 'member-removed' && x.id === 'on-a');
      assert.equal(e?.type === 'member-removed' && e.reason, 'node-left');
    });
    assert.ok(!events.some((e) => e.type === 'health'), 'no down/suspect on the way out');

    // The same node id starting again rejoins (refuting `left`) and its new writes win.
    const again = await start({ nodeId: a.nodeId, seeds: [b.advertise] });
    await again.register(makeMember({ id: 'on-a' }));
    await eventually(async () => {
      assert.equal(b.nodes().find((n) => n.id === a.nodeId)?.state, 'alive');
      assert.equal((await b.get('on-a'))?.health, 'up');
    });
  });

  it('a peer’s state maps onto its members’ health; an operator’s draining is left alone', async () => {
    const n = await start({ reapAfterMs: 1_000 });
    const events: RegistryEvent[] = [];
    n.watch((e) => events.push(e));
    // A hand-made peer: it completes the handshake, publishes two members, then never answers.
    const held = new Set<Socket>();
    const server: Server = createServer((s) => {
      held.add(s);
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const peer = connect({ host: '127.0.0.1', port: n.address.port });
    peer.on('error', () => {});
    peer.on('data', () => {});
    cleanups.push(() => {
      peer.destroy();
      for (const s of held) s.destroy();
      server.close();
    });
    const send = (m: Message) => peer.write(encodeFrame(m));
    const ver = { c: Date.now(), n: 'fake' };
    const record = (id: string): MemberRecord => ({
      id,
      def: { m: makeMember({ id, pool: 'live' }), owner: 'fake', ttl: null, ver },
      health: { s: 'up', r: 'registered', mesh: false, ver },
      load: { l: null, ver },
    });
    send({
      t: 'hello',
      v: 1,
      id: 'fake',
      addr: `127.0.0.1:${port}`,
      inc: 0,
      nonce: 'n'.repeat(32),
      auth: false,
    });
    send({ t: 'update', members: [record('fm1'), record('fm2')] });
    await eventually(async () => assert.equal((await n.get('fm2'))?.health, 'up'));
    await n.setHealth('fm2', 'draining', 'operator');

    // Silent, but its port accepts connections: suspect.
    await eventually(async () => {
      assert.equal(n.nodes().find((x) => x.id === 'fake')?.state, 'suspect');
      assert.equal((await n.get('fm1'))?.health, 'suspect');
    });
    // It refutes with a higher incarnation: alive, and the mesh undoes what it did.
    send({ t: 'hb', inc: 1 });
    await eventually(async () => assert.equal((await n.get('fm1'))?.health, 'up'));
    // Its process goes away (connection closed, port refused): dead at once.
    peer.destroy();
    for (const s of held) s.destroy();
    server.close();
    await eventually(async () => {
      assert.equal(n.nodes().find((x) => x.id === 'fake')?.state, 'dead');
      assert.equal((await n.get('fm1'))?.health, 'down');
    });
    assert.equal((await n.get('fm2'))?.health, 'draining', 'an operator’s draining is never overridden');
    const healthOf = (id: string) =>
      events.flatMap((e) => (e.type === 'health' && e.id === id ? [`${e.health}: ${e.reason}`] : []));
    assert.deepEqual(healthOf('fm1').slice(0, 2), [
      'suspect: mesh: node fake suspect',
      'up: mesh: node fake alive',
    ]);
    assert.equal(healthOf('fm1').at(-1), 'down: mesh: node fake dead');
    assert.deepEqual(healthOf('fm2'), ['draining: operator']);
    // After reapAfterMs its members are removed.
    await eventually(() => {
      const reasons = events.flatMap((e) => (e.type === 'member-removed' ? [`${e.id}: ${e.reason}`] : []));
      assert.deepEqual(reasons.sort(), ['fm1: node-dead', 'fm2: node-dead']);
    });
  });

  it('a bad option is refused with InvalidArgumentError naming it', async () => {
    const bad: Array<[object, string]> = [
      [{ nodeId: '' }, 'nodeId'],
      [{ nodeId: 'x', intervalMs: 0 }, 'intervalMs'],
      [{ nodeId: 'x', port: 70_000 }, 'port'],
      [{ nodeId: 'x', seeds: ['nowhere'] }, 'seeds[0]'],
      [{ nodeId: 'x', suspicionMinMs: 5_000, suspicionMaxMs: 1_000 }, 'suspicionMaxMs'],
      [{ nodeId: 'x', secret: '' }, 'secret'],
      [{ nodeId: 'x', maxFrameBytes: 10 }, 'maxFrameBytes'],
    ];
    for (const [options, name] of bad) {
      await assert.rejects(
        MeshRegistry.start(options as never),
        (error: Error & { code?: string }) =>
          error.code === 'USHER_ERR_INVALID_ARGUMENT' && error.message.includes(`option ${name}:`),
        name,
      );
    }
  });
});
