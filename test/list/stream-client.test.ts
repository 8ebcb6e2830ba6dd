import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { connectStream } from '../../src/client/node.js';
import type { StreamClient, StreamClientEvents } from '../../src/client/stream.js';
import { connectStream as connectIsomorphic } from '../../src/client/stream.js';
import type { HealthState } from '../../src/core/model.js';
import { StreamServer } from '../../src/list/stream-server.js';
import { TickerFeed } from '../../src/list/ticker.js';
import { eventually } from '../support/wait.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

interface Listed {
  readonly id: string;
  readonly url: string;
  status: HealthState | 'hidden';
  group: number;
  readonly server?: StreamServer;
  readonly feed?: TickerFeed;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

/** StreamServers with TickerFeeds, and the test's own list endpoint that describes them. */
async function cluster(n: number, options: { ticker?: boolean; historySize?: number } = {}) {
  const entries: Listed[] = [];
  for (let i = 1; i <= n; i++) {
    const server = await StreamServer.listen({
      serverId: `live-${i}`,
      heartbeatMs: 100,
      historySize: options.historySize ?? 256,
    });
    const feed =
      options.ticker === false
        ? undefined
        : new TickerFeed({ server, intervalMs: 20, symbols: ['USHR'] }).start();
    cleanups.push(() => {
      feed?.stop();
      return server.close({ terminate: true });
    });
    entries.push({ id: server.serverId, url: server.url!, status: 'up', group: 0, server, feed });
  }
  const list = { open: true, fetches: 0 };
  const http = createServer((_req, res) => {
    list.fetches += 1;
    if (!list.open) return void res.writeHead(503).end();
    const servers = entries
      .filter((e) => e.status !== 'hidden')
      .map((e) => ({
        id: e.id,
        status: e.status,
        users: e.server?.connections ?? 0,
        capacity: 100,
        group: e.group,
        weight: 1,
        site: 'local',
        address: '127.0.0.1',
        url: e.url,
        labels: {},
      }));
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({ version: 1, pool: 'live', revision: list.fetches, generatedAt: Date.now(), servers }),
    );
  });
  const listUrl = `${await listen(http)}/usher/list/live`;
  const entry = (id: string | undefined) => entries.find((e) => e.id === id)!;
  return { entries, entry, list, listUrl };
}

type Name = keyof StreamClientEvents;

/** Every event the client emits, in order. */
function record(client: StreamClient) {
  const events: Array<{ name: Name; args: unknown[] }> = [];
  const names: Name[] = [
    'state',
    'list',
    'chosen',
    'open',
    'lost',
    'retry-same',
    'refetch',
    'reconnected',
    'gap',
    'error',
  ];
  for (const name of names) client.on(name, (...args: unknown[]) => events.push({ name, args }));
  const since = (i: number) => events.slice(i).filter((e) => !['state', 'error', 'list'].includes(e.name));
  return {
    events,
    /** Names of the meaningful events (not state, list, error) from index i. */
    names: (i = 0) => since(i).map((e) => e.name),
    /** The first argument of each `name` event from index i. */
    get: <K extends Name>(name: K, from = 0) =>
      events.slice(from).flatMap((e) => (e.name === name ? [e.args[0] as StreamClientEvents[K][0]] : [])),
  };
}

function start(client: StreamClient): StreamClient {
  cleanups.push(() => client.close());
  return client;
}

/** The seqs a subscription received, and a check that they run without a hole. */
function follow(client: StreamClient, topic: string) {
  const seqs: number[] = [];
  client.subscribe(topic, (_data, seq, t) => {
    assert.equal(t, topic);
    seqs.push(seq);
  });
  return {
    seqs,
    assertContiguous() {
      for (let i = 1; i < seqs.length; i++)
        assert.equal(seqs[i], seqs[i - 1]! + 1, `no hole at ${seqs[i - 1]}`);
    },
  };
}

