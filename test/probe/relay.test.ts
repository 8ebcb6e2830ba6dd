/**
 * P0.9 server-to-server: members of different sites relay what they broadcast to each other
 * (RELAY, HMAC-signed), so clients placed on different sites share one world.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { decode, encode } from '../../src/probe/codec.js';
import { ProbeMember, type ProbeMemberOptions, type RelayedData } from '../../src/probe/member.js';
import { type Endpoint, PADDED_REQUEST_BYTES } from '../../src/probe/messages.js';
import { Relay } from '../../src/probe/relay.js';
import { eventually } from '../support/wait.js';
import { TestSocket } from './fake-assigner.js';

const SECRET = 'relay-test-secret-of-32-bytes!!!';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function socket(host?: string): Promise<TestSocket> {
  const s = await TestSocket.open(host);
  cleanups.push(() => s.close());
  return s;
}

async function member(options: Partial<ProbeMemberOptions> & { id: string }): Promise<ProbeMember> {
  const m = new ProbeMember({ app: 'game', incarnations: ['world-1', 'world-2'], ...options });
  await m.start();
  cleanups.push(() => m.close());
  return m;
}

/** Two members of two sites, each the other's peer (ports are known only after binding). */
async function twoSites(secrets: [string, string] = [SECRET, SECRET]): Promise<[ProbeMember, ProbeMember]> {
  const portEast = await freePort();
  const portWest = await freePort();
  const east = await member({
    id: 'east-1',
    site: 'east',
    port: portEast,
    peers: [{ address: '127.0.0.1', port: portWest }],
    relaySecret: secrets[0],
  });
  const west = await member({
    id: 'west-1',
    site: 'west',
    port: portWest,
    peers: [{ address: '127.0.0.1', port: portEast }],
    relaySecret: secrets[1],
  });
  return [east, west];
}

/** A UDP port that was free a moment ago (bound and released). */
async function freePort(): Promise<number> {
  const s = await TestSocket.open();
  const { port } = s.endpoint;
  await s.close();
  return port;
}

/** Places `client` on `m` in `incarnation` through a FORWARD from `assigner`. */
async function join(m: ProbeMember, assigner: TestSocket, client: TestSocket, incarnation = 'world-1') {
  const requestId = Math.floor(Math.random() * 1e9);
  await assigner.send(
    {
      kind: 'FORWARD',
      requestId,
      app: 'game',
      incarnation,
      session: new Uint8Array(randomBytes(16)),
      endpoint: client.endpoint,
      requestSize: PADDED_REQUEST_BYTES,
    },
    m.address,
  );
  await client.nextMessage('PROBE_RESPONSE', requestId);
}

const text = (r: { bytes: Buffer }) => r.bytes.toString('utf8');

