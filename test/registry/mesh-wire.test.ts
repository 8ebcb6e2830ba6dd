import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import type { MeshRegistry } from '../../src/registry/mesh/index.js';
import { eventually } from '../support/wait.js';
import { startNode } from './fixtures/mesh-cluster.js';

function frame(body: string | Buffer, length?: number): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length ?? bytes.length, 0);
  return Buffer.concat([header, bytes]);
}

const sockets = new Set<Socket>();

/** Opens a raw TCP connection to the node and writes `bytes`. */
async function raw(node: MeshRegistry, bytes: Buffer): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: node.address.port });
  sockets.add(socket);
  socket.on('error', () => {});
  socket.on('data', () => {}); // the node's hello, ignored
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(bytes);
  return socket;
}

function closedByPeer(socket: Socket): Promise<void> {
  return eventually(() =>
    assert.ok(socket.destroyed || socket.readableEnded, 'connection closed by the node'),
  );
}

describe('mesh wire: hostile input is counted and dropped', () => {
  const nodes: MeshRegistry[] = [];
  after(async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(nodes.map((n) => n.close()));
  });

  it('survives garbage, oversized and malformed frames, wrong versions and a wrong secret', async () => {
    const warnings: string[] = [];
    const a = await startNode({
      secret: 'right secret',
      logger: { warn: (_obj: object, msg?: string) => warnings.push(msg ?? '') },
    });
    nodes.push(a);
    await a.register(makeMember({ id: 'on-a', pool: 'live' }));
    const dropped = (reason: string) => a.stats().dropped[reason as 'malformed'] ?? 0;

    // Bytes that are not a frame at all: "GET " read as a length is far over the limit.
    const garbage = await raw(a, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await closedByPeer(garbage);
    assert.equal(dropped('too-large'), 1);

    const oversized = await raw(a, frame('{}', 0x7fff_ffff));
    await closedByPeer(oversized);
    assert.equal(dropped('too-large'), 2);

    const notJson = await raw(a, frame('{"t": "hello", oops'));
    await closedByPeer(notJson);
    assert.equal(dropped('malformed'), 1);

    const badUtf8 = await raw(a, frame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])));
    await closedByPeer(badUtf8);
    assert.equal(dropped('malformed'), 2);

    const wrongShape = await raw(a, frame(JSON.stringify({ t: 'hello', v: 1, id: 42, addr: [] })));
    await closedByPeer(wrongShape);
    assert.equal(dropped('malformed'), 3);

    const notAnObject = await raw(a, frame('[1, 2, 3]'));
    await closedByPeer(notAnObject);
    assert.equal(dropped('malformed'), 4);

    const otherVersion = await raw(a, frame(JSON.stringify({ t: 'hello', v: 99 })));
    await closedByPeer(otherVersion);
    assert.equal(dropped('version'), 1);
    assert.ok(
      warnings.some((w) => w.includes('protocol version 99') && w.includes('speaks version 1')),
      `a clear log line for the refused version; got ${JSON.stringify(warnings)}`,
    );

    // An unknown type is dropped but does not end the connection (a later version may add types).
    const unknown = await raw(a, frame(JSON.stringify({ t: 'gossip-v9', x: 1 })));
    await eventually(() => assert.equal(dropped('unknown-type'), 1));
    assert.equal(unknown.destroyed, false);
    unknown.destroy();

    // Data before the handshake is refused.
    const early = await raw(a, frame(JSON.stringify({ t: 'update', members: [] })));
    await closedByPeer(early);
    assert.equal(dropped('handshake'), 1);

    // A node with the wrong secret, and one with none, never get in.
    const intruder = await startNode({ secret: 'wrong secret', seeds: [a.advertise] });
    nodes.push(intruder);
    const open = await startNode({ seeds: [a.advertise] });
    nodes.push(open);
    await eventually(() =>
      assert.ok(a.stats().authFailures >= 2, `auth failures: ${a.stats().authFailures}`),
    );
    assert.ok(dropped('auth') >= 2, 'auth drops counted');
    assert.equal(await intruder.get('on-a'), undefined);
    assert.equal(await open.get('on-a'), undefined);
    assert.ok(
      !a.nodes().some((n) => n.id === intruder.nodeId || n.id === open.nodeId),
      'the intruders are not members of the mesh',
    );
    await intruder.close();
    await open.close();

    // A legitimate peer still joins and syncs both ways.
    const friend = await startNode({ secret: 'right secret', seeds: [a.advertise] });
    nodes.push(friend);
    await friend.register(makeMember({ id: 'on-friend', pool: 'live' }));
    await eventually(async () => {
      assert.equal((await friend.get('on-a'))?.health, 'up');
      assert.equal((await a.get('on-friend'))?.health, 'up');
    });
    const stats = a.stats();
    assert.equal(stats.connections, 1);
    assert.ok(stats.framesIn > 0 && stats.framesOut > 0, 'frames counted');
  });
});
