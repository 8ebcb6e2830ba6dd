/**
 * P0.9 in the assigner: members of the assigner's own site first, another site's member when
 * the local ones are down or full (`overflow`), NO_MEMBER instead for `local-only`. Driven like
 * assigner.test.ts: a real Assigner on loopback, the memory registry, UDP sockets as members.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Metrics } from '../../src/admin/metrics.js';
import { validateConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { emptyLoad, type MemberView, makeMember } from '../../src/core/model.js';
import { createPolicy } from '../../src/core/policy/index.js';
import { ConfigInvalidError } from '../../src/errors.js';
import { Assigner } from '../../src/probe/assigner.js';
import { encode } from '../../src/probe/codec.js';
import { ErrorCode } from '../../src/probe/messages.js';
import { capacity, isFull, majoritySite, place } from '../../src/probe/sites.js';
import { MemoryRegistry } from '../../src/registry/memory.js';
import { createLogger } from '../../src/util/logger.js';
import { eventually } from '../support/wait.js';
import { TestSocket } from './fake-assigner.js';

const logger = createLogger({ level: 'silent', format: 'json' });
const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()!();
});

async function socket(): Promise<TestSocket> {
  const s = await TestSocket.open();
  closers.push(() => s.close());
  return s;
}

interface FakeMember {
  readonly id: string;
  readonly site: string;
  readonly labels?: Record<string, string>;
  readonly weight?: number;
}

interface Setup {
  readonly assigner: Assigner;
  readonly registry: MemoryRegistry;
  readonly metrics: Metrics;
  readonly port: number;
  /** The UDP socket standing in for each member (it records FORWARD / NOTIFY). */
  readonly sockets: Record<string, TestSocket>;
}

type AssignerInput = NonNullable<ConfigInput['assigner']>;

async function start(section: Omit<AssignerInput, 'port'>, members: FakeMember[]): Promise<Setup> {
  const config = validateConfig({
    pools: { game: { health: { kind: 'none' } } },
    assigner: { port: 0, ...section },
  });
  const registry = new MemoryRegistry();
  const sockets: Record<string, TestSocket> = {};
  for (const m of members) {
    const s = await socket();
    sockets[m.id] = s;
    await registry.register(
      makeMember({
        id: m.id,
        pool: 'game',
        site: m.site,
        ports: { main: s.endpoint.port },
        labels: m.labels ?? {},
        weight: m.weight ?? 1,
      }),
    );
  }
  const metrics = new Metrics({ defaultMetrics: false });
  const policy = createPolicy('round-robin');
  const assigner = new Assigner({
    config: config.assigner!,
    registry,
    policyFor: () => policy,
    secret: 'sites-test-secret',
    metrics,
    logger,
  });
  closers.push(async () => {
    await assigner.close();
    await registry.close();
  });
  const { port } = await assigner.start();
  return { assigner, registry, metrics, port, sockets };
}

let nextId = 1;

/**
 * Sends one padded PROBE from `client` and returns where it was placed: the member named in the
 * assigner's PROBE_RESPONSE (answer mode) or the member whose socket got the FORWARD (forward
 * mode), or `error:<code>` for an ERROR answer.
 */
async function placeOnce(setup: Setup, client: TestSocket): Promise<string> {
  const requestId = nextId++;
  await client.send(encode({ kind: 'PROBE', requestId, app: 'game', padTo: 320 }), {
    address: '127.0.0.1',
    port: setup.port,
  });
  return eventually(() => {
    const answer = client.received.find((r) => r.message?.requestId === requestId)?.message;
    if (answer?.kind === 'PROBE_RESPONSE') return answer.member!;
    if (answer?.kind === 'ERROR') return `error:${answer.error?.code}`;
    for (const [id, s] of Object.entries(setup.sockets))
      if (s.received.some((r) => r.message?.kind === 'FORWARD' && r.message.requestId === requestId))
        return id;
    assert.fail(`no answer to request ${requestId} yet`);
  });
}

/** Where `n` probes were placed. */
async function placements(setup: Setup, client: TestSocket, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await placeOnce(setup, client));
  return out;
}

const users = (n: number) => ({ ...emptyLoad(Date.now()), users: n });

