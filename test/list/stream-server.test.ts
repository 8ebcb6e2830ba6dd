import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { parseServerFrame, type ServerFrame } from '../../src/list/stream-protocol.js';
import { StreamServer, type StreamServerOptions } from '../../src/list/stream-server.js';
import { TickerFeed, tickAt, tickNumber, tickPrice } from '../../src/list/ticker.js';
import { eventually } from '../support/wait.js';

interface Peer {
  readonly ws: WebSocket;
  readonly frames: ServerFrame[];
  /** Waits for a frame that matches, and returns it. */
  next<T extends ServerFrame['type']>(
    type: T,
    match?: (f: Extract<ServerFrame, { type: T }>) => boolean,
  ): Promise<Extract<ServerFrame, { type: T }>>;
  send(frame: unknown): void;
  data(topic: string): number[];
}

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function server(options: Partial<StreamServerOptions> = {}): Promise<StreamServer> {
  const s = await StreamServer.listen({ serverId: 'live-1', ...options });
  cleanups.push(() => s.close({ terminate: true }));
  return s;
}

async function peer(url: string, options: { autoPong?: boolean } = {}): Promise<Peer> {
  const ws = new WebSocket(url, options);
  const frames: ServerFrame[] = [];
  ws.on('message', (data) => {
    const f = parseServerFrame(data.toString());
    assert.ok(f, `the server sent a valid frame: ${data.toString()}`);
    frames.push(f);
  });
  ws.on('error', () => {});
  cleanups.push(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const p: Peer = {
    ws,
    frames,
    next: (type, match = () => true) =>
      eventually(() => {
        const f = frames.find((x) => x.type === type && match(x as never));
        assert.ok(f, `a ${type} frame`);
        return f as never;
      }),
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    data: (topic) => frames.flatMap((f) => (f.type === 'data' && f.topic === topic ? [f.seq] : [])),
  };
  await p.next('welcome');
  return p;
}

describe('StreamServer', () => {
  it('welcomes, delivers published data to subscribers only, stops after unsubscribe', async () => {
    const s = await server({ heartbeatMs: 5000 });
    const a = await peer(s.url!);
    const b = await peer(s.url!);
    assert.deepEqual(a.frames[0], { type: 'welcome', server: 'live-1', heartbeatMs: 5000, version: 1 });
    s.publish('prices', { p: 1 });
    a.send({ op: 'subscribe', topic: 'prices' });
    b.send({ op: 'subscribe', topic: 'other' });
    assert.equal((await a.next('subscribed')).seq, 1);
    await b.next('subscribed');
    assert.equal(s.publish('prices', { p: 2 }), 2);
    assert.deepEqual(await a.next('data'), { type: 'data', topic: 'prices', seq: 2, data: { p: 2 } });
    a.send({ op: 'unsubscribe', topic: 'prices' });
    a.send({ op: 'subscribe', topic: 'other' });
    await a.next('subscribed', (f) => f.topic === 'other');
    s.publish('prices', { p: 3 });
    s.publish('other', 'x');
    await a.next('data', (f) => f.topic === 'other');
    await b.next('data', (f) => f.topic === 'other');
    // Frames on one connection arrive in order: had `prices` 3 been sent, it would be here by now.
    assert.deepEqual(a.data('prices'), [2]);
    assert.deepEqual(b.data('prices'), []);
    assert.equal(s.connections, 2);
  });

  it('replays what it still holds after `since`, and takes explicit increasing seqs', async () => {
    const s = await server({ historySize: 5 });
    for (let i = 0; i < 10; i++) s.publish('t', i, { seq: 100 + i }); // 100..109, holds 105..109
    assert.throws(() => s.publish('t', 'old', { seq: 109 }), { code: 'USHER_ERR_INVALID_ARGUMENT' });
    assert.throws(() => s.publish('t', undefined), { code: 'USHER_ERR_INVALID_ARGUMENT' });
    const a = await peer(s.url!);
    a.send({ op: 'subscribe', topic: 't', since: 106 });
    await eventually(() => assert.deepEqual(a.data('t'), [107, 108, 109]));
    assert.equal((await a.next('subscribed')).seq, 109);
    const b = await peer(s.url!);
    b.send({ op: 'subscribe', topic: 't', since: 101 }); // 102..104 are gone: the client sees the gap
    await eventually(() => assert.deepEqual(b.data('t'), [105, 106, 107, 108, 109]));
    assert.equal(s.publish('t', 'next'), 110);
    await eventually(() => assert.deepEqual(b.data('t').at(-1), 110));
  });

  it('counts and answers bad frames, too many subscriptions and too large frames, and keeps serving', async () => {
    const s = await server({ maxSubscriptions: 2, maxMessageBytes: 128 });
    const a = await peer(s.url!);
    for (const bad of [
      'not json',
      '{"op":"subscribe"}',
      '[1,2]',
      '{"op":"subscribe","topic":"t","since":-1}',
    ])
      a.send(bad);
    a.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    a.send({ op: 'subscribe', topic: 'x'.repeat(200) });
    for (const topic of ['t1', 't2', 't3']) a.send({ op: 'subscribe', topic });
    a.send({ op: 'ping', id: 7 });
    assert.deepEqual(await a.next('pong'), { type: 'pong', id: 7 });
    const codes = a.frames.flatMap((f) => (f.type === 'error' ? [f.code] : []));
    assert.deepEqual(codes, [
      'malformed',
      'malformed',
      'malformed',
      'malformed',
      'malformed',
      'too-large',
      'too-many-subscriptions',
    ]);
    assert.equal((await a.next('error', (f) => f.code === 'too-many-subscriptions')).topic, 't3');
    const stats = s.stats();
    assert.deepEqual(stats.dropped, {
      malformed: 5,
      'too-large': 1,
      'too-many-subscriptions': 1,
      'forbidden-topic': 0,
    });
    assert.equal(stats.messagesIn, 10);
    assert.equal(stats.connections, 1);
  });

  it('refuses connections past maxConnections, and after drain; drain sends goaway', async () => {
    const s = await server({ maxConnections: 1 });
    const a = await peer(s.url!);
    await assert.rejects(peer(s.url!), /503/);
    assert.equal(s.stats().refused.full, 1);
    s.drain('maintenance');
    assert.deepEqual(await a.next('goaway'), { type: 'goaway', reason: 'maintenance' });
    a.ws.close();
    await eventually(() => assert.equal(s.connections, 0));
    await assert.rejects(peer(s.url!), /503/);
    assert.equal(s.stats().refused.draining, 1);
  });

  it('sends heartbeats, and terminates a client that stops answering pings', async () => {
    // 100 ms: a live client answers pings well within the 300 ms limit even on a loaded machine.
    const s = await server({ heartbeatMs: 100 });
    const live = await peer(s.url!);
    const dead = await peer(s.url!, { autoPong: false });
    const closed = new Promise((resolve) => dead.ws.once('close', resolve));
    await live.next('heartbeat');
    await closed;
    assert.equal(s.stats().terminated.dead, 1);
    assert.equal(s.connections, 1);
    assert.equal(live.ws.readyState, WebSocket.OPEN);
  });

  it('attaches to an existing HTTP server on its path and leaves other paths alone', async () => {
    const http = createServer((_req, res) => res.end('plain http'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const s = new StreamServer({ serverId: 'web-1', path: '/live' });
    s.attach(http);
    cleanups.push(
      () => s.close(),
      () => new Promise((resolve) => http.close(resolve)),
    );
    const { port } = http.address() as { port: number };
    const a = await peer(`ws://127.0.0.1:${port}/live`);
    assert.equal((a.frames[0] as { server: string }).server, 'web-1');
    await assert.rejects(peer(`ws://127.0.0.1:${port}/elsewhere`), /404/);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'plain http');
    await s.close();
    await eventually(() => assert.equal(a.ws.readyState, WebSocket.CLOSED));
  });
});

describe('TickerFeed', () => {
  it('is a pure function of the clock: same tick, same price, seq = tick number', () => {
    assert.equal(tickNumber(1_000_249, 250), 4000);
    assert.deepEqual(tickAt('USHR', 4000, 250), {
      symbol: 'USHR',
      tick: 4000,
      t: 1_000_000,
      price: tickPrice('USHR', 4000),
    });
    const prices = Array.from({ length: 500 }, (_, i) => tickPrice('ACME', 7_000_000 + i));
    assert.ok(
      prices.every((p) => p > 0 && Number.isFinite(p)),
      'prices are positive numbers',
    );
    assert.ok(new Set(prices).size > 100, 'the price moves');
  });

  it('two feeds on two servers publish the same ticks under the same seqs', async () => {
    const [a, b] = [await server({ serverId: 'a' }), await server({ serverId: 'b' })];
    const feeds = [a, b].map((s) => new TickerFeed({ server: s, intervalMs: 10, symbols: ['USHR'] }).start());
    cleanups.push(() => {
      for (const f of feeds) f.stop();
    });
    const pa = await peer(a.url!);
    const pb = await peer(b.url!);
    for (const p of [pa, pb]) p.send({ op: 'subscribe', topic: 'ticker.USHR' });
    await eventually(() =>
      assert.ok(pa.data('ticker.USHR').length >= 5 && pb.data('ticker.USHR').length >= 5, 'ticks on both'),
    );
    const byseq = (p: Peer) =>
      new Map(p.frames.flatMap((f) => (f.type === 'data' ? [[f.seq, JSON.stringify(f.data)] as const] : [])));
    const ma = byseq(pa);
    const mb = byseq(pb);
    const common = [...ma.keys()].filter((k) => mb.has(k));
    assert.ok(common.length >= 3, `ticks in common: ${common.length}`);
    for (const k of common) assert.equal(ma.get(k), mb.get(k));
    const seqs = pa.data('ticker.USHR');
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1, 'contiguous');
  });
});
