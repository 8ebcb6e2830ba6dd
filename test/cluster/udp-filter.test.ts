/**
 * The userspace UDP filter (seed 002, C2.1) on loopback, without multicast: each filter binds
 * its own unicast port and the test plays the flooding link by sending every datagram, from
 * one client socket, to every filter. The multicast path runs in lab-udp.test.ts.
 */
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { after, describe, it } from 'node:test';
import { ownerOf, planRanges } from '../../src/cluster/plan.js';
import { inRanges, UdpClusterFilter, type UdpDropReason } from '../../src/cluster/udp-filter.js';
import { connectionValue } from '../../src/cluster/value.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { eventually } from '../support/wait.js';

const DATAGRAMS = 200;

function bindClient(): Promise<Socket> {
  const s = createSocket('udp4');
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function sendTo(s: Socket, data: string, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    s.send(data, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
  );
}

const rinfo = (address: string, port: number, size = 1): RemoteInfo => ({
  address,
  port,
  family: 'IPv4',
  size,
});

describe('UdpClusterFilter', () => {
  const filters: UdpClusterFilter[] = [];
  const clients: Socket[] = [];
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(filters.map((f) => f.close()));
  });

  it('two filters with complementary ranges deliver each datagram exactly once, to the predicted owner', async () => {
    const plan = planRanges([
      { id: 'a', availability: 1 },
      { id: 'b', availability: 1 },
    ]);
    const got = new Map<string, string[]>(); // payload -> members that delivered it
    for (const id of ['a', 'b']) {
      const f = new UdpClusterFilter({ port: 0, memberId: id, ranges: plan.ranges[id]! });
      filters.push(f);
      f.on('message', (data, _rinfo, value) => {
        assert.ok(inRanges(plan.ranges[id]!, value));
        const p = data.toString();
        got.set(p, [...(got.get(p) ?? []), id]);
      });
      await f.start();
    }
    const ports = filters.map((f) => f.address().port);
    const expected = new Map<string, string>();
    for (let i = 0; i < DATAGRAMS; i++) {
      const c = await bindClient(); // kept open: every datagram has its own source port
      clients.push(c);
      const src = c.address();
      const payload = `d${i}`;
      expected.set(payload, ownerOf(plan, connectionValue({ srcAddress: src.address, srcPort: src.port }))!);
      for (const port of ports) await sendTo(c, payload, port);
    }
    // Every datagram judged by both filters: nothing still in flight.
    await eventually(() => {
      for (const f of filters)
        assert.equal(f.stats().received, DATAGRAMS, `${f.stats().memberId} judged every datagram`);
    });
    for (const [payload, owner] of expected)
      assert.deepEqual(got.get(payload), [owner], `${payload} delivered by exactly ${owner}`);
    const [a, b] = filters.map((f) => f.stats());
    assert.equal(a!.accepted + b!.accepted, DATAGRAMS);
    assert.equal(a!.dropped['not-mine'], b!.accepted);
    assert.ok(a!.accepted > 0 && b!.accepted > 0, `both members get a share: ${a!.accepted}/${b!.accepted}`);
  });

  it('send replies from the service socket: the client sees the filter address and port', async () => {
    const f = new UdpClusterFilter({ port: 0, memberId: 'r', ranges: [[0, 31999]] });
    filters.push(f);
    f.on('message', (data, from) => void f.send(`re:${data}`, from));
    await f.start();
    const c = await bindClient();
    clients.push(c);
    const reply = new Promise<[string, RemoteInfo]>((resolve) =>
      c.once('message', (d, r) => resolve([`${d}`, r])),
    );
    await sendTo(c, 'ping', f.address().port);
    const [text, from] = await reply;
    assert.equal(text, 're:ping');
    assert.deepEqual([from.address, from.port], ['127.0.0.1', f.address().port]);
  });

  it('malformed and oversized input is counted and dropped, never thrown', () => {
    const f = new UdpClusterFilter({ port: 0, memberId: 'x', ranges: [[0, 31999]], maxDatagramBytes: 4 });
    const drops: UdpDropReason[] = [];
    f.on('drop', (reason) => drops.push(reason));
    f.handle(Buffer.from('12345'), rinfo('10.0.0.1', 1000));
    f.handle(Buffer.from('ok'), rinfo('not-an-address', 1000));
    f.handle(Buffer.from('ok'), rinfo('10.0.0.1', 70000));
    f.handle(Buffer.from('ok'), rinfo('10.0.0.1', 1000));
    assert.deepEqual(drops, ['oversized', 'malformed', 'malformed']);
    assert.deepEqual(f.stats(), {
      memberId: 'x',
      received: 4,
      accepted: 1,
      dropped: { 'not-mine': 0, malformed: 2, oversized: 1 },
      socketErrors: 0,
    });
  });

  it('setRanges swaps the ranges at once; bad ranges throw and change nothing', () => {
    const src = rinfo('10.0.0.9', 4242);
    const value = connectionValue({ srcAddress: src.address, srcPort: src.port });
    const f = new UdpClusterFilter({ port: 0, memberId: 'x', ranges: [] });
    let accepted = 0;
    f.on('message', () => accepted++);
    f.handle(Buffer.from('1'), src);
    f.setRanges([[value, value]]);
    f.handle(Buffer.from('2'), src);
    assert.throws(() => f.setRanges([[5, 1]]), InvalidArgumentError);
    assert.deepEqual(f.ranges, [[value, value]]);
    f.setRanges([]);
    f.handle(Buffer.from('3'), src);
    assert.equal(accepted, 1);
    assert.equal(f.stats().dropped['not-mine'], 2);
  });

  it('rejects bad options', () => {
    const base = { port: 7000, memberId: 'x', ranges: [] };
    assert.throws(() => new UdpClusterFilter({ ...base, group: '10.0.0.1' }), InvalidArgumentError);
    assert.throws(() => new UdpClusterFilter({ ...base, port: 70000 }), InvalidArgumentError);
    assert.throws(() => new UdpClusterFilter({ ...base, valueOptions: { seed: -1 } }), InvalidArgumentError);
  });
});
