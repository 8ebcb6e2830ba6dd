import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { afterEach, describe, it } from 'node:test';
import { Metrics } from '../../src/admin/metrics.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { type LoadReport, makeMember } from '../../src/core/model.js';
import { createPolicy } from '../../src/core/policy/index.js';
import type { Policy } from '../../src/core/policy/policy.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { Assigner } from '../../src/probe/assigner.js';
import { decode, encode } from '../../src/probe/codec.js';
import { CookieJar } from '../../src/probe/cookie.js';
import { ProbeMember } from '../../src/probe/member.js';
import { ErrorCode, Flag, type ProbeMessage } from '../../src/probe/messages.js';
import { RateLimiter } from '../../src/probe/rate-limit.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { Usher } from '../../src/runtime.js';
import { createLogger } from '../../src/util/logger.js';
import { eventually } from '../support/wait.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const HOST = '127.0.0.1';
const SECRET = 'assigner-test-secret';
const closers: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

interface Received {
  readonly bytes: Buffer;
  readonly from: dgram.RemoteInfo;
  /** Undefined when the datagram did not decode. */
  readonly message: ProbeMessage | undefined;
}

/** A UDP socket on loopback that records what it receives. */
interface Peer {
  readonly socket: dgram.Socket;
  readonly address: string;
  readonly port: number;
  readonly got: Received[];
  /** Bytes this peer sent. */
  sent: number;
  send(bytes: Uint8Array, port: number, address?: string): Promise<void>;
  /** Waits for the first received message matching `match` (polling with a deadline). */
  waitFor(match: (m: ProbeMessage) => boolean, what: string): Promise<ProbeMessage>;
}

async function peer(address = HOST, onMessage?: (r: Received, p: Peer) => void): Promise<Peer> {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => resolve());
  });
  socket.on('error', () => {});
  const p: Peer = {
    socket,
    address,
    port: socket.address().port,
    got: [],
    sent: 0,
    send(bytes, port, to = HOST) {
      p.sent += bytes.length;
      return new Promise((resolve, reject) =>
        socket.send(bytes, port, to, (e) => (e ? reject(e) : resolve())),
      );
    },
    async waitFor(match, what) {
      return eventually(() => {
        const r = p.got.find((g) => g.message && match(g.message));
        assert.ok(r, `waiting for ${what}`);
        return r.message!;
      }, 5000);
    },
  };
  socket.on('message', (bytes, from) => {
    const d = decode(bytes);
    const r: Received = { bytes, from, message: d.ok ? d.message : undefined };
    p.got.push(r);
    onMessage?.(r, p);
  });
  closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return p;
}

/**
 * A fake member speaking the protocol through the codec: records FORWARD and NOTIFY; in
 * forward mode answers the client named in a FORWARD directly; answers a PROBE (a health
 * check) with PROBE_RESPONSE.
 */
async function fakeMember(id: string): Promise<Peer> {
  return peer(HOST, (r, p) => {
    const m = r.message;
    if (!m) return;
    if (m.kind === 'FORWARD' && m.endpoint) {
      const answer = encode({
        kind: 'PROBE_RESPONSE',
        requestId: m.requestId,
        endpoint: { address: HOST, port: p.port },
        app: m.app,
        session: m.session,
        member: id,
        site: 'local',
      });
      if (answer.length <= (m.requestSize ?? 0)) void p.send(answer, m.endpoint.port, m.endpoint.address);
    } else if (m.kind === 'PROBE') {
      void p.send(
        encode({
          kind: 'PROBE_RESPONSE',
          requestId: m.requestId,
          endpoint: { address: HOST, port: p.port },
          member: id,
        }),
        r.from.port,
        r.from.address,
      );
    }
  });
}

type AssignerInput = NonNullable<ConfigInput['assigner']>;

interface Setup {
  assigner: Assigner;
  registry: MemoryRegistry;
  metrics: Metrics;
  port: number;
}

