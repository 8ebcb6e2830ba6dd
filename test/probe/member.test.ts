import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { encode } from '../../src/probe/codec.js';
import { type MemberSession, ProbeMember, type ProbeMemberOptions } from '../../src/probe/member.js';
import { type Endpoint, ErrorCode, PADDED_REQUEST_BYTES } from '../../src/probe/messages.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { eventually } from '../support/wait.js';
import { TestSocket } from './fake-assigner.js';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function member(options: Partial<ProbeMemberOptions> = {}): Promise<ProbeMember> {
  const m = new ProbeMember({ id: 'm1', app: 'game', incarnations: ['world-1', 'world-2'], ...options });
  await m.start();
  cleanups.push(() => m.close());
  return m;
}

async function socket(host?: string): Promise<TestSocket> {
  const s = await TestSocket.open(host);
  cleanups.push(() => s.close());
  return s;
}

const token = () => new Uint8Array(randomBytes(16));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** FORWARD as an assigner sends it for `client`, whose padded probe was `requestSize` bytes. */
function forward(
  client: Endpoint,
  fields: { incarnation?: string; user?: string; requestSize?: number } = {},
) {
  const session = token();
  return {
    session,
    message: {
      kind: 'FORWARD' as const,
      requestId: 7,
      app: 'game',
      session,
      endpoint: client,
      requestSize: fields.requestSize ?? PADDED_REQUEST_BYTES,
      ...(fields.incarnation ? { incarnation: fields.incarnation } : {}),
      ...(fields.user ? { user: fields.user } : {}),
    },
  };
}

/** Places `client` on `m` through a FORWARD and waits for the member's answer. */
async function join(
  m: ProbeMember,
  assigner: TestSocket,
  client: TestSocket,
  incarnation = 'world-1',
  user?: string,
) {
  const f = forward(client.endpoint, { incarnation, ...(user ? { user } : {}) });
  await assigner.send(f.message, m.address);
  await client.nextMessage('PROBE_RESPONSE', 7);
  return f.session;
}