// Every assert.ok here carries a message: without one, node:assert rebuilds the expression from the
// source file, which under a TypeScript loader can hang (the columns do not match the source).
const atLeast = (list: readonly unknown[], n: number) =>
  assert.ok(list.length >= n, `expected at least ${n} items, got ${list.length}`);

const fast = { backoff: { baseMs: 20, maxMs: 100 }, fetchTimeoutMs: 1000, connectTimeoutMs: 1000 };

describe('connectStream', () => {
  it('fetches the list, chooses, connects and delivers the subscribed topic (isomorphic entry, ws injected)', async () => {
    const c = await cluster(2);
    const client = start(connectIsomorphic({ listUrls: [c.listUrl], WebSocket, ...fast }));
    const rec = record(client);
    const ticks = follow(client, 'ticker.USHR');
    const seen: unknown[] = [];
    client.on('data', (topic, data) => topic === 'ticker.USHR' && seen.push(data));
    await eventually(() => atLeast(ticks.seqs, 3));
    assert.equal(client.state, 'open');
    assert.deepEqual(rec.names().slice(0, 2), ['chosen', 'open']);
    const states = rec.events.filter((e) => e.name === 'state').map((e) => e.args[0]);
    assert.deepEqual(states, ['fetching', 'connecting', 'open']);
    assert.equal(client.stats().server, rec.get('chosen')[0]!.id);
    assert.deepEqual(Object.keys(seen[0] as object).sort(), ['price', 'symbol', 't', 'tick']);
    ticks.assertContiguous();
    client.close();
    assert.equal(client.state, 'closed');
    await eventually(() =>
      assert.equal(c.entries[0]!.server!.connections + c.entries[1]!.server!.connections, 0),
    );
  });

  it('on a crash: lost, retry-same (fails), refetch without the failed server, reconnect; since fills the gap', async () => {
    const c = await cluster(3);
    const client = start(connectStream({ listUrls: [c.listUrl], ...fast }));
    const rec = record(client);
    const ticks = follow(client, 'ticker.USHR');
    await eventually(() => atLeast(ticks.seqs, 3));
    const victim = c.entry(client.server?.id);
    const mark = rec.events.length;
    victim.feed!.stop();
    await victim.server!.close({ terminate: true }); // the list still says it is up
    await eventually(() => assert.equal(rec.get('reconnected', mark).length, 1));
    assert.deepEqual(rec.names(mark).slice(0, 5), ['lost', 'retry-same', 'refetch', 'chosen', 'open']);
    assert.equal(rec.get('lost', mark)[0]!.server.id, victim.id);
    assert.equal(rec.get('retry-same', mark)[0]!.id, victim.id);
    assert.deepEqual(rec.get('refetch', mark)[0]!.excluded, [victim.id]);
    assert.notEqual(rec.get('chosen', mark)[0]!.id, victim.id);
    const back = rec.get('reconnected', mark)[0]!;
    assert.equal(back.previous.id, victim.id);
    assert.notEqual(back.server.id, victim.id);
    const count = ticks.seqs.length;
    await eventually(() => atLeast(ticks.seqs, count + 3));
    ticks.assertContiguous(); // the new server's history filled what was missed while moving
    assert.equal(rec.get('gap').length, 0);
    assert.equal(client.stats().reconnects, 1);
  });

  it('with refetchAtOnce, skips retry-same', async () => {
    const c = await cluster(2);
    const client = start(
      connectStream({ listUrls: [c.listUrl], refetchAtOnce: true, policy: 'weighted-random', ...fast }),
    );
    const rec = record(client);
    const ticks = follow(client, 'ticker.USHR');
    await eventually(() => atLeast(ticks.seqs, 2));
    const victim = c.entry(client.server?.id);
    const mark = rec.events.length;
    await victim.server!.close({ terminate: true });
    await eventually(() => assert.equal(rec.get('reconnected', mark).length, 1));
    assert.deepEqual(rec.names(mark).slice(0, 3), ['lost', 'refetch', 'chosen']);
    assert.notEqual(rec.get('reconnected', mark)[0]!.server.id, victim.id);
  });

  it('moves on goaway, without retrying the draining server', async () => {
    const c = await cluster(2);
    const client = start(connectStream({ listUrls: [c.listUrl], policy: 'p2c', ...fast }));
    const rec = record(client);
    const ticks = follow(client, 'ticker.USHR');
    await eventually(() => atLeast(ticks.seqs, 2));
    const victim = c.entry(client.server?.id);
    const mark = rec.events.length;
    victim.server!.drain('maintenance');
    await eventually(() => assert.equal(rec.get('reconnected', mark).length, 1));
    const lost = rec.get('lost', mark)[0]!;
    assert.deepEqual([lost.reason, lost.detail], ['goaway', 'maintenance']);
    assert.deepEqual(rec.names(mark).slice(0, 3), ['lost', 'refetch', 'chosen']);
    assert.notEqual(client.server?.id, victim.id);
    const count = ticks.seqs.length;
    await eventually(() => atLeast(ticks.seqs, count + 2));
    ticks.assertContiguous();
  });

  it('detects a server that goes silent (heartbeat timeout), retries it once, then moves', async () => {
    // A fake server: welcome, one heartbeat, then nothing (the socket stays open).
    const fake = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => fake.once('listening', resolve));
    let accepted = 0;
    fake.on('connection', (ws) => {
      accepted += 1;
      ws.send(JSON.stringify({ type: 'welcome', server: 'silent', heartbeatMs: 40 }));
      ws.send(JSON.stringify({ type: 'heartbeat', t: Date.now() }));
    });
    cleanups.push(() => {
      for (const ws of fake.clients) ws.terminate();
      return new Promise((resolve) => fake.close(resolve));
    });
    const c = await cluster(1);
    c.entries[0]!.group = 1; // the fallback group: the silent server (group 0) is chosen first
    c.entries.push({
      id: 'silent',
      url: `ws://127.0.0.1:${(fake.address() as AddressInfo).port}/`,
      status: 'up',
      group: 0,
    } as Listed);
    const client = start(connectStream({ listUrls: [c.listUrl], ...fast }));
    const rec = record(client);
    const ticks = follow(client, 'ticker.USHR');
    await eventually(() => atLeast(ticks.seqs, 2));
    assert.deepEqual(rec.names().slice(0, 8), [
      'chosen',
      'open',
      'lost',
      'retry-same',
      'open',
      'reconnected',
      'lost', // the link retry-same opened fails as fast: no second retry-same
      'refetch',
    ]);
    assert.deepEqual(
      rec.get('lost').map((e) => [e.server.id, e.reason]),
      [
        ['silent', 'heartbeat-timeout'],
        ['silent', 'heartbeat-timeout'],
      ],
    );
    assert.deepEqual(rec.get('refetch')[0]!.excluded, ['silent']);
    assert.equal(client.server?.id, 'live-1');
    assert.equal(accepted, 2);
  });

  it('moves off a server that welcomes and then says nothing, backing off (no retry-same)', async () => {
    const fake = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise((resolve) => fake.once('listening', resolve));
    fake.on('connection', (ws) =>
      ws.send(JSON.stringify({ type: 'welcome', server: 'mute', heartbeatMs: 30 })),
    );
    cleanups.push(() => {
      for (const ws of fake.clients) ws.terminate();
      return new Promise((resolve) => fake.close(resolve));
    });
    const c = await cluster(1);
    c.entries[0]!.group = 1;
    c.entries.push({
      id: 'mute',
      url: `ws://127.0.0.1:${(fake.address() as AddressInfo).port}/`,
      status: 'up',
      group: 0,
    } as Listed);
    const client = start(connectStream({ listUrls: [c.listUrl], ...fast }));
    const rec = record(client);
    await eventually(() => assert.equal(client.server?.id, 'live-1'));
    assert.deepEqual(rec.names().slice(0, 5), ['chosen', 'open', 'lost', 'refetch', 'chosen']);
    assert.equal(rec.get('lost')[0]!.reason, 'heartbeat-timeout');
  });

  it('resubscribes with since: replays what the new server holds, reports the rest as a gap', async () => {
    const c = await cluster(2, { ticker: false, historySize: 3 });
    const [a, b] = c.entries as [Listed, Listed];
    b.status = 'hidden';
    const client = start(connectStream({ listUrls: [c.listUrl], ...fast }));
    const rec = record(client);
    const full = follow(client, 'full');
    const lossy = follow(client, 'lossy');
    await eventually(() => assert.equal(client.server?.id, a.id));
    await eventually(() => assert.equal(a.server!.stats().messagesIn, 2)); // both subscribes arrived
    for (let seq = 1; seq <= 3; seq++)
      for (const s of [a.server!, b.server!]) for (const t of ['full', 'lossy']) s.publish(t, seq, { seq });
    await eventually(() =>
      assert.deepEqual(
        [full.seqs, lossy.seqs],
        [
          [1, 2, 3],
          [1, 2, 3],
        ],
      ),
    );
    c.list.open = false; // the client cannot come back until the list says where
    await a.server!.close({ terminate: true });
    await eventually(() => assert.equal(client.stats().listFailures > 0, true)); // it is asking, in vain
    for (let seq = 4; seq <= 6; seq++) b.server!.publish('full', seq, { seq }); // b holds 4..6
    for (let seq = 4; seq <= 10; seq++) b.server!.publish('lossy', seq, { seq }); // b holds 8..10
    a.status = 'hidden';
    b.status = 'up';
    c.list.open = true;
    await eventually(() => assert.deepEqual([full.seqs.at(-1), lossy.seqs.at(-1)], [6, 10]));
    assert.deepEqual(full.seqs, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(lossy.seqs, [1, 2, 3, 8, 9, 10]);
    assert.deepEqual(rec.get('gap'), [{ topic: 'lossy', fromSeq: 4, toSeq: 7 }]);
    assert.ok(
      rec.get('error').some((e) => (e as Error & { code?: string }).code === 'USHER_ERR_STREAM_LIST'),
      'the list failures were reported',
    );
  });

  it('tries the list URLs in turn: a dead one and a silent one are skipped', async () => {
    const c = await cluster(1);
    const silent = createServer(() => {}); // accepts and never answers
    const silentUrl = await listen(silent);
    const dead = createServer();
    const deadUrl = await listen(dead);
    dead.close();
    const client = start(
      connectStream({
        listUrls: [deadUrl, silentUrl, c.listUrl],
        random: () => 0,
        ...fast,
        fetchTimeoutMs: 200,
      }),
    );
    const rec = record(client);
    await eventually(() => assert.equal(client.state, 'open'));
    assert.equal(client.stats().listFailures, 2);
    const errors = rec.get('error').map((e) => e as Error & { code: string });
    assert.deepEqual(
      errors.map((e) => e.code),
      ['USHER_ERR_STREAM_LIST', 'USHER_ERR_STREAM_LIST'],
    );
    assert.match(errors[1]!.message, /no answer within 200 ms/);
  });

  it('keeps subscriptions made while connecting, stops delivering after unsubscribe', async () => {
    const c = await cluster(1, { ticker: false });
    const client = start(connectStream({ listUrls: [c.listUrl], ...fast }));
    const got: string[] = [];
    const stop = client.subscribe('t', (d) => got.push(d as string));
    const other: string[] = [];
    client.subscribe('u', (d) => other.push(d as string));
    await eventually(() => assert.equal(client.state, 'open'));
    const s = c.entries[0]!.server!;
    await eventually(() => {
      s.publish('t', 'before'); // until the server has the subscription
      atLeast(got, 1);
    });
    stop();
    s.publish('t', 'after'); // may still be sent (the unsubscribe is in flight): the client drops it
    s.publish('u', 'last');
    await eventually(() => assert.equal(other.at(-1), 'last'));
    assert.equal(got.includes('after'), false);
  });
});