async function overflowMetric(metrics: Metrics, from: string, to: string): Promise<number> {
  const text = await metrics.text();
  const m = new RegExp(`usher_probe_overflow_total\\{from="${from}",to="${to}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('probe assigner across sites (P0.9)', () => {
  it('places clients on its own site first, even when another site is idle', async () => {
    const setup = await start({ mode: 'answer', site: 'east', apps: { game: { pool: 'game' } } }, [
      { id: 'e1', site: 'east' },
      { id: 'w1', site: 'west' },
      { id: 'e2', site: 'east' },
    ]);
    const client = await socket();
    const got = await placements(setup, client, 6);
    assert.deepEqual(new Set(got), new Set(['e1', 'e2']), `only east members: ${got.join(' ')}`);
    await setup.sockets.e1!.nextMessage('NOTIFY');
    assert.equal(setup.sockets.w1!.received.length, 0, 'the west member heard nothing');
    assert.deepEqual(setup.assigner.summary().sites, {
      site: 'east',
      overflow: {},
      overflowReasons: { down: 0, full: 0 },
    });

    // A reload that changes the site applies to the next client.
    setup.assigner.reconfigure({ ...setup.assigner.config, site: 'west' });
    assert.deepEqual(await placements(setup, client, 2), ['w1', 'w1']);
    assert.equal(setup.assigner.summary().sites.site, 'west');
  });

  for (const mode of ['answer', 'forward'] as const) {
    it(`${mode} mode: every local member down or draining → the least loaded other site`, async () => {
      const setup = await start({ mode, site: 'east', apps: { game: { pool: 'game' } } }, [
        { id: 'e1', site: 'east' },
        { id: 'e2', site: 'east' },
        { id: 'w1', site: 'west' },
        { id: 'w2', site: 'west' },
        // Capacity 20: 2 users are 10 %, less than west's 30 %.
        { id: 'n1', site: 'north', labels: { capacity: '20' } },
      ]);
      const { registry, sockets, assigner, metrics } = setup;
      await registry.report('w1', users(30));
      await registry.report('w2', users(30));
      await registry.report('n1', users(2));
      await registry.setHealth('e1', 'down', 'test');
      await registry.setHealth('e2', 'draining', 'test');
      const client = await socket();
      assert.equal(await placeOnce(setup, client), 'n1', 'north is the least loaded site');
      if (mode === 'answer') {
        const res = client.received.at(-1)!.message!;
        assert.equal(res.site, 'north');
        assert.deepEqual(res.endpoint, sockets.n1!.endpoint);
        const note = await sockets.n1!.nextMessage('NOTIFY');
        assert.deepEqual(note.session, res.session);
      } else {
        const fwd = await sockets.n1!.nextMessage('FORWARD');
        assert.deepEqual(fwd.endpoint, client.endpoint, 'the remote member is told the client endpoint');
      }
      const s = assigner.summary();
      assert.deepEqual(s.sites.overflow, { 'east->north': 1 });
      assert.deepEqual(s.sites.overflowReasons, { down: 1, full: 0 });
      assert.equal(s.members.n1, 1, 'an assignment too');
      assert.equal(await overflowMetric(metrics, 'east', 'north'), 1);

      // Once north is the busier site, west takes the overflow.
      await registry.report('n1', users(19));
      await eventually(async () => assert.match(await placeOnce(setup, client), /^w[12]$/, 'west'));

      // A local member back up: the next client stays home.
      await registry.setHealth('e1', 'up', 'test');
      await eventually(async () => assert.equal(await placeOnce(setup, client), 'e1', 'back to east'));
    });
  }

  it('overflows when the local members are full by their load reports, and comes back when they are not', async () => {
    const setup = await start(
      { mode: 'answer', site: 'east', apps: { game: { pool: 'game', overflowAt: 0.8 } } },
      [
        { id: 'e1', site: 'east', labels: { capacity: '10' } },
        // No capacity label: weight 2 × 100 = 200 users.
        { id: 'e2', site: 'east', weight: 2 },
        { id: 'w1', site: 'west' },
      ],
    );
    const { registry, assigner } = setup;
    const client = await socket();
    await registry.report('e1', users(8)); // 80 % of 10: full
    await registry.report('e2', users(160)); // 80 % of 200: full
    await eventually(async () => assert.equal(await placeOnce(setup, client), 'w1', 'east is full'));
    assert.ok(assigner.summary().sites.overflowReasons.full >= 1);
    assert.ok((assigner.summary().sites.overflow['east->west'] ?? 0) >= 1);

    await registry.report('e2', users(159)); // just below
    await eventually(async () => assert.equal(await placeOnce(setup, client), 'e2', 'e2 has room again'));

    // Every site full: nobody is placed rather than overloading a member.
    await registry.report('e2', users(200));
    await registry.report('w1', users(80));
    await eventually(async () =>
      assert.equal(await placeOnce(setup, client), `error:${ErrorCode.NO_MEMBER}`, 'all full'),
    );
  });

  it('local-only answers NO_MEMBER instead of placing the client on another site', async () => {
    const setup = await start(
      {
        mode: 'answer',
        site: 'east',
        apps: { game: { pool: 'game', overflow: 'local-only', overflowAt: 0.5 } },
      },
      [
        { id: 'e1', site: 'east' },
        { id: 'w1', site: 'west' },
      ],
    );
    const { registry, assigner, sockets } = setup;
    const client = await socket();
    const noMember = `error:${ErrorCode.NO_MEMBER}`;
    assert.equal(await placeOnce(setup, client), 'e1');
    await registry.report('e1', users(50)); // full at 50 %
    await eventually(async () => assert.equal(await placeOnce(setup, client), noMember, 'full'));
    await registry.report('e1', users(0));
    await registry.setHealth('e1', 'down', 'test');
    await eventually(async () => assert.equal(await placeOnce(setup, client), noMember, 'down'));
    assert.equal(sockets.w1!.received.length, 0, 'the west member was never told of a client');
    assert.deepEqual(assigner.summary().sites.overflow, {});
    assert.ok((assigner.summary().errors.NO_MEMBER ?? 0) >= 2);
  });

  it('without assigner.site, the site most pool members have is the local one', async () => {
    const setup = await start({ mode: 'answer', apps: { game: { pool: 'game' } } }, [
      { id: 'e1', site: 'east' },
      { id: 'w1', site: 'west' },
      { id: 'w2', site: 'west' },
    ]);
    const client = await socket();
    const got = await placements(setup, client, 4);
    assert.deepEqual(new Set(got), new Set(['w1', 'w2']), got.join(' '));
    assert.equal(setup.assigner.summary().sites.site, null);
  });

  it('the config keys are validated', () => {
    const cfg = validateConfig({
      pools: { game: {} },
      assigner: { site: 'east', apps: { game: { pool: 'game' } } },
    });
    assert.equal(cfg.assigner?.site, 'east');
    assert.equal(cfg.assigner?.apps.game?.overflow, 'overflow', 'overflow by default');
    assert.equal(cfg.assigner?.apps.game?.overflowAt, undefined, 'never full by load by default');
    const bad: [unknown, string][] = [
      [{ overflowAt: 0 }, 'assigner.apps.game.overflowAt'],
      [{ overflowAt: 1.5 }, 'assigner.apps.game.overflowAt'],
      [{ overflow: 'spill' }, 'assigner.apps.game.overflow'],
    ];
    for (const [extra, path] of bad)
      assert.throws(
        () =>
          validateConfig({
            pools: { game: {} },
            assigner: { apps: { game: { pool: 'game', ...(extra as object) } } },
          }),
        (e: unknown) => e instanceof ConfigInvalidError && e.issues.some((i) => i.path === path),
        path,
      );
    assert.throws(
      () => validateConfig({ pools: { game: {} }, assigner: { site: 'two words' } }),
      (e: unknown) => e instanceof ConfigInvalidError && e.issues.some((i) => i.path === 'assigner.site'),
    );
  });
});

describe('site placement (pure)', () => {
  const view = (
    id: string,
    site: string,
    extra: Partial<MemberView> & { labels?: Record<string, string> } = {},
  ) => {
    const { labels, ...rest } = extra;
    return { member: makeMember({ id, site, labels: labels ?? {} }), health: 'up' as const, ...rest };
  };
  const first = (members: readonly MemberView[]) => members[0]?.member;

  it('majority site: most members, ties by name, `local` for none', () => {
    assert.equal(majoritySite([]), 'local');
    assert.equal(majoritySite([view('a', 'west'), view('b', 'east'), view('c', 'west')]), 'west');
    assert.equal(majoritySite([view('a', 'west'), view('b', 'east')]), 'east');
  });

  it('capacity: the label when it is a number > 0, else weight × 100; full at overflowAt', () => {
    assert.equal(capacity(makeMember({ id: 'a', labels: { capacity: '25' } })), 25);
    assert.equal(capacity(makeMember({ id: 'a', labels: { capacity: 'lots' } })), 100);
    assert.equal(capacity(makeMember({ id: 'a', labels: { capacity: '0' } })), 100);
    assert.equal(capacity(makeMember({ id: 'a', weight: 3 })), 300);
    const v = { ...view('a', 'x'), load: users(50) };
    assert.equal(isFull(v, undefined), false);
    assert.equal(isFull(v, 0.5), true);
    assert.equal(isFull(v, 0.51), false);
  });

  it('suspect local members are still local; a suspect remote one only when no remote one is up', () => {
    const overflow = { overflow: 'overflow' } as const;
    const suspect = [view('e1', 'east', { health: 'suspect' }), view('w1', 'west')];
    assert.deepEqual(place(suspect, suspect, 'east', overflow, first), {
      member: suspect[0]!.member,
      site: 'east',
    });
    const down = [
      view('e1', 'east', { health: 'down' }),
      view('w1', 'west', { health: 'suspect' }),
      view('n1', 'north', { health: 'suspect' }),
    ];
    const p = place(down, down, 'east', overflow, first);
    assert.equal(p.member?.id, 'n1', 'both suspect: the first site by name at equal load');
    assert.equal(p.overflow, 'down');
    const up = [...down, view('w2', 'west')];
    assert.equal(place(up, up, 'east', overflow, first).member?.id, 'w2', 'an up remote member first');
    assert.equal(place(up, up, 'east', { overflow: 'local-only' }, first).member, undefined);
  });
});