async function startAssigner(
  section: AssignerInput,
  options: {
    members?: { id: string; port: number; labels?: Record<string, string>; ports?: Record<string, number> }[];
    now?: () => number;
    pools?: string[];
  } = {},
): Promise<Setup> {
  const pools = Object.fromEntries((options.pools ?? ['game']).map((p) => [p, { health: { kind: 'none' } }]));
  const config = validateConfig({ pools, assigner: { port: 0, ...section } });
  const registry = new MemoryRegistry();
  for (const m of options.members ?? [])
    await registry.register(
      makeMember({ id: m.id, pool: 'game', ports: { main: m.port, ...m.ports }, labels: m.labels ?? {} }),
    );
  const metrics = new Metrics({ defaultMetrics: false });
  const policies = new Map<string, Policy>(
    Object.keys(config.pools).map((p) => [p, createPolicy('round-robin')]),
  );
  const assigner = new Assigner({
    config: config.assigner!,
    registry,
    policyFor: (pool) => policies.get(pool)!,
    newPolicy: () => createPolicy('round-robin'),
    secret: SECRET,
    metrics,
    logger,
    ...(options.now ? { now: options.now } : {}),
  });
  closers.push(async () => {
    await assigner.close();
    await registry.close();
  });
  const bound = await assigner.start();
  assert.equal(bound.address, config.assigner!.host);
  return { assigner, registry, metrics, port: bound.port };
}

let nextId = 1;
function probe(fields: Partial<ProbeMessage> = {}, pad = true): Uint8Array {
  return encode({
    kind: 'PROBE',
    requestId: nextId++,
    app: 'game',
    ...(pad ? { padTo: 256 } : {}),
    ...fields,
  });
}

/** A request the assigner always answers with a small ERROR: once it arrives, every earlier answer has. */
async function sentinel(client: Peer, port: number): Promise<ProbeMessage> {
  const requestId = nextId++;
  await client.send(encode({ kind: 'PROBE', requestId, app: 'no-such-app', padTo: 256 }), port);
  return client.waitFor((m) => m.requestId === requestId, 'the sentinel ERROR');
}

function idOf(bytes: Uint8Array): number {
  const d = decode(bytes);
  assert.ok(d.ok);
  return d.message.requestId;
}

/** Fake members `ids`, as `startAssigner` members. */
async function fakeMembers(
  ...ids: string[]
): Promise<{ id: string; port: number; labels?: Record<string, string>; peer: Peer }[]> {
  const out = [];
  for (const id of ids) {
    const p = await fakeMember(id);
    out.push({ id, port: p.port, peer: p });
  }
  return out;
}

function hex(b: Uint8Array | undefined): string {
  return Buffer.from(b ?? []).toString('hex');
}

