/**
 * The Registry contract: every promise of `src/registry/registry.ts`, as one node:test suite
 * that each implementation runs unchanged (memory, mesh, etcd).
 *
 * Written for implementations that may be asynchronous and eventually consistent:
 * - events are awaited ("until it arrives, with a deadline"), never assumed delivered on return;
 * - reads that should reflect a change are polled until they do, with a deadline;
 * - the absence of an event is proven with a fence: a later change (an assignment under
 *   `contract/fence/`) whose event must arrive after any event of the earlier change, since
 *   events are delivered in revision order;
 * - lease tests compare against a control member with the same TTL instead of timing anything.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { type HealthState, type LoadReport, type Member, makeMember } from '../../src/core/model.js';
import type { Registry, RegistryEvent } from '../../src/registry/registry.js';

export interface RegistryContractOptions {
  /** How long to wait for an event to arrive or a change to become visible. Default 2000 ms. */
  readonly timeoutMs?: number;
  /** Lease TTL used by the lease tests. Default 200 ms. */
  readonly leaseTtlMs?: number;
  /** How long to wait for a lease to expire. Default `leaseTtlMs * 5 + timeoutMs`. */
  readonly leaseTimeoutMs?: number;
  /** Pause between two reads while polling for a change to become visible. Default 10 ms. */
  readonly pollMs?: number;
}

export type RegistryFactory = () => Promise<{ registry: Registry; cleanup(): Promise<void> }>;

type EventOf<T extends RegistryEvent['type']> = Extract<RegistryEvent, { type: T }>;

const FENCE_PREFIX = 'contract/fence/';

interface Waiter {
  since: number;
  match: (event: RegistryEvent) => boolean;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Records what one watcher receives and lets a test wait for an event with a deadline. */
class EventLog {
  readonly events: RegistryEvent[] = [];
  readonly #waiters = new Set<Waiter>();
  readonly #timeoutMs: number;
  #unwatch: (() => void) | undefined;

  constructor(registry: Registry, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#unwatch = registry.watch((event) => this.#push(event));
  }

  #push(event: RegistryEvent): void {
    const index = this.events.length;
    this.events.push(event);
    for (const w of [...this.#waiters]) {
      if (index >= w.since && w.match(event)) {
        this.#waiters.delete(w);
        clearTimeout(w.timer);
        w.resolve(index);
      }
    }
  }

  /** Position of the next event; pass it as `since` to look only at later events. */
  mark(): number {
    return this.events.length;
  }

  /** Index of the first event at or after `since` that matches, waiting for it with a deadline. */
  waitIndex(
    match: (e: RegistryEvent) => boolean,
    what: string,
    since = 0,
    timeoutMs?: number,
  ): Promise<number> {
    for (let i = since; i < this.events.length; i++) if (match(this.events[i]!)) return Promise.resolve(i);
    const ms = timeoutMs ?? this.#timeoutMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        since,
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          const seen = this.events.slice(since).map(describeEvent).join(', ') || 'none';
          reject(new assert.AssertionError({ message: `no ${what} within ${ms} ms; events seen: ${seen}` }));
        }, ms),
      };
      this.#waiters.add(waiter);
    });
  }

  async waitFor<T extends RegistryEvent['type']>(
    type: T,
    match: (e: EventOf<T>) => boolean,
    what: string,
    options: { since?: number; timeoutMs?: number } = {},
  ): Promise<EventOf<T>> {
    const index = await this.waitIndex(
      (e) => e.type === type && match(e as EventOf<T>),
      what,
      options.since,
      options.timeoutMs,
    );
    return this.events[index] as EventOf<T>;
  }

  /** Stops watching (idempotent) and rejects nothing: pending waits are simply dropped. */
  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Stops watching and clears every pending deadline (so a failed test leaves no timer). */
  dispose(): void {
    this.stop();
    for (const w of this.#waiters) clearTimeout(w.timer);
    this.#waiters.clear();
  }
}

function describeEvent(e: RegistryEvent): string {
  switch (e.type) {
    case 'member-added':
    case 'member-updated':
      return `${e.type}(${e.member.id})@${e.revision}`;
    case 'member-removed':
      return `${e.type}(${e.id}, ${e.reason})@${e.revision}`;
    case 'load':
      return `load(${e.id})@${e.revision}`;
    case 'health':
      return `health(${e.id}, ${e.previous}->${e.health})@${e.revision}`;
    case 'assignment-set':
      return `assignment-set(${e.assignment.key})@${e.revision}`;
    case 'assignment-deleted':
      return `assignment-deleted(${e.key})@${e.revision}`;
  }
}

