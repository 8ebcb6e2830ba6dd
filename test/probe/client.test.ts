import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  backoffDelay,
  catalog,
  connect,
  connectWith,
  createUdpTransport,
  type DatagramTransport,
  type Endpoint,
  type LostReason,
  type ProbeAssignment,
  ProbeClient,
  type ProbeRejectedError,
  type ProbeTimeoutError,
  parseEndpoint,
} from '../../src/client/node.js';
import { ProbeMember } from '../../src/probe/member.js';
import { PADDED_REQUEST_BYTES } from '../../src/probe/messages.js';
import { eventually } from '../support/wait.js';
import { FakeAssigner, type FakeMemberTarget, TestSocket } from './fake-assigner.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A member that echoes every datagram back to its sender. */
async function echoMember(id: string, options: { now?: () => number } = {}): Promise<ProbeMember> {
  const m = new ProbeMember({ id, app: 'game', ...options });
  m.on('message', (s, data) => m.send(s, data));
  await m.start();
  cleanups.push(() => m.close());
  return m;
}

const target = (m: ProbeMember): FakeMemberTarget => ({ id: m.id, endpoint: m.address });

async function assigner(...args: Parameters<typeof FakeAssigner.start>): Promise<FakeAssigner> {
  const a = await FakeAssigner.start(...args);
  cleanups.push(() => a.close());
  return a;
}

/** A UDP transport that remembers where every datagram was sent. */
async function countingTransport(): Promise<{
  transport: DatagramTransport;
  sends: Endpoint[];
  local: Endpoint;
}> {
  const t = await createUdpTransport();
  const sends: Endpoint[] = [];
  cleanups.push(() => t.close());
  return {
    transport: {
      ...t,
      send(bytes, to) {
        sends.push(to);
        t.send(bytes, to);
      },
    },
    sends,
    local: { address: '127.0.0.1', port: t.local.port },
  };
}

async function client(options: Parameters<typeof connectWith>[0]): Promise<ProbeClient> {
  const c = await connectWith(options);
  cleanups.push(() => c.close());
  return c;
}

const same = (a: Endpoint, b: Endpoint) => a.address === b.address && a.port === b.port;

function next<K extends 'lost' | 'reassigned'>(
  c: ProbeClient,
  event: K,
): Promise<K extends 'lost' ? LostReason : ProbeAssignment> {
  return new Promise((resolve) => c.once(event, resolve as never));
}

/** Sends `count` messages in windows and waits for every echo. */
async function exchange(c: ProbeClient, echoes: string[], count: number, tag: string): Promise<void> {
  const start = echoes.length;
  for (let sent = 0; sent < count; ) {
    const window = Math.min(50, count - sent);
    for (let i = 0; i < window; i++) assert.equal(c.send(`${tag} ${sent + i}`), true);
    sent += window;
    await eventually(() => assert.equal(echoes.length - start, sent));
  }
}