describe('probe assigner', () => {
  it('forward mode: the member gets FORWARD with the observed client endpoint and request size, the client nothing from the assigner', async () => {
    const m1 = await fakeMember('m1');
    const { assigner, port, metrics } = await startAssigner(
      { mode: 'forward', apps: { game: { pool: 'game' } } },
      { members: [{ id: 'm1', port: m1.port }] },
    );
    const client = await peer();
    const request = probe({ user: 'alice' });
    await client.send(request, port);
    const fwd = await m1.waitFor((m) => m.kind === 'FORWARD', 'FORWARD');
    assert.deepEqual(fwd.endpoint, { address: HOST, port: client.port });
    assert.equal(fwd.requestSize, request.length);
    assert.equal(fwd.app, 'game');
    assert.equal(fwd.user, 'alice');
    assert.equal(fwd.session?.length, 16);
    assert.equal((fwd.flags ?? 0) & Flag.VALIDATED, 0, 'no cookie, not validated');
    assert.equal(fwd.requestId, idOf(request), 'the member echoes the client requestId');
    assert.equal(m1.got[0]?.from.port, port, 'FORWARD comes from the assigner socket');

    // The member answered the client directly; the assigner itself sent the client nothing.
    const answer = await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'the member answer');
    assert.equal(answer.member, 'm1');
    await sentinel(client, port);
    const fromAssigner = client.got.filter((g) => g.from.port === port);
    assert.deepEqual(
      fromAssigner.map((g) => g.message?.kind),
      ['ERROR'],
      'only the sentinel came from the assigner',
    );

    // With a valid cookie the FORWARD says so (the member may then answer beyond the request size).
    const cookie = new CookieJar({ secret: SECRET }).make({ address: HOST, port: client.port });
    const withCookie = probe({ cookie }, false);
    await client.send(withCookie, port);
    const validated = await m1.waitFor((m) => m.requestId === idOf(withCookie), 'validated FORWARD');
    assert.equal((validated.flags ?? 0) & Flag.VALIDATED, Flag.VALIDATED);
    assert.equal(validated.requestSize, withCookie.length);

    const s = assigner.summary();
    assert.equal(s.mode, 'forward');
    assert.equal(s.address, `${HOST}:${port}`);
    assert.equal(s.totals.assignments, 2);
    assert.deepEqual(s.members, { m1: 2 });
    assert.equal(s.apps.game?.assignments, 2);
    const text = await metrics.text();
    assert.match(text, /usher_probe_assignments_total\{app="game",member="m1",mode="forward"\} 2/);
    assert.match(text, /usher_probe_requests_total\{app="game",kind="PROBE"\} 2/);
    assert.match(text, /usher_probe_errors_sent_total\{code="UNKNOWN_APP"\} 1/);
    assert.match(
      text,
      new RegExp(`usher_probe_bytes_total\\{direction="in"\\} ${request.length + 256 + withCookie.length}`),
    );
  });

  it('answer mode: the client gets PROBE_RESPONSE with the member endpoint, the member NOTIFY with the same session', async () => {
    const m1 = await fakeMember('m1');
    const { port } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game' } } },
      { members: [{ id: 'm1', port: 1, ports: { probe: m1.port } }] },
    );
    const client = await peer();
    await client.send(probe({ user: 'bob' }), port);
    const res = await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE');
    assert.deepEqual(res.endpoint, { address: HOST, port: m1.port }, 'the member probe port');
    assert.equal(res.member, 'm1');
    assert.equal(res.site, 'local');
    assert.equal(res.app, 'game');
    const note = await m1.waitFor((m) => m.kind === 'NOTIFY', 'NOTIFY');
    assert.equal(hex(note.session), hex(res.session));
    assert.equal(note.session?.length, 16);
    assert.deepEqual(note.endpoint, { address: HOST, port: client.port });
    assert.equal(note.user, 'bob');
    assert.ok(client.got[0]!.bytes.length <= 256, 'never larger than the request');
  });

  it('answer mode under a burst: NOTIFYs for one member leave as one NOTIFY_BATCH, and every client is answered', async () => {
    const member = new ProbeMember({ id: 'm1', app: 'game' });
    const bound = await member.start();
    closers.push(() => member.close());
    const { port } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game' } } },
      { members: [{ id: 'm1', port: bound.port }] },
    );
    const clients = await Promise.all(Array.from({ length: 12 }, () => peer()));
    // All in one tick: the assigner reads them in one go.
    for (const c of clients) void c.send(probe(), port);
    const answers = await Promise.all(
      clients.map((c) => c.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE')),
    );
    await eventually(() => assert.equal(member.sessions().length, 12, 'one session per client'));
    for (const a of answers)
      assert.ok(member.session(hex(a.session)), 'the member knows the session answered');
    assert.ok((member.stats().received.NOTIFY_BATCH ?? 0) >= 1, 'NOTIFYs came batched');
    assert.equal(member.stats().received.NOTIFY, 12);
  });

  for (const mode of ['forward', 'answer'] as const) {
    it(`P0.4 (${mode}): an address written in the payload is never used; answers go to the observed source`, async () => {
      const trap = await peer('127.0.0.2');
      const m1 = await fakeMember('m1');
      const { port } = await startAssigner(
        { mode, apps: { game: { pool: 'game' } } },
        { members: [{ id: 'm1', port: m1.port }] },
      );
      const client = await peer();
      await client.send(probe({ endpoint: { address: trap.address, port: trap.port } }), port);
      const catalogue = encode({
        kind: 'CATALOG',
        requestId: nextId++,
        endpoint: { address: trap.address, port: trap.port },
        padTo: 256,
      });
      await client.send(catalogue, port);
      const tell = await m1.waitFor(
        (m) => m.kind === (mode === 'forward' ? 'FORWARD' : 'NOTIFY'),
        'member message',
      );
      assert.deepEqual(tell.endpoint, { address: HOST, port: client.port });
      if (mode === 'answer') await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE');
      await client.waitFor((m) => m.kind === 'CATALOG_RESPONSE' || m.kind === 'RETRY', 'catalog answer');
      await sentinel(client, port);
      assert.equal(trap.got.length, 0, 'nothing reached the address in the payload');
    });
  }

  it('amplification: an unpadded PROBE gets RETRY or nothing, never more bytes; the cookie unlocks the answer', async () => {
    const m1 = await fakeMember('m1');
    const { assigner, port } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game' } } },
      { members: [{ id: 'm1', port: m1.port }] },
    );
    const client = await peer();
    // Minimal: 23 bytes; the answer (and even a RETRY, 35 bytes) is larger → nothing.
    const tiny = probe({}, false);
    assert.ok(tiny.length < 35);
    await client.send(tiny, port);
    await sentinel(client, port);
    assert.deepEqual(
      client.got.map((g) => g.message?.kind),
      ['ERROR'],
    );
    assert.equal(assigner.summary().dropped.amplification, 1);

    // Unpadded but large enough for a RETRY: gets one, with a cookie.
    const mid = probe({ user: 'user-12345' }, false);
    const midId = idOf(mid);
    await client.send(mid, port);
    const retry = await client.waitFor((m) => m.requestId === midId, 'RETRY');
    assert.equal(retry.kind, 'RETRY');
    assert.equal(retry.cookie?.length, 16);
    assert.ok(client.got.at(-1)!.bytes.length <= mid.length);

    // Asking again (still unpadded) with the cookie: the full answer, even though it is larger.
    const again = probe({ user: 'user-12345', cookie: retry.cookie }, false);
    await client.send(again, port);
    const res = await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE');
    assert.equal(res.member, 'm1');
    assert.ok(client.got.at(-1)!.bytes.length > again.length, 'validated: the answer may be larger');
    await m1.waitFor((m) => m.kind === 'NOTIFY', 'NOTIFY');

    // A cookie from another client endpoint does not validate.
    const other = await peer();
    const stolen = probe({ user: 'user-12345', cookie: retry.cookie }, false);
    await other.send(stolen, port);
    const r2 = await other.waitFor((m) => m.kind === 'RETRY', 'RETRY for the other client');
    assert.notEqual(hex(r2.cookie), hex(retry.cookie));
  });

  it('catalog: RETRY with a cookie for a new address, then the full catalog with the cookie', async () => {
    const worlds = Array.from({ length: 12 }, (_, i) => `world-${i + 1}`);
    const { registry, port } = await startAssigner(
      {
        mode: 'answer',
        apps: { game: { pool: 'game', incarnations: worlds }, chat: { pool: 'chat' } },
      },
      {
        pools: ['game', 'chat'],
        members: [
          { id: 'g1', port: 40001, labels: { incarnations: 'world-1,world-2' } },
          { id: 'g2', port: 40002, labels: { incarnations: 'world-2' } },
          { id: 'g3', port: 40003, labels: { incarnations: 'world-3' } },
        ],
      },
    );
    const load = (users: number): LoadReport => ({
      users,
      connections: 0,
      inFlight: 0,
      cpu: 0,
      custom: {},
      timestamp: Date.now(),
    });
    await registry.report('g1', load(5));
    await registry.report('g2', load(7));
    await registry.setHealth('g3', 'down', 'test');

    const client = await peer();
    const ask = (cookie?: Uint8Array) =>
      encode({ kind: 'CATALOG', requestId: nextId++, padTo: 256, ...(cookie ? { cookie } : {}) });
    const first = ask();
    await client.send(first, port);
    const retry = await client.waitFor((m) => m.kind === 'RETRY', 'RETRY');
    assert.ok(client.got[0]!.bytes.length <= first.length);
    const second = ask(retry.cookie);
    await client.send(second, port);
    const cat = await client.waitFor((m) => m.kind === 'CATALOG_RESPONSE', 'CATALOG_RESPONSE');
    assert.ok(client.got.at(-1)!.bytes.length > second.length, 'the full catalog is larger than the request');
    const body = cat.body as {
      apps: { name: string; incarnations: { id: string; members: number; users: number }[] }[];
    };
    assert.deepEqual(
      body.apps.map((a) => a.name),
      ['game', 'chat'],
    );
    const game = body.apps[0]!.incarnations;
    assert.equal(game.length, 12);
    assert.deepEqual(game[0], { id: 'world-1', members: 1, users: 5 });
    assert.deepEqual(game[1], { id: 'world-2', members: 2, users: 12 });
    assert.deepEqual(game[2], { id: 'world-3', members: 0, users: 0 }, 'a down member is not counted');
    assert.deepEqual(body.apps[1]!.incarnations, [{ id: 'default', members: 0, users: 0 }]);
  });

  it('never an amplifier: over a burst of varied requests and garbage, bytes out ≤ bytes in per request', async () => {
    const m1 = await fakeMember('m1');
    const { assigner, port } = await startAssigner(
      {
        mode: 'answer',
        apps: { game: { pool: 'game', incarnations: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] } },
        rateLimit: { perSecond: 1000, burst: 10_000 },
      },
      { members: [{ id: 'm1', port: m1.port }] },
    );
    const client = await peer();
    const sizes = new Map<number, number>();
    const requests: Uint8Array[] = [];
    const add = (m: ProbeMessage) => {
      const bytes = encode(m);
      sizes.set(m.requestId, bytes.length);
      requests.push(bytes);
    };
    for (let i = 0; i < 20; i++) {
      const requestId = nextId++;
      const pad = [undefined, 40, 64, 128, 256][i % 5];
      const extra = pad === undefined ? {} : { padTo: pad };
      add({ kind: 'PROBE', requestId, app: i % 3 === 0 ? 'nope' : 'game', ...extra });
      add({ kind: 'PROBE', requestId: nextId++, app: 'game', incarnation: 'zz', ...extra });
      add({ kind: 'CATALOG', requestId: nextId++, ...extra });
      add({ kind: 'CATALOG', requestId: nextId++, cookie: randomBytes(16), ...extra });
      add({ kind: 'HEARTBEAT', requestId: nextId++, session: randomBytes(16), seq: i });
      requests.push(randomBytes(1 + ((i * 37) % 300)));
      const fake = Buffer.from(randomBytes(40));
      fake.writeUInt16BE(0xffff, 2);
      requests.push(fake);
    }
    for (const r of requests) await client.send(r, port);
    await sentinel(client, port);
    const sentIn = client.sent;
    const received = client.got.reduce((n, g) => n + g.bytes.length, 0);
    assert.ok(received <= sentIn, `bytes out ${received} ≤ bytes in ${sentIn}`);
    for (const g of client.got) {
      const id = g.message?.requestId;
      const size = id === undefined ? undefined : sizes.get(id);
      if (size !== undefined)
        assert.ok(g.bytes.length <= size, `answer to ${id}: ${g.bytes.length} ≤ ${size}`);
    }
    const s = assigner.summary();
    assert.ok((s.dropped.data ?? 0) >= 1, 'garbage counted as data');
    assert.equal(s.dropped['unexpected-kind'], 20, 'HEARTBEAT is not for the assigner');
    assert.ok(s.totals.retries > 0, 'some RETRY answers were sent');
  });

  it('unknown app → UNKNOWN_APP; every member down or draining → NO_MEMBER', async () => {
    const { registry, port, assigner } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game' } } },
      { members: await fakeMembers('m1', 'm2') },
    );
    const client = await peer();
    await client.send(probe({ app: 'elsewhere' }), port);
    const e1 = await client.waitFor((m) => m.kind === 'ERROR', 'ERROR');
    assert.equal(e1.error?.code, ErrorCode.UNKNOWN_APP);

    await registry.setHealth('m1', 'down', 'test');
    await registry.setHealth('m2', 'draining', 'test');
    const req = probe();
    await client.send(req, port);
    const e2 = await client.waitFor((m) => m.requestId === idOf(req), 'ERROR');
    assert.equal(e2.kind, 'ERROR');
    assert.equal(e2.error?.code, ErrorCode.NO_MEMBER);
    assert.deepEqual(assigner.summary().errors, { UNKNOWN_APP: 1, NO_MEMBER: 1 });

    // Back up: served again (the cached view follows the registry).
    await registry.setHealth('m2', 'up', 'test');
    await client.send(probe(), port);
    const res = await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE');
    assert.equal(res.member, 'm2');

    // A member that joins later is chosen once the view has read its health.
    await registry.setHealth('m2', 'down', 'test');
    const m3 = await fakeMember('m3');
    await registry.register(makeMember({ id: 'm3', pool: 'game', ports: { main: m3.port } }));
    await eventually(async () => {
      const r = probe();
      const id = idOf(r);
      await client.send(r, port);
      const m = await client.waitFor((x) => x.requestId === id, 'answer');
      assert.equal(m.member, 'm3');
    });
  });

  it('rate limit: datagrams beyond the burst are dropped unanswered until tokens flow in again', async () => {
    let now = 1_000_000;
    const { assigner, port } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game' } }, rateLimit: { perSecond: 1, burst: 5 } },
      { now: () => now },
    );
    const client = await peer();
    for (let i = 0; i < 10; i++) await client.send(probe({ app: 'nope' }), port);
    await eventually(() => assert.equal(assigner.summary().dropped['rate-limited'], 5));
    await eventually(() => assert.equal(client.got.length, 5));
    assert.ok(client.got.every((g) => g.message?.kind === 'ERROR'));
    now += 1000; // one token
    await client.send(probe({ app: 'nope' }), port);
    await eventually(() => assert.equal(client.got.length, 6));
    await client.send(probe({ app: 'nope' }), port);
    await eventually(() => assert.equal(assigner.summary().dropped['rate-limited'], 6));
    // Another source address has its own bucket.
    const other = await peer('127.0.0.2');
    await sentinel(other, port);
  });

  it('garbage is counted by reason and the assigner keeps serving', async () => {
    const { assigner, port } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game' } }, rateLimit: { perSecond: 1000, burst: 1000 } },
      { members: await fakeMembers('m1') },
    );
    const client = await peer();
    const good = probe();
    const short = Buffer.from([0, 10, 0xff, 0xff, 1, 1, 0, 0, 0, 0]);
    const mismatch = Buffer.from(good);
    mismatch.writeUInt16BE(good.length + 1, 0);
    const version = Buffer.from(good);
    version[4] = 9;
    const kind = Buffer.from(good);
    kind[5] = 200;
    for (let i = 0; i < 30; i++) {
      const junk = randomBytes(1 + i * 7);
      if (junk.length >= 4 && junk[2] === 0xff && junk[3] === 0xff) junk[2] = 0;
      await client.send(junk, port);
    }
    for (const b of [short, mismatch, version, kind]) await client.send(b, port);
    await client.send(Buffer.alloc(0), port);
    await client.send(good, port);
    await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'an answer after the garbage');
    const d = assigner.summary().dropped;
    assert.equal(d.data, 31);
    assert.equal(d.short, 1);
    assert.equal(d['length-mismatch'], 1);
    assert.equal(d['bad-version'], 1);
    assert.equal(d['bad-kind'], 1);
    assert.equal(client.got.length, 1, 'garbage is never answered');
  });

  it('answer mode: a probe naming no incarnation is told the one the member will use', async () => {
    const m1 = await fakeMember('m1');
    const { port } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game', incarnations: ['w1', 'w2'] } } },
      { members: [{ id: 'm1', port: 1, ports: { probe: m1.port }, labels: { incarnations: 'w2' } }] },
    );
    const client = await peer();
    await client.send(probe({}), port);
    const res = await client.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE');
    assert.equal(res.incarnation, 'w2', 'the member hosts only w2');
    const note = await m1.waitFor((m) => m.kind === 'NOTIFY', 'NOTIFY');
    assert.equal(note.incarnation, 'w2', 'the member is told the same incarnation');
  });

  it('incarnations: only members hosting the asked incarnation are chosen', async () => {
    const { port, registry } = await startAssigner(
      { mode: 'answer', apps: { game: { pool: 'game', incarnations: ['w1', 'w2'] } } },
      {
        // `any` has no label: it hosts every incarnation.
        members: (await fakeMembers('m1', 'm2', 'm3', 'any')).map((m, i) => {
          const hosted = ['w1', 'w2, w1', 'w2'][i];
          return hosted ? { ...m, labels: { incarnations: hosted } } : m;
        }),
      },
    );
    const client = await peer();
    const placed = async (incarnation: string): Promise<ProbeMessage> => {
      const r = probe({ incarnation });
      const id = idOf(r);
      await client.send(r, port);
      return client.waitFor((m) => m.requestId === id, `answer for ${incarnation}`);
    };
    const seen = { w1: new Set<string>(), w2: new Set<string>() };
    for (let i = 0; i < 12; i++) {
      for (const inc of ['w1', 'w2'] as const) {
        const res = await placed(inc);
        assert.equal(res.kind, 'PROBE_RESPONSE');
        assert.equal(res.incarnation, inc);
        seen[inc].add(res.member!);
      }
    }
    assert.deepEqual([...seen.w1].sort(), ['any', 'm1', 'm2']);
    assert.deepEqual([...seen.w2].sort(), ['any', 'm2', 'm3']);
    const unknown = await placed('w9');
    assert.equal(unknown.error?.code, ErrorCode.UNKNOWN_APP);
    for (const id of ['m2', 'm3', 'any']) await registry.setHealth(id, 'down', 'test');
    assert.equal((await placed('w2')).error?.code, ErrorCode.NO_MEMBER);
    assert.equal((await placed('w1')).member, 'm1');
  });

  it('the config section is validated: apps name declared pools, host/port keep, defaults apply', () => {
    const cfg = validateConfig({ pools: { game: {} }, assigner: { apps: { game: { pool: 'game' } } } });
    assert.deepEqual(
      {
        host: cfg.assigner?.host,
        port: cfg.assigner?.port,
        mode: cfg.assigner?.mode,
        rl: cfg.assigner?.rateLimit,
      },
      { host: '127.0.0.1', port: 9190, mode: 'forward', rl: { perSecond: 50, burst: 100 } },
    );
    assert.throws(
      () => validateConfig({ pools: { game: {} }, assigner: { apps: { game: { pool: 'gaem' } } } }),
      (e: unknown) =>
        e instanceof ConfigInvalidError &&
        e.issues.some((i) => i.path === 'assigner.apps.game.pool' && /unknown pool "gaem"/.test(i.message)),
    );
    assert.throws(
      () => validateConfig({ assigner: { mode: 'proxy' } }),
      (e: unknown) => e instanceof ConfigInvalidError && e.issues.some((i) => i.path === 'assigner.mode'),
    );
    assert.throws(
      () => validateConfig({ assigner: { maxAnswerRatio: 2 } }),
      (e: unknown) => e instanceof ConfigInvalidError && /maxAnswerRatio/.test(e.message),
    );
  });

  it('rate limiter: remembers at most maxSources, least recently seen first out', () => {
    let now = 0;
    const rl = new RateLimiter({ perSecond: 1, burst: 1, maxSources: 2, now: () => now });
    assert.equal(rl.take('a'), true);
    assert.equal(rl.take('a'), false);
    assert.equal(rl.take('b'), true);
    assert.equal(rl.take('a'), false); // a is now the most recent
    assert.equal(rl.take('c'), true); // evicts b
    assert.equal(rl.sources, 2);
    assert.equal(rl.evicted, 1);
    assert.equal(rl.take('b'), true, 'b was forgotten: a fresh bucket');
    now += 1000;
    assert.equal(rl.take('c'), true, 'refilled');
  });
});