function isFence(e: RegistryEvent): boolean {
  return e.type === 'assignment-set' && e.assignment.key.startsWith(FENCE_PREFIX);
}

function load(partial: Partial<LoadReport> = {}): LoadReport {
  return {
    users: 1,
    connections: 2,
    inFlight: 3,
    cpu: 0.25,
    custom: { fps: 60 },
    timestamp: 1_000,
    ...partial,
  };
}

function member(id: string, partial: Partial<Member> = {}): Member {
  return makeMember({
    id,
    pool: 'web',
    addresses: ['127.0.0.1', '::1'],
    ports: { main: 8080, health: 8081 },
    labels: { zone: 'a' },
    ...partial,
  });
}

/** Runs `fn` (which mutates something) and ignores the TypeError a frozen object throws. */
function tryMutate(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
}

async function assertRejectsWithCode(promise: Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.equal((error as { code?: unknown }).code, code, `${what}: expected code ${code}`);
    return true;
  });
}

export function registryContract(
  name: string,
  factory: RegistryFactory,
  options: RegistryContractOptions = {},
): void {
  const timeoutMs = options.timeoutMs ?? 2_000;
  const leaseTtlMs = options.leaseTtlMs ?? 200;
  const leaseTimeoutMs = options.leaseTimeoutMs ?? leaseTtlMs * 5 + timeoutMs;
  const pollMs = options.pollMs ?? 10;

  describe(`Registry contract: ${name}`, () => {
    let registry: Registry;
    let cleanup: () => Promise<void>;
    let logs: EventLog[] = [];
    let fences = 0;

    beforeEach(async () => {
      const made = await factory();
      registry = made.registry;
      cleanup = made.cleanup;
      logs = [];
      fences = 0;
    });

    afterEach(async () => {
      for (const log of logs) log.dispose();
      await cleanup();
    });

    function watchLog(): EventLog {
      const log = new EventLog(registry, timeoutMs);
      logs.push(log);
      return log;
    }

    /** Makes a change and waits for its event: every event of earlier changes precedes it in `log`. */
    async function fence(log: EventLog): Promise<number> {
      fences += 1;
      const key = `${FENCE_PREFIX}${fences}`;
      await registry.assign(key, fences);
      return log.waitIndex((e) => e.type === 'assignment-set' && e.assignment.key === key, `fence ${key}`);
    }

    /** Retries `check` until it stops throwing, or throws its last error at the deadline. */
    async function eventually<T>(check: () => Promise<T>, ms = timeoutMs): Promise<T> {
      const deadline = Date.now() + ms;
      for (;;) {
        try {
          return await check();
        } catch (error) {
          if (Date.now() >= deadline) throw error;
        }
        await delay(pollMs);
      }
    }

    async function healthOf(id: string): Promise<HealthState | undefined> {
      return (await registry.get(id))?.health;
    }

    describe('members', () => {
      it('register adds a member, up by default, and emits member-added', async () => {
        const log = watchLog();
        const m = member('m1');
        await registry.register(m);
        const event = await log.waitFor('member-added', (e) => e.member.id === 'm1', 'member-added(m1)');
        assert.deepEqual(event.member, m);
        assert.equal(typeof event.revision, 'number');
        const view = await eventually(async () => {
          const v = await registry.get('m1');
          assert.ok(v, 'm1 visible');
          return v;
        });
        assert.deepEqual(view.member, m);
        assert.equal(view.health, 'up');
        assert.equal(view.load, undefined);
        assert.equal(await registry.get('nobody'), undefined);
      });

      it('register honours the initial health option', async () => {
        await registry.register(member('m1'), { health: 'down' });
        await registry.register(member('m2'), { health: 'draining' });
        await eventually(async () => {
          assert.equal(await healthOf('m1'), 'down');
          assert.equal(await healthOf('m2'), 'draining');
        });
      });

      it('register again replaces the definition, keeps health and load, emits member-updated', async () => {
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.report('m1', load({ users: 9 }));
        await registry.setHealth('m1', 'suspect', 'probe slow');
        const changed = member('m1', { weight: 5, labels: { zone: 'b' }, ports: { main: 9090 } });
        await registry.register(changed);
        const event = await log.waitFor('member-updated', (e) => e.member.id === 'm1', 'member-updated(m1)');
        assert.deepEqual(event.member, changed);
        await eventually(async () => {
          const v = await registry.get('m1');
          assert.deepEqual(v?.member, changed);
          assert.equal(v?.health, 'suspect');
          assert.equal(v?.load?.users, 9);
        });
        const snap = await registry.snapshot();
        assert.equal(snap.members.filter((v) => v.member.id === 'm1').length, 1, 'one entry per id');
      });

      it('deregister removes the member with the reason given; an unknown id is a no-op without event', async () => {
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.register(member('m2'));
        await registry.deregister('m1', 'scaled-in');
        const removed = await log.waitFor('member-removed', (e) => e.id === 'm1', 'member-removed(m1)');
        assert.equal(removed.reason, 'scaled-in');
        await eventually(async () => assert.equal(await registry.get('m1'), undefined));
        assert.ok(await registry.get('m2'), 'other members stay');

        await registry.deregister('m2');
        const removed2 = await log.waitFor('member-removed', (e) => e.id === 'm2', 'member-removed(m2)');
        assert.equal(typeof removed2.reason, 'string');

        const mark = log.mark();
        await registry.deregister('never-registered');
        await registry.deregister('m1');
        const end = await fence(log);
        const extra = log.events.slice(mark, end).filter((e) => !isFence(e));
        assert.deepEqual(extra.map(describeEvent), [], 'no event for removing unknown ids');
      });

      it('revisions strictly increase across every kind of change; each event arrives once', async () => {
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.register(member('m1', { weight: 2 }));
        await registry.report('m1', load());
        await registry.setHealth('m1', 'down', 'check failed');
        await registry.assign('k', { a: 1 });
        await registry.unassign('k');
        await registry.deregister('m1', 'bye');
        await log.waitFor('member-removed', (e) => e.id === 'm1', 'member-removed(m1)');
        assert.deepEqual(
          log.events.map((e) => e.type),
          [
            'member-added',
            'member-updated',
            'load',
            'health',
            'assignment-set',
            'assignment-deleted',
            'member-removed',
          ],
        );
        const revisions = log.events.map((e) => e.revision);
        for (let i = 1; i < revisions.length; i++) {
          assert.ok(
            revisions[i]! > revisions[i - 1]!,
            `revisions strictly increase: ${revisions.join(', ')}`,
          );
        }
        const last = revisions.at(-1)!;
        await eventually(async () =>
          assert.ok((await registry.snapshot()).revision >= last, 'snapshot caught up'),
        );
      });
    });

    describe('load and health', () => {
      it('report stores the latest load report and emits load', async () => {
        const log = watchLog();
        await registry.register(member('m1'));
        const first = load({ users: 1, timestamp: 1 });
        const second = load({ users: 2, cpu: 0.5, custom: { queue_depth: 4 }, timestamp: 2 });
        await registry.report('m1', first);
        await registry.report('m1', second);
        const e1 = await log.waitFor('load', (e) => e.id === 'm1', 'first load(m1)');
        assert.deepEqual(e1.load, first);
        const e2 = await log.waitFor(
          'load',
          (e) => e.id === 'm1' && e.revision > e1.revision,
          'second load(m1)',
        );
        assert.deepEqual(e2.load, second);
        await eventually(async () => assert.deepEqual((await registry.get('m1'))?.load, second));
      });

      it('setHealth emits health with the previous state and reason; no event when unchanged', async () => {
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.setHealth('m1', 'down', 'tcp refused');
        const down = await log.waitFor('health', (e) => e.id === 'm1', 'health(m1)');
        assert.equal(down.health, 'down');
        assert.equal(down.previous, 'up');
        assert.equal(down.reason, 'tcp refused');
        await eventually(async () => assert.equal(await healthOf('m1'), 'down'));

        const mark = log.mark();
        await registry.setHealth('m1', 'down', 'still refused');
        const end = await fence(log);
        assert.deepEqual(
          log.events
            .slice(mark, end)
            .filter((e) => e.type === 'health')
            .map(describeEvent),
          [],
          'no health event when the state does not change',
        );

        await registry.setHealth('m1', 'draining', 'operator');
        const drained = await log.waitFor('health', (e) => e.id === 'm1', 'health(m1) to draining', {
          since: mark,
        });
        assert.equal(drained.previous, 'down');
        assert.equal(drained.health, 'draining');
        assert.equal(drained.reason, 'operator');
      });

      it('report, setHealth and keepAlive reject unknown ids with NotFoundError', async () => {
        const code = 'USHER_ERR_NOT_FOUND';
        await assertRejectsWithCode(registry.report('ghost', load()), code, 'report');
        await assertRejectsWithCode(registry.setHealth('ghost', 'down', 'x'), code, 'setHealth');
        await assertRejectsWithCode(registry.keepAlive('ghost'), code, 'keepAlive');

        const log = watchLog();
        await registry.register(member('gone'));
        await registry.deregister('gone');
        await log.waitFor('member-removed', (e) => e.id === 'gone', 'member-removed(gone)');
        await eventually(async () => {
          await assertRejectsWithCode(registry.report('gone', load()), code, 'report after deregister');
          await assertRejectsWithCode(
            registry.setHealth('gone', 'down', 'x'),
            code,
            'setHealth after deregister',
          );
          await assertRejectsWithCode(registry.keepAlive('gone'), code, 'keepAlive after deregister');
        });
        assert.equal(await registry.get('ghost'), undefined);
      });
    });

    describe('assignments', () => {
      it('assign creates then replaces, unassign deletes, an unknown key is a no-op without event', async () => {
        const log = watchLog();
        const before = Date.now();
        await registry.assign('gateway/site/shop', { frontends: ['a', 'b'] });
        const set1 = await log.waitFor(
          'assignment-set',
          (e) => e.assignment.key === 'gateway/site/shop',
          'set',
        );
        assert.deepEqual(set1.assignment.value, { frontends: ['a', 'b'] });
        assert.equal(typeof set1.assignment.updatedAt, 'number');
        assert.ok(set1.assignment.updatedAt >= before - 60_000, 'updatedAt is a time in ms since the epoch');

        await registry.assign('gateway/site/shop', { frontends: ['c'] });
        await registry.assign('cluster/ranges/m1', [1, 2, 3]);
        const set2 = await log.waitFor(
          'assignment-set',
          (e) => e.assignment.key === 'gateway/site/shop' && e.revision > set1.revision,
          'replacing set',
        );
        assert.deepEqual(set2.assignment.value, { frontends: ['c'] });
        await eventually(async () => {
          const own = (await registry.snapshot()).assignments.filter((a) => !a.key.startsWith(FENCE_PREFIX));
          assert.deepEqual(
            own.map((a) => [a.key, a.value]).sort(),
            [
              ['cluster/ranges/m1', [1, 2, 3]],
              ['gateway/site/shop', { frontends: ['c'] }],
            ].sort(),
          );
        });

        await registry.unassign('gateway/site/shop');
        const deleted = await log.waitFor(
          'assignment-deleted',
          (e) => e.key === 'gateway/site/shop',
          'deleted',
        );
        assert.ok(deleted.revision > set2.revision);
        await eventually(async () => {
          const keys = (await registry.snapshot()).assignments.map((a) => a.key);
          assert.ok(!keys.includes('gateway/site/shop'), 'deleted key is gone');
          assert.ok(keys.includes('cluster/ranges/m1'), 'other key stays');
        });

        const mark = log.mark();
        await registry.unassign('gateway/site/shop');
        await registry.unassign('never/set');
        const end = await fence(log);
        assert.deepEqual(log.events.slice(mark, end).map(describeEvent), [], 'no event for unknown keys');
      });
    });

    describe('snapshot', () => {
      it('is a consistent copy that later changes do not alter', async () => {
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.register(member('m2'));
        await registry.report('m1', load({ users: 5 }));
        await registry.assign('k', { v: 1 });
        await log.waitFor('assignment-set', (e) => e.assignment.key === 'k', 'assignment-set(k)');
        const snap = await eventually(async () => {
          const s = await registry.snapshot();
          assert.deepEqual(s.members.map((v) => v.member.id).sort(), ['m1', 'm2']);
          assert.equal(s.members.find((v) => v.member.id === 'm1')?.load?.users, 5);
          assert.ok(s.assignments.some((a) => a.key === 'k'));
          return s;
        });
        const copy = structuredClone(snap);

        await registry.register(member('m1', { weight: 7 }));
        await registry.report('m1', load({ users: 6 }));
        await registry.setHealth('m2', 'down', 'x');
        await registry.deregister('m2');
        await registry.register(member('m3'));
        await registry.assign('k', { v: 2 });
        await registry.unassign('k');
        await log.waitFor('assignment-deleted', (e) => e.key === 'k', 'assignment-deleted(k)');
        await eventually(async () => assert.ok((await registry.get('m3')) !== undefined));

        assert.deepEqual(snap, copy, 'an earlier snapshot does not change');
        const now = await registry.snapshot();
        assert.ok(now.revision > snap.revision, 'revision moved on');
        assert.deepEqual(now.members.map((v) => v.member.id).sort(), ['m1', 'm3']);
      });

      it('mutating inputs or returned objects does not change the registry', async () => {
        const log = watchLog();
        const input = member('m1');
        const report = load({ custom: { fps: 30 } });
        const value = { list: [1, 2], nested: { x: 1 } };
        await registry.register(input);
        await registry.report('m1', report);
        await registry.assign('k', value);
        await log.waitFor('assignment-set', (e) => e.assignment.key === 'k', 'assignment-set(k)');
        const expectedMember = structuredClone(input);
        const expectedLoad = structuredClone(report);
        const expectedValue = structuredClone(value);

        // Inputs, after the calls returned.
        tryMutate(() => ((input as { weight: number }).weight = 99));
        tryMutate(() => ((input.labels as Record<string, string>).zone = 'z'));
        tryMutate(() => (input.addresses as string[]).push('10.0.0.9'));
        tryMutate(() => ((input.ports as Record<string, number>).main = 1));
        tryMutate(() => ((report.custom as Record<string, number>).fps = 0));
        value.list.push(3);
        value.nested.x = 2;

        // Returned objects: get, snapshot and event payloads.
        const view = await eventually(async () => {
          const v = await registry.get('m1');
          assert.ok(v?.load);
          return v;
        });
        tryMutate(() => ((view as { health: string }).health = 'down'));
        tryMutate(() => ((view.member as { weight: number }).weight = 42));
        tryMutate(() => ((view.member.labels as Record<string, string>).zone = 'q'));
        tryMutate(() => ((view.load as { users: number }).users = 1234));
        tryMutate(() => ((view.load!.custom as Record<string, number>).fps = -1));
        const snap = await registry.snapshot();
        tryMutate(() => (snap.members as unknown[]).splice(0));
        tryMutate(() => (snap.assignments as unknown[]).splice(0));
        const own = (await registry.snapshot()).assignments.find((a) => a.key === 'k');
        assert.ok(own);
        tryMutate(() => ((own.value as { list: number[] }).list as number[]).push(4));
        tryMutate(() => ((own.value as { nested: { x: number } }).nested.x = 5));
        tryMutate(() => ((own as { key: string }).key = 'other'));
        for (const e of log.events) {
          if (e.type === 'member-added')
            tryMutate(() => ((e.member.ports as Record<string, number>).main = 2));
          if (e.type === 'assignment-set')
            tryMutate(() => ((e.assignment.value as { list: number[] }).list = []));
        }

        const fresh = await registry.get('m1');
        assert.deepEqual(fresh?.member, expectedMember);
        assert.equal(fresh?.health, 'up');
        assert.deepEqual(fresh?.load, expectedLoad);
        const after = await registry.snapshot();
        assert.deepEqual(
          after.members.map((v) => v.member.id),
          ['m1'],
        );
        const k = after.assignments.find((a) => a.key === 'k');
        assert.deepEqual(k?.value, expectedValue);
      });
    });

    describe('watch', () => {
      it('every watcher sees the same events in order; unsubscribing stops delivery', async () => {
        const a = watchLog();
        const b = watchLog();
        await registry.register(member('m1'));
        await registry.setHealth('m1', 'suspect', 'x');
        await b.waitFor('health', (e) => e.id === 'm1', 'health(m1) on b');
        await a.waitFor('health', (e) => e.id === 'm1', 'health(m1) on a');
        assert.deepEqual(a.events.map(describeEvent), b.events.map(describeEvent));

        a.stop();
        a.stop(); // unsubscribing twice is harmless
        const seenByA = a.events.length;
        await registry.report('m1', load());
        await registry.deregister('m1');
        await fence(b);
        assert.ok(
          b.events.some((e) => e.type === 'member-removed'),
          'the remaining watcher still receives events',
        );
        assert.equal(a.events.length, seenByA, 'no event after unsubscribe');
      });

      it('a listener that throws breaks neither delivery to others nor the registry', async () => {
        registry.watch(() => {
          throw new Error('listener bug');
        });
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.report('m1', load());
        await registry.setHealth('m1', 'down', 'x');
        await log.waitFor('health', (e) => e.id === 'm1', 'health(m1)');
        assert.deepEqual(
          log.events.map((e) => e.type),
          ['member-added', 'load', 'health'],
        );
        await eventually(async () => assert.equal(await healthOf('m1'), 'down'));
        assert.equal((await registry.snapshot()).members.length, 1);
      });

      it('a listener that changes the registry from its callback does not reorder events for others', async () => {
        const seenByReactor: number[] = [];
        registry.watch((e) => {
          seenByReactor.push(e.revision);
          if (e.type === 'member-added')
            void registry.setHealth(e.member.id, 'suspect', 'reactor').catch(() => {});
        });
        const log = watchLog();
        await registry.register(member('m1'));
        await registry.register(member('m2'));
        await log.waitFor('health', (e) => e.id === 'm2', 'health(m2) set by the reactor');
        await log.waitFor('health', (e) => e.id === 'm1', 'health(m1) set by the reactor');
        for (const revisions of [log.events.map((e) => e.revision), seenByReactor]) {
          for (let i = 1; i < revisions.length; i++) {
            assert.ok(
              revisions[i]! > revisions[i - 1]!,
              `delivered in revision order: ${revisions.join(', ')}`,
            );
          }
        }
        assert.equal(new Set(log.events.map((e) => e.revision)).size, log.events.length, 'each event once');
      });
    });

    describe('leases', () => {
      it('a lease not kept alive expires: member-removed with reason lease-expired', async () => {
        const log = watchLog();
        await registry.register(member('m1'), { ttlMs: leaseTtlMs });
        const removed = await log.waitFor('member-removed', (e) => e.id === 'm1', 'lease expiry of m1', {
          timeoutMs: leaseTimeoutMs,
        });
        assert.equal(removed.reason, 'lease-expired');
        await eventually(async () => assert.equal(await registry.get('m1'), undefined));
        await assertRejectsWithCode(
          registry.keepAlive('m1'),
          'USHER_ERR_NOT_FOUND',
          'keepAlive after expiry',
        );
      });

      it('keepAlive renews the lease; a member without a lease never expires', async () => {
        const log = watchLog();
        // `kept` is registered first, so without renewal it would expire before `control` does.
        await registry.register(member('kept'), { ttlMs: leaseTtlMs });
        await registry.register(member('forever'));
        await registry.register(member('control'), { ttlMs: leaseTtlMs });
        let renewals = 0;
        const renew = setInterval(
          () => {
            renewals += 1;
            registry.keepAlive('kept').catch(() => {});
          },
          Math.max(1, Math.floor(leaseTtlMs / 5)),
        );
        try {
          const expired = await log.waitFor(
            'member-removed',
            (e) => e.id === 'control',
            'expiry of control',
            {
              timeoutMs: leaseTimeoutMs,
            },
          );
          assert.equal(expired.reason, 'lease-expired');
          assert.ok(renewals > 0);
          assert.deepEqual(
            log.events.filter((e) => e.type === 'member-removed' && e.id !== 'control').map(describeEvent),
            [],
            'the renewed member and the member without lease are still there',
          );
          assert.ok(await registry.get('kept'));
          assert.ok(await registry.get('forever'));
        } finally {
          clearInterval(renew);
        }
        const removed = await log.waitFor(
          'member-removed',
          (e) => e.id === 'kept',
          'expiry of kept once renewal stops',
          {
            timeoutMs: leaseTimeoutMs,
          },
        );
        assert.equal(removed.reason, 'lease-expired');
        assert.ok(await registry.get('forever'), 'a member without lease stays');
      });
    });

    describe('close', () => {
      it('after close every call rejects and close is idempotent', async () => {
        await registry.register(member('m1'));
        await registry.close();
        const code = 'USHER_ERR_REGISTRY';
        await assertRejectsWithCode(registry.register(member('m2')), code, 'register');
        await assertRejectsWithCode(registry.keepAlive('m1'), code, 'keepAlive');
        await assertRejectsWithCode(registry.deregister('m1'), code, 'deregister');
        await assertRejectsWithCode(registry.report('m1', load()), code, 'report');
        await assertRejectsWithCode(registry.setHealth('m1', 'down', 'x'), code, 'setHealth');
        await assertRejectsWithCode(registry.assign('k', 1), code, 'assign');
        await assertRejectsWithCode(registry.unassign('k'), code, 'unassign');
        await assertRejectsWithCode(registry.get('m1'), code, 'get');
        await assertRejectsWithCode(registry.snapshot(), code, 'snapshot');
        assert.throws(
          () => registry.watch(() => {}),
          (error: unknown) => (error as { code?: unknown }).code === code,
          'watch throws',
        );
        await registry.close();
      });
    });
  });
}