describe('ProbeMember', () => {
  it('answers a FORWARD from the assigner directly to the client, from its own port, with its endpoint and session (P0.2)', async () => {
    const m = await member({ site: 'eu-1' });
    const sessions: MemberSession[] = [];
    m.on('session', (s) => sessions.push(s));
    const assigner = await socket();
    const client = await socket();
    const f = forward(client.endpoint, { incarnation: 'world-2', user: 'ana' });
    await assigner.send(f.message, m.address);

    const r = await client.next((x) => x.message?.kind === 'PROBE_RESPONSE');
    assert.equal(r.from.port, m.address.port, 'the answer comes from the member, not the assigner');
    assert.deepEqual(r.message!.endpoint, m.address, 'the member announces its own address (P0.5)');
    assert.equal(r.message!.requestId, 7);
    assert.deepEqual(r.message!.session, f.session);
    assert.equal(r.message!.member, 'm1');
    assert.equal(r.message!.site, 'eu-1');
    assert.equal(r.message!.app, 'game');
    assert.equal(r.message!.incarnation, 'world-2');
    assert.ok(r.bytes.length <= PADDED_REQUEST_BYTES);
    assert.equal(assigner.received.length, 0, 'nothing goes back to the assigner');
    assert.equal(sessions.length, 1);
    assert.deepEqual(sessions[0]!.endpoint, client.endpoint);
    assert.equal(sessions[0]!.user, 'ana');
    assert.equal(sessions[0]!.id, hex(f.session));
  });

  it('announces the configured advertise address instead of the bound one', async () => {
    const m = await member({ advertise: { address: '192.0.2.10', port: 4000 } });
    const assigner = await socket();
    const client = await socket();
    await assigner.send(forward(client.endpoint).message, m.address);
    const r = await client.nextMessage('PROBE_RESPONSE');
    assert.deepEqual(r.endpoint, { address: '192.0.2.10', port: 4000 });
    assert.equal(r.incarnation, 'world-1', 'no incarnation asked: the first one served');
  });

  it('drops FORWARD and NOTIFY from addresses that are not its assigners', async () => {
    const m = await member({ assigners: ['127.0.0.2'] });
    const stranger = await socket('127.0.0.1');
    const assigner = await socket('127.0.0.2');
    const client = await socket();
    await stranger.send(forward(client.endpoint).message, m.address);
    await stranger.send({ ...forward(client.endpoint).message, kind: 'NOTIFY' }, m.address);
    await eventually(() => assert.equal(m.stats().dropped['not-assigner'], 2));
    assert.equal(m.sessions().length, 0);
    // The allowed assigner's FORWARD, sent after, is answered; nothing came before it.
    await assigner.send(forward(client.endpoint).message, m.address);
    await client.nextMessage('PROBE_RESPONSE');
    assert.equal(client.received.length, 1);
    assert.equal(m.sessions().length, 1);
  });

  it('refuses bad options loudly (no app, an assigner that is not an IP address)', () => {
    assert.throws(() => new ProbeMember({ id: 'x' }), InvalidArgumentError);
    assert.throws(() => new ProbeMember({ id: 'x', app: 'a', assigners: ['nope'] }), InvalidArgumentError);
  });

  it('NOTIFY creates a session without answering the client (P0.3); the client then gets heartbeat ACKs', async () => {
    const m = await member();
    const assigner = await socket();
    const client = await socket();
    const session = token();
    const created = new Promise<MemberSession>((resolve) => m.once('session', resolve));
    await assigner.send(
      {
        kind: 'NOTIFY',
        requestId: 1,
        app: 'game',
        incarnation: 'world-1',
        session,
        endpoint: client.endpoint,
      },
      m.address,
    );
    const s = await created;
    assert.equal(s.incarnation, 'world-1');
    assert.equal(client.received.length, 0);
    await client.send({ kind: 'HEARTBEAT', requestId: 99, session, seq: 5 }, m.address);
    const ack = await client.nextMessage('HEARTBEAT_ACK', 99);
    assert.deepEqual(ack.session, session);
    assert.equal(ack.seq, 5);
  });

  it('NOTIFY_BATCH creates one session per NOTIFY in it; bad pieces and strangers are counted and dropped', async () => {
    const m = await member({ assigners: ['127.0.0.1'] });
    const assigner = await socket('127.0.0.1');
    const stranger = await socket('127.0.0.2');
    const clients = [await socket(), await socket(), await socket()];
    const notify = (c: TestSocket, i: number) =>
      encode({
        kind: 'NOTIFY',
        requestId: i,
        app: 'game',
        incarnation: 'world-1',
        session: token(),
        endpoint: c.endpoint,
      });
    const data = new Uint8Array(clients.flatMap((c, i) => [...notify(c, i)]));
    await stranger.send({ kind: 'NOTIFY_BATCH', requestId: 0, data }, m.address);
    await eventually(() => assert.equal(m.stats().dropped['not-assigner'], 1, 'a stranger is refused'));
    assert.equal(m.sessions().length, 0);
    await assigner.send({ kind: 'NOTIFY_BATCH', requestId: 0, data }, m.address);
    await eventually(() => assert.equal(m.sessions().length, 3, 'one session per NOTIFY'));
    assert.equal(m.stats().received.NOTIFY, 3);
    // A batch whose last piece is cut short: the whole pieces count, the rest is dropped.
    const late = await socket();
    const cut = new Uint8Array([...notify(late, 9), ...notify(late, 10).subarray(0, 12)]);
    await assigner.send({ kind: 'NOTIFY_BATCH', requestId: 0, data: cut }, m.address);
    await eventually(() => assert.equal(m.stats().dropped['bad-batch'], 1, 'the cut piece is counted'));
    assert.equal(m.sessions().length, 4);
  });

  it('answers heartbeats of unknown sessions (or from another endpoint) with a size-bounded UNKNOWN_SESSION error', async () => {
    const m = await member();
    const assigner = await socket();
    const client = await socket();
    const other = await socket();
    const session = await join(m, assigner, client);
    const beat = { kind: 'HEARTBEAT' as const, requestId: 3, session: token(), seq: 1 };
    await client.send(beat, m.address);
    const r = await client.next((x) => x.message?.kind === 'ERROR');
    assert.equal(r.message!.error!.code, ErrorCode.UNKNOWN_SESSION);
    assert.ok(r.bytes.length <= encode(beat).length, 'never larger than the heartbeat');
    // The right session from the wrong endpoint is refused too.
    await other.send({ ...beat, requestId: 4, session }, m.address);
    assert.equal((await other.nextMessage('ERROR', 4)).error!.code, ErrorCode.UNKNOWN_SESSION);
    assert.equal(m.stats().dropped['wrong-endpoint'], 1);
  });

  it('lists the users of the same incarnation in the lobby (P0.7)', async () => {
    const m = await member();
    const assigner = await socket();
    const [a, b, c] = [await socket(), await socket(), await socket()];
    const sa = await join(m, assigner, a, 'world-1', 'ana');
    const sb = await join(m, assigner, b, 'world-1');
    await join(m, assigner, c, 'world-2', 'carl');
    await a.send({ kind: 'LOBBY', requestId: 11, session: sa }, m.address);
    const lobby = (await a.nextMessage('LOBBY_RESPONSE', 11)).body as {
      app: string;
      incarnation: string;
      member: string;
      users: string[];
    };
    assert.equal(lobby.app, 'game');
    assert.equal(lobby.incarnation, 'world-1');
    assert.equal(lobby.member, 'm1');
    assert.deepEqual(lobby.users.sort(), ['ana', hex(sb).slice(0, 8)].sort());
    // A lobby request for a session that is not yours gets nothing but an error.
    await c.send({ kind: 'LOBBY', requestId: 12, session: sa }, m.address);
    assert.equal((await c.nextMessage('ERROR', 12)).error!.code, ErrorCode.UNKNOWN_SESSION);
  });

  it('delivers application data from session endpoints, drops it from anyone else, and sends and broadcasts', async () => {
    const m = await member();
    const assigner = await socket();
    const [a, b, c, stranger] = [await socket(), await socket(), await socket(), await socket()];
    await join(m, assigner, a, 'world-1');
    await join(m, assigner, b, 'world-1');
    await join(m, assigner, c, 'world-2');
    const got: string[] = [];
    m.on('message', (s, data) => got.push(`${s.endpoint.port}:${Buffer.from(data).toString()}`));
    await stranger.send('hello from nowhere', m.address);
    await a.send('move 1', m.address);
    await eventually(() => assert.deepEqual(got, [`${a.endpoint.port}:move 1`]));
    assert.equal(m.stats().dropped['unknown-endpoint'], 1);

    const sa = m.sessions().find((s) => s.endpoint.port === a.endpoint.port)!;
    assert.equal(m.broadcast('world-1', 'tick', sa), 1);
    assert.equal(m.send(sa, 'just you'), true);
    assert.equal(m.send('no-such-session', 'x'), false);
    await b.next((r) => r.bytes.toString() === 'tick');
    await a.next((r) => r.bytes.toString() === 'just you');
    assert.equal(c.received.filter((r) => r.message === undefined).length, 0, 'world-2 hears nothing');
    assert.throws(() => m.send(sa, new Uint8Array([0, 4, 0xff, 0xff])), InvalidArgumentError);
  });

  it('never answers with more bytes than the request: too-small FORWARDs and unpadded probes get nothing', async () => {
    const m = await member();
    const assigner = await socket();
    const client = await socket();
    await assigner.send(forward(client.endpoint, { requestSize: 40 }).message, m.address);
    await eventually(() => assert.equal(m.stats().dropped['answer-too-large'], 1));
    assert.equal(m.sessions().length, 0, 'no answer, no session');

    const small = { kind: 'PROBE' as const, requestId: 21, app: 'game' };
    await client.send(small, m.address);
    await eventually(() => assert.equal(m.stats().dropped['answer-too-large'], 2));
    // A padded probe (as clients and health checks send) is answered, within its size.
    await client.send({ ...small, requestId: 22, padTo: PADDED_REQUEST_BYTES }, m.address);
    const r = await client.next((x) => x.message?.requestId === 22);
    assert.equal(r.message!.kind, 'PROBE_RESPONSE');
    assert.equal(r.message!.member, 'm1');
    assert.equal(r.message!.session, undefined, 'a direct probe creates no session');
    assert.ok(r.bytes.length <= PADDED_REQUEST_BYTES);
    assert.equal(client.received.length, 1, 'the refused requests got nothing before');
  });

  it('a repeated FORWARD for the same client keeps its session; BYE ends it; idle sessions expire', async () => {
    let now = 1_000_000;
    const m = await member({ sessionIdleMs: 60_000, now: () => now });
    const ended: string[] = [];
    m.on('end', (s, reason) => ended.push(`${s.user}:${reason}`));
    const assigner = await socket();
    const [a, b] = [await socket(), await socket()];
    const sa = await join(m, assigner, a, 'world-1', 'a');
    await assigner.send(
      { ...forward(a.endpoint, { incarnation: 'world-1' }).message, requestId: 8 },
      m.address,
    );
    assert.deepEqual(
      (await a.nextMessage('PROBE_RESPONSE', 8)).session,
      sa,
      'the retransmission gets the same session',
    );
    assert.equal(m.sessions().length, 1);

    await join(m, assigner, b, 'world-1', 'b');
    await a.send({ kind: 'BYE', requestId: 1, session: sa }, m.address);
    await eventually(() => assert.deepEqual(ended, ['a:bye']));
    now += 60_001;
    assert.equal(m.expireIdle(), 1);
    assert.deepEqual(ended, ['a:bye', 'b:idle']);
    assert.equal(m.sessions().length, 0);
  });

  it('refuses incarnations it does not run with an ERROR the size of the request', async () => {
    const m = await member();
    const assigner = await socket();
    const client = await socket();
    await assigner.send(forward(client.endpoint, { incarnation: 'world-9' }).message, m.address);
    const r = await client.next((x) => x.message?.kind === 'ERROR');
    assert.equal(r.message!.error!.code, ErrorCode.NO_MEMBER);
    assert.equal(m.sessions().length, 0);
  });

  it('counts malformed datagrams and never throws', async () => {
    const m = await member();
    const s = await socket();
    const bad = [
      new Uint8Array([0, 3, 0xff, 0xff]),
      new Uint8Array([0, 16, 0xff, 0xff, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      Buffer.concat([Buffer.from(encode({ kind: 'HEARTBEAT', requestId: 1, seq: 1 })), Buffer.alloc(1)]),
      encode({ kind: 'CATALOG_RESPONSE', requestId: 1, body: {} }),
      encode({ kind: 'HEARTBEAT', requestId: 1, seq: 1 }),
    ];
    for (const b of bad) await s.send(b, m.address);
    await eventually(() => {
      const d = m.stats().dropped;
      assert.equal(d.short, 1);
      assert.equal(d['bad-version'], 1);
      assert.equal(d['length-mismatch'], 1);
      assert.equal(d['unexpected-kind'], 1);
      assert.equal(d['missing-field'], 1);
    });
  });

  it('reports live sessions to the registry: users and sessions.<incarnation>', async () => {
    const registry = new MemoryRegistry();
    cleanups.push(() => registry.close());
    await registry.register(makeMember({ id: 'm1', pool: 'game' }));
    const m = await member({ registry, reportIntervalMs: 20 });
    const assigner = await socket();
    await join(m, assigner, await socket(), 'world-2');
    await eventually(async () => {
      const load = (await registry.get('m1'))?.load;
      assert.equal(load?.users, 1);
      assert.equal(load?.custom['sessions.world-2'], 1);
      assert.equal(load?.custom['sessions.world-1'], 0);
    });
  });
});