describe('server-to-server relay (P0.9)', () => {
  it('a broadcast reaches the sessions of the same incarnation on the peer, once, and is not relayed back', async () => {
    const [east, west] = await twoSites();
    const assigner = await socket();
    const [ana, bob, carl] = [await socket(), await socket(), await socket()];
    await join(east, assigner, ana);
    await join(west, assigner, bob);
    await join(west, assigner, carl, 'world-2');
    const relayed: RelayedData[] = [];
    west.on('relay', (r) => relayed.push(r));

    assert.equal(east.broadcast('world-1', '{"type":"pos","player":"ana","x":1}'), 1, 'one session here');
    const got = await bob.next((r) => r.message === undefined);
    assert.equal(text(got), '{"type":"pos","player":"ana","x":1}');
    assert.equal(got.from.port, west.address.port, 'from bob’s own member');
    await ana.next((r) => r.message === undefined && text(r).includes('"x":1'));
    await eventually(() => assert.equal(relayed.length, 1, 'the relay event'));
    assert.equal(relayed[0]!.incarnation, 'world-1');
    assert.equal(relayed[0]!.member, 'east-1');
    assert.equal(relayed[0]!.site, 'east');
    assert.equal(Buffer.from(relayed[0]!.data).toString(), '{"type":"pos","player":"ana","x":1}');

    // And back: west's broadcast reaches ana through east.
    west.broadcast('world-1', 'from-west');
    await ana.next((r) => text(r) === 'from-west');

    // Another round trip proves nothing else was in flight: no loop, no echo, no other world.
    east.broadcast('world-1', 'sentinel');
    await bob.next((r) => text(r) === 'sentinel');
    assert.equal(
      bob.received.filter((r) => text(r) === '{"type":"pos","player":"ana","x":1}').length,
      1,
      'delivered once',
    );
    assert.equal(carl.received.length, 1, 'world-2 got only its PROBE_RESPONSE');
    assert.equal(ana.received.filter((r) => text(r) === 'from-west').length, 1);
    assert.deepEqual(east.stats().relayed, { in: 1, out: 2 });
    assert.deepEqual(west.stats().relayed, { in: 2, out: 1 });
    assert.equal(east.stats().received.RELAY, 1, 'only west’s own broadcast came back to east');
  });

  it('refuses RELAY from unknown addresses, with a wrong secret or tampered bytes, and to members without peers', async () => {
    const [east, west] = await twoSites();
    const loner = await member({ id: 'loner' });
    const assigner = await socket();
    const bob = await socket();
    await join(west, assigner, bob);
    const good = new Relay({ peers: [], secret: SECRET, member: 'east-1', site: 'east' });
    const forged = new Relay({
      peers: [],
      secret: 'another-secret-of-enough-bytes!!',
      member: 'x',
      site: 'y',
    });

    // The right secret from an address that is no peer.
    const stranger = await socket('127.0.0.2');
    await stranger.send(good.seal('world-1', Buffer.from('stranger'))!, west.address);
    // From a peer address (127.0.0.1), but: the wrong secret; a flipped data byte; the mac not last.
    const peerish = await socket();
    await peerish.send(forged.seal('world-1', Buffer.from('forged'))!, west.address);
    const tampered = good.seal('world-1', Buffer.from('tampered'))!;
    const at = tampered.length - 25; // inside the data, before the mac field
    tampered[at] = tampered[at]! ^ 1;
    await peerish.send(tampered, west.address);
    const decoded = decode(good.seal('world-1', Buffer.from('padded'))!);
    assert.ok(decoded.ok);
    await peerish.send(encode({ ...decoded.message, padTo: 400 }), west.address);
    await peerish.send(good.seal('world-1', Buffer.from('to-loner'))!, loner.address);

    await eventually(() => {
      const d = west.stats().dropped;
      assert.equal(d['unknown-peer'], 1, 'the stranger');
      assert.equal(d['bad-mac'], 3, 'forged, tampered, padded');
    });
    await eventually(() => assert.equal(loner.stats().dropped['unknown-peer'], 1, 'no peers: nobody is one'));
    // A genuine one after them gets through; nothing before it did.
    await peerish.send(good.seal('world-1', Buffer.from('genuine'))!, west.address);
    await bob.next((r) => text(r) === 'genuine');
    assert.deepEqual(
      bob.received.filter((r) => r.message === undefined).map(text),
      ['genuine'],
      'only the genuine relay reached bob',
    );
    assert.equal(west.stats().relayed.in, 1);
    assert.equal(east.stats().relayed.in, 0);
  });

  it('data too large for one RELAY is still broadcast here, and counted', async () => {
    const [east] = await twoSites();
    const assigner = await socket();
    const ana = await socket();
    await join(east, assigner, ana);
    assert.equal(east.broadcast('world-1', Buffer.alloc(8190, 0x61)), 1);
    await ana.next((r) => r.bytes.length === 8190);
    assert.equal(east.stats().dropped['relay-too-large'], 1);
    assert.equal(east.stats().relayed.out, 0);
  });

  it('refuses bad relay options loudly', () => {
    const base = { id: 'x', app: 'game' };
    const peer: Endpoint = { address: '127.0.0.1', port: 7000 };
    assert.throws(() => new ProbeMember({ ...base, peers: [peer] }), /relaySecret/);
    assert.throws(
      () => new ProbeMember({ ...base, peers: [peer], relaySecret: 'short' }),
      InvalidArgumentError,
    );
    assert.throws(
      () =>
        new ProbeMember({ ...base, peers: [{ address: 'peer.example', port: 7000 }], relaySecret: SECRET }),
      /peers\[0\]\.address/,
    );
    assert.throws(
      () => new ProbeMember({ ...base, peers: [{ address: '10.0.0.1', port: 0 }], relaySecret: SECRET }),
      /peers\[0\]\.port/,
    );
    assert.throws(
      () => new ProbeMember({ ...base }).broadcast('w', new Uint8Array([0, 0, 0xff, 0xff])),
      InvalidArgumentError,
    );
  });
});