/** True when this machine can bind IPv6 loopback (some containers cannot). */
async function hasIPv6(): Promise<boolean> {
  const s = dgram.createSocket('udp6');
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(0, '::1', () => resolve(true));
  });
  await new Promise<void>((resolve) => {
    try {
      s.close(() => resolve());
    } catch {
      resolve();
    }
  });
  return ok;
}

describe('probe assigner over IPv6', async () => {
  const skip = (await hasIPv6()) ? false : 'IPv6 loopback (::1) cannot be bound here';
  it('a dual-stack assigner sees IPv4 clients as IPv4 and reaches IPv4 members; IPv6 clients as IPv6', {
    skip,
  }, async () => {
    const m1 = await fakeMember('m1');
    const { assigner, port } = await startAssigner(
      { host: '::', mode: 'answer', apps: { game: { pool: 'game' } } },
      { members: [{ id: 'm1', port: m1.port }] },
    );
    assert.equal(assigner.summary().address, `[::]:${port}`);
    const v4 = await peer();
    await v4.send(probe(), port, HOST);
    await v4.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE over IPv4');
    const n4 = await m1.waitFor((m) => m.kind === 'NOTIFY', 'NOTIFY for the IPv4 client');
    assert.deepEqual(n4.endpoint, { address: HOST, port: v4.port }, 'unmapped');
    const v6 = await peer('::1');
    await v6.send(probe(), port, '::1');
    await v6.waitFor((m) => m.kind === 'PROBE_RESPONSE', 'PROBE_RESPONSE over IPv6');
    await eventually(() => assert.equal(m1.got.filter((g) => g.message?.kind === 'NOTIFY').length, 2));
    const n6 = m1.got.filter((g) => g.message?.kind === 'NOTIFY')[1]!.message!;
    assert.deepEqual(n6.endpoint, { address: '::1', port: v6.port });
  });
});