describe('probe client', () => {
  it('connects, then sends 1000 messages straight to its member and none through the balancer (P0.2, P0.5)', async () => {
    const m = await echoMember('m-a');
    const a = await assigner({}, target(m));
    const { transport, sends } = await countingTransport();
    const c = await client({ balancer: a.endpoint, app: 'game', user: 'ana', transport });

    assert.equal(c.state, 'assigned');
    assert.equal(c.assignment.member, 'm-a');
    assert.deepEqual(c.assignment.endpoint, m.address);
    assert.match(c.assignment.session, /^[0-9a-f]{32}$/);
    assert.equal(c.assignment.app, 'game');
    assert.equal(c.assignment.incarnation, 'default');
    assert.equal(m.sessions()[0]?.user, 'ana');
    const probes = a.socket.received.filter((r) => r.message?.kind === 'PROBE');
    assert.ok(
      probes.every((r) => r.bytes.length === PADDED_REQUEST_BYTES),
      'probes are padded (PADDED_REQUEST_BYTES)',
    );

    const seenByBalancer = a.count;
    const sentBefore = sends.length;
    const echoes: string[] = [];
    c.on('message', (d) => echoes.push(Buffer.from(d).toString()));
    await exchange(c, echoes, 1000, 'move');
    assert.equal(echoes.length, 1000);
    assert.equal(echoes[999], 'move 999');
    assert.equal(a.count, seenByBalancer, 'the balancer saw nothing after the assignment');
    assert.ok(
      sends.slice(sentBefore).every((to) => same(to, m.address)),
      'every datagram after the assignment went to the member',
    );
    assert.equal(m.stats().received.data, 1000);
  });

  it('loses a crashed member at once, stops all traffic to it, and is reassigned to another (P0.8)', async () => {
    const ma = await echoMember('m-a');
    const mb = await echoMember('m-b');
    const a = await assigner({}, target(ma));
    const { transport, sends } = await countingTransport();
    const c = await client({
      balancer: a.endpoint,
      app: 'game',
      transport,
      heartbeatMs: 30,
      misses: 2,
      backoff: { baseMs: 10, maxMs: 50 },
    });
    const echoes: string[] = [];
    c.on('message', (d) => echoes.push(Buffer.from(d).toString()));
    await exchange(c, echoes, 100, 'before');

    // Crash member A; the balancer would now place clients on B.
    const dead = ma.address;
    const toDead = () => sends.filter((to) => same(to, dead)).length;
    const lost = next(c, 'lost');
    const reassigned = next(c, 'reassigned');
    let atLoss = -1;
    let sendWhileLost: boolean | undefined;
    c.once('lost', () => {
      atLoss = toDead();
      sendWhileLost = c.send('while lost');
    });
    await ma.close();
    const observer = await TestSocket.open('127.0.0.1', dead.port); // whatever still arrives at A's port
    cleanups.push(() => observer.close());
    a.target = target(mb);

    assert.equal(await lost, 'heartbeat-timeout');
    assert.equal(sendWhileLost, false, 'send refuses while lost');
    const assignment = await reassigned;
    assert.equal(assignment.member, 'm-b');
    assert.deepEqual(c.assignment.endpoint, mb.address);
    assert.equal(c.state, 'assigned');

    await exchange(c, echoes, 100, 'after');
    assert.equal(toDead(), atLoss, 'not one datagram to the dead member after the loss');
    assert.ok(observer.received.length <= atLoss);
    assert.ok(
      observer.received.every((r) => r.message?.kind === 'HEARTBEAT'),
      'only heartbeats reached the dead port',
    );
    assert.equal(c.stats().lost, 1);
    assert.equal(c.stats().reassigned, 1);
  });

  it('heartbeats every T ms and after every N messages', async () => {
    const m = await echoMember('m-a');
    const a = await assigner({}, target(m));
    const { transport } = await countingTransport();
    const quiet = await client({
      balancer: a.endpoint,
      app: 'game',
      transport,
      heartbeatMs: 60_000,
      heartbeatEvery: 10,
    });
    const echoes: string[] = [];
    quiet.on('message', (d) => echoes.push(Buffer.from(d).toString()));
    await exchange(quiet, echoes, 100, 'm');
    await eventually(() => assert.equal(quiet.stats().acks, 10));
    assert.equal(m.stats().received.HEARTBEAT, 10, 'one heartbeat per 10 messages, none by timer');

    const t2 = await countingTransport();
    const ticking = await client({
      balancer: a.endpoint,
      app: 'game',
      transport: t2.transport,
      heartbeatMs: 20,
    });
    // (assert.ok without a message re-reads the source on every failure: slow in a polling loop)
    await eventually(() => assert.ok(ticking.stats().acks >= 3, 'three heartbeats acknowledged'));
    assert.equal(ticking.stats().missed, 0);
  });

  it('asks again with the cookie when the balancer answers RETRY', async () => {
    const m = await echoMember('m-a');
    const a = await assigner({ retryProbe: true }, target(m));
    const { transport } = await countingTransport();
    const c = await client({ balancer: a.endpoint, app: 'game', transport });
    assert.equal(c.assignment.member, 'm-a');
    const probes = a.socket.received.filter((r) => r.message?.kind === 'PROBE').map((r) => r.message!);
    assert.equal(probes.length, 2);
    assert.equal(probes[0]!.cookie, undefined);
    assert.deepEqual(probes[1]!.cookie, a.cookie);
  });

  it('reads the catalog through RETRY and cookie (P0.6)', async () => {
    const body = { apps: [{ name: 'game', incarnations: [{ id: 'world-1', members: 2, users: 7 }] }] };
    const a = await assigner({ retryCatalog: true, catalog: body });
    assert.deepEqual(await catalog({ balancer: a.endpoint }), body);
    const asks = a.socket.received.filter((r) => r.message?.kind === 'CATALOG');
    assert.equal(asks.length, 2);
    assert.ok(asks.every((r) => r.bytes.length === PADDED_REQUEST_BYTES));
    assert.deepEqual(asks[1]!.message!.cookie, a.cookie);
  });

  it('works in answer mode: the balancer answers and NOTIFYs the member (P0.3)', async () => {
    const m = await echoMember('m-a');
    const a = await assigner({ mode: 'answer' }, target(m));
    const { transport } = await countingTransport();
    const c = await client({ balancer: a.endpoint, app: 'game', transport, heartbeatMs: 20 });
    assert.equal(c.assignment.member, 'm-a');
    await eventually(() => assert.equal(m.sessions()[0]?.id, c.assignment.session));
    await eventually(() => assert.ok(c.stats().acks >= 2, 'heartbeats acknowledged'));
    const echoes: string[] = [];
    c.on('message', (d) => echoes.push(Buffer.from(d).toString()));
    await exchange(c, echoes, 10, 'x');
  });

  it('shows the lobby of its incarnation (P0.7) and says BYE on close', async () => {
    const m = new ProbeMember({ id: 'm-a', app: 'game', incarnations: ['world-1', 'world-2'] });
    await m.start();
    cleanups.push(() => m.close());
    const a = await assigner({}, target(m));
    const ana = await connect({ balancer: a.endpoint, app: 'game', incarnation: 'world-1', user: 'ana' });
    const bob = await connect({ balancer: a.endpoint, app: 'game', incarnation: 'world-1', user: 'bob' });
    const eve = await connect({ balancer: a.endpoint, app: 'game', incarnation: 'world-2', user: 'eve' });
    cleanups.push(
      () => ana.close(),
      () => bob.close(),
      () => eve.close(),
    );
    const lobby = (await ana.lobby()) as { incarnation: string; member: string; users: string[] };
    assert.equal(lobby.incarnation, 'world-1');
    assert.equal(lobby.member, 'm-a');
    assert.deepEqual(lobby.users.sort(), ['ana', 'bob']);

    const ended: string[] = [];
    m.on('end', (s, reason) => ended.push(`${s.user}:${reason}`));
    let closed = false;
    bob.on('closed', () => {
      closed = true;
    });
    await bob.close();
    assert.equal(closed, true);
    assert.equal(bob.send('late'), false);
    await eventually(() => assert.deepEqual(ended, ['bob:bye']));
  });

  it('drops datagrams that do not come from its member', async () => {
    const m = await echoMember('m-a');
    const a = await assigner({}, target(m));
    const { transport, local } = await countingTransport();
    const c = await client({ balancer: a.endpoint, app: 'game', transport });
    const got: string[] = [];
    c.on('message', (d) => got.push(Buffer.from(d).toString()));
    const stranger = await TestSocket.open();
    cleanups.push(() => stranger.close());
    await stranger.send('spoofed', local);
    await eventually(() => assert.equal(c.stats().dropped['foreign-source'], 1));
    await exchange(c, got, 1, 'real');
    assert.deepEqual(got, ['real 0']);
  });

  it('is lost at once when the member no longer knows the session, and re-probes', async () => {
    let now = 0;
    const m = await echoMember('m-a', { now: () => now });
    const a = await assigner({}, target(m));
    const { transport } = await countingTransport();
    const c = await client({ balancer: a.endpoint, app: 'game', transport, heartbeatMs: 20, misses: 100 });
    const first = c.assignment.session;
    const lost = next(c, 'lost');
    const reassigned = next(c, 'reassigned');
    now += 60_000;
    assert.equal(m.expireIdle(), 1);
    assert.equal(await lost, 'unknown-session');
    const again = await reassigned;
    assert.equal(again.member, 'm-a');
    assert.notEqual(again.session, first);
  });

  it('rejects connect with typed errors: timeout, unknown app at once, no member after every attempt', async () => {
    const silent = await assigner({ silent: true });
    const calls: number[] = [];
    const random = () => {
      calls.push(1);
      return 0;
    };
    const t1 = await countingTransport();
    await assert.rejects(
      connectWith({
        balancer: silent.endpoint,
        app: 'game',
        transport: t1.transport,
        probeTimeoutMs: 20,
        probeAttempts: 3,
        random,
      }),
      (e: ProbeTimeoutError) => e.code === 'USHER_ERR_PROBE_TIMEOUT' && e.attempts === 3,
    );
    assert.equal(silent.count, 3);
    assert.equal(calls.length, 2, 'one jittered backoff between attempts');

    const unknown = await assigner({ errorCode: 1 });
    const t2 = await countingTransport();
    await assert.rejects(
      connectWith({ balancer: unknown.endpoint, app: 'nope', transport: t2.transport, probeAttempts: 3 }),
      (e: ProbeRejectedError) => e.code === 'USHER_ERR_PROBE_REJECTED' && e.errorCode === 1,
    );
    assert.equal(unknown.count, 1, 'an unknown app is not asked again');

    const busy = await assigner({ errorCode: 2 });
    const t3 = await countingTransport();
    await assert.rejects(
      connectWith({
        balancer: busy.endpoint,
        app: 'game',
        transport: t3.transport,
        probeAttempts: 3,
        backoff: { baseMs: 1, maxMs: 5 },
      }),
      (e: ProbeRejectedError) => e.errorCode === 2,
    );
    assert.equal(busy.count, 3);
  });

  it('backs off with full jitter: attempt n waits within [0, min(max, base·2ⁿ)]', () => {
    const backoff = { baseMs: 100, maxMs: 3000 };
    for (let n = 0; n < 12; n++) {
      const cap = Math.min(3000, 100 * 2 ** n);
      assert.equal(
        backoffDelay(n, backoff, () => 0),
        0,
      );
      assert.equal(
        backoffDelay(n, backoff, () => 0.5),
        cap / 2,
      );
      const high = backoffDelay(n, backoff, () => 0.999999);
      assert.ok(high < cap && high > cap * 0.99, `${n}: ${high} vs ${cap}`);
    }
    let seed = 1;
    const lcg = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 1000; i++) {
      const n = i % 8;
      const d = backoffDelay(n, backoff, lcg);
      assert.ok(d >= 0 && d <= Math.min(3000, 100 * 2 ** n));
    }
  });

  it('parses balancer addresses and refuses bad ones', () => {
    assert.deepEqual(parseEndpoint('127.0.0.1:7000'), { address: '127.0.0.1', port: 7000 });
    assert.deepEqual(parseEndpoint('[::1]:7000'), { address: '::1', port: 7000 });
    assert.deepEqual(parseEndpoint('play.example.net:7000'), { address: 'play.example.net', port: 7000 });
    for (const bad of ['127.0.0.1', '::1:7000', 'host:0', 'host:70000', ':7000', '[nope]:1'])
      assert.throws(() => parseEndpoint(bad), { code: 'USHER_ERR_INVALID_ARGUMENT' }, bad);
    assert.throws(() => new ProbeClient({ balancer: 'x:1', app: '', transport: {} as DatagramTransport }));
  });

  it('the game-world example places players and relays their moves to the same incarnation', async () => {
    const script = fileURLToPath(new URL('../../examples/game-world.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, '--port', '0', '--id', 'world-a'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise((resolve) => child.on('close', resolve));
    cleanups.push(async () => {
      child.kill('SIGTERM');
      await exited;
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    const port = await eventually(() => {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      assert.ok(match, out);
      return Number(match[1]);
    }, 20_000);
    const a = await assigner({}, { id: 'world-a', endpoint: { address: '127.0.0.1', port } });
    const join = async (user: string, incarnation: string) => {
      const c = await connect({ balancer: a.endpoint, app: 'game', incarnation, user });
      cleanups.push(() => c.close());
      const got: unknown[] = [];
      c.on('message', (d) => got.push(JSON.parse(Buffer.from(d).toString())));
      return { c, got };
    };
    const ana = await join('ana', 'world-1');
    const bob = await join('bob', 'world-1');
    const eve = await join('eve', 'world-2');
    ana.c.send(JSON.stringify({ x: 3, y: 4 }));
    await eventually(() => assert.deepEqual(bob.got, [{ type: 'pos', player: 'ana', x: 3, y: 4 }]));
    await eventually(() => assert.deepEqual(ana.got, [{ type: 'pos', player: 'ana', x: 3, y: 4 }]));
    eve.c.send(JSON.stringify({ x: 1, y: 1 }));
    await eventually(() => assert.equal(eve.got.length, 1));
    assert.equal(bob.got.length, 1, 'world-1 does not hear world-2');
    await bob.c.close();
    await eventually(() => assert.deepEqual(ana.got.at(-1), { type: 'left', player: 'bob' }));
  });
});