describe('usher run with an assigner', () => {
  it('starts the assigner with the registry, shows it in roles, reloads the mode, refuses a port change', async () => {
    const m1 = await fakeMember('m1');
    const silent = await peer(); // never answers: its UDP health check fails
    const config = validateConfig({
      pools: {
        game: {
          health: { kind: 'udp', intervalMs: 100, timeoutMs: 200, fall: 1, downAfter: 1 },
          members: [
            { id: 'm1', port: m1.port },
            { id: 'm2', port: silent.port },
          ],
        },
      },
      assigner: { port: 0, mode: 'forward', apps: { game: { pool: 'game' } } },
    });
    const usher = await Usher.start(config, { logger });
    closers.push(() => usher.close());
    const summary = () => usher.roles().assigner as ReturnType<Assigner['summary']>;
    assert.equal(summary().mode, 'forward');
    const port = usher.assigner!.address!.port;
    assert.equal(summary().address, `${HOST}:${port}`);

    // The UDP health check takes the silent member out; every client goes to m1.
    await eventually(async () => assert.equal((await usher.registry.get('m2'))?.health, 'down'), 10000);
    assert.equal((await usher.registry.get('m1'))?.health, 'up');
    const client = await peer();
    for (let i = 0; i < 3; i++) await client.send(probe(), port);
    await eventually(() => assert.equal(m1.got.filter((g) => g.message?.kind === 'FORWARD').length, 3));
    assert.equal(silent.got.filter((g) => g.message?.kind === 'FORWARD').length, 0);
    assert.deepEqual(summary().members, { m1: 3 });

    const answer = await usher.reload(
      validateConfig({ ...structuredClone(config), assigner: { ...config.assigner, mode: 'answer' } }),
    );
    assert.equal(answer.ok, true, JSON.stringify(answer));
    assert.equal(summary().mode, 'answer');
    await client.send(probe(), port);
    const res = await client.waitFor(
      (m) => m.kind === 'PROBE_RESPONSE' && m.session !== undefined,
      'PROBE_RESPONSE',
    );
    assert.deepEqual(res.endpoint, { address: HOST, port: m1.port });
    await m1.waitFor((m) => m.kind === 'NOTIFY', 'NOTIFY');

    const moved = await usher.reload(
      validateConfig({
        ...structuredClone(config),
        assigner: { ...config.assigner, mode: 'answer', port: port + 1 },
      }),
    );
    assert.equal(moved.ok, false);
    assert.ok(!moved.ok && moved.issues.some((i) => i.path === 'assigner.port'), JSON.stringify(moved));
    assert.equal(summary().mode, 'answer', 'the running config is kept');
    const { assigner: _gone, ...withoutAssigner } = structuredClone(config);
    const removed = await usher.reload(validateConfig(withoutAssigner));
    assert.ok(!removed.ok && removed.issues.some((i) => i.path === 'assigner'));
  });
});
