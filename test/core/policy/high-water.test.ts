import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../../src/core/hash.js';
import { HighWaterScheduler, type Lease } from '../../../src/core/policy/high-water.js';
import { NoEligibleMemberError, QueueFullError, QueueTimeoutError } from '../../../src/errors.js';
import { SEED, upPool, view } from './support.js';

/** Lets every settled promise run its callbacks. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Starts an acquire and records how it settles; read with `lease()` / `error()`. */
function track(p: Promise<Lease>) {
  let lease: Lease | undefined;
  let error: unknown;
  p.then(
    (l) => {
      lease = l;
    },
    (e) => {
      error = e;
    },
  );
  return { lease: () => lease, error: () => error };
}

describe('high-water scheduler', () => {
  it('fills members up to the mark, then queues; a release hands the room to the queue', async () => {
    const pool = upPool(2);
    const s = new HighWaterScheduler({ highWater: 2, random: seededRandom(1) });
    const leases = await Promise.all([0, 1, 2, 3].map(() => s.acquire(pool, { type: 'static' })));
    assert.deepEqual(leases.map((l) => l.member.id).sort(), ['m0', 'm0', 'm1', 'm1']);
    assert.equal(s.inFlight('m0'), 2);
    const waiting = track(s.acquire(pool, { type: 'static' }));
    await flush();
    assert.equal(waiting.lease(), undefined);
    assert.equal(s.queued, 1);
    const freed = leases.find((l) => l.member.id === 'm1')!;
    freed.release();
    await flush();
    assert.equal(waiting.lease()?.member.id, 'm1');
    assert.equal(s.queued, 0);
    assert.equal(s.inFlight('m1'), 2);
  });

  it('releases queued requests in arrival order (FIFO)', async () => {
    const pool = upPool(1);
    const s = new HighWaterScheduler({ highWater: 1 });
    const first = await s.acquire(pool);
    const order: number[] = [];
    const waiters = [0, 1, 2].map((i) =>
      s.acquire(pool).then((lease) => {
        order.push(i);
        return lease;
      }),
    );
    await flush();
    assert.deepEqual(order, []);
    first.release();
    const l0 = await waiters[0]!;
    l0.release();
    const l1 = await waiters[1]!;
    l1.release();
    await waiters[2];
    assert.deepEqual(order, [0, 1, 2]);
  });

  it('a full queue rejects at once with QueueFullError; maxQueue 0 never waits', async () => {
    const pool = upPool(1);
    const s = new HighWaterScheduler({ highWater: 1, maxQueue: 2 });
    await s.acquire(pool);
    const a = track(s.acquire(pool));
    const b = track(s.acquire(pool));
    await assert.rejects(
      s.acquire(pool),
      (e: unknown) => e instanceof QueueFullError && e.code === 'USHER_ERR_QUEUE_FULL',
    );
    await flush();
    assert.equal(a.error(), undefined);
    assert.equal(b.error(), undefined);
    assert.equal(s.queued, 2);

    const none = new HighWaterScheduler({ highWater: 1, maxQueue: 0 });
    await none.acquire(pool);
    await assert.rejects(none.acquire(pool), QueueFullError);
  });

  it('counts cost by request type against the mark', async () => {
    const pool = upPool(1);
    const s = new HighWaterScheduler({ highWater: 4 });
    const db = await s.acquire(pool, { type: 'database' }); // costs 4: the member is full
    assert.equal(s.inFlight('m0'), 4);
    assert.equal(s.tryAcquire(pool, { type: 'static' }), undefined);
    db.release();
    const statics = [0, 1, 2, 3].map(() => s.tryAcquire(pool, { type: 'static' }));
    assert.ok(statics.every((l) => l !== undefined));
    assert.equal(s.tryAcquire(pool, { type: 'static' }), undefined);
    for (const l of statics) l!.release();
    assert.equal(s.inFlight('m0'), 0);
    const dyn = s.tryAcquire(pool, { type: 'dynamic' });
    const mm = s.tryAcquire(pool, { type: 'multimedia' });
    assert.ok(dyn !== undefined && mm === undefined, 'dynamic 2 + multimedia 3 > 4');
    assert.equal(s.tryAcquire(pool, { cost: 2 })?.cost, 2, 'an explicit cost overrides the type');
  });

  it('takes configured costs, a default cost for unknown types, and lets an oversized request use an idle member', () => {
    const pool = upPool(1);
    const s = new HighWaterScheduler({ highWater: 3, costs: { video: 5, page: 1 }, defaultCost: 2 });
    assert.equal(s.costOf({ type: 'video' }), 5);
    assert.equal(s.costOf({ type: 'page' }), 1);
    assert.equal(s.costOf({ type: 'database' }), 2, 'default costs are replaced, not merged');
    assert.equal(s.costOf({ type: 'toString' }), 2, 'no prototype lookups');
    const video = s.tryAcquire(pool, { type: 'video' });
    assert.equal(video?.member.id, 'm0', 'cost 5 > mark 3, but the member was idle');
    assert.equal(s.tryAcquire(pool, { type: 'page' }), undefined);
    video!.release();
    video!.release(); // idempotent
    assert.equal(s.inFlight('m0'), 0);
    assert.ok(s.tryAcquire(pool, { type: 'page' }) !== undefined);
  });

  it('prefers the freshest member until it is saturated, then the next freshest', () => {
    const pool = [
      view('mirror-old', { labels: { freshness: '10' } }),
      view('origin', { labels: { freshness: '30' } }),
      view('mirror-new', { labels: { freshness: '20' } }),
      view('unknown'),
    ];
    const s = new HighWaterScheduler({ highWater: 2, freshness: 'freshness', random: seededRandom(2) });
    const picks = Array.from({ length: 8 }, () => s.tryAcquire(pool)?.member.id);
    assert.deepEqual(picks, [
      'origin',
      'origin',
      'mirror-new',
      'mirror-new',
      'mirror-old',
      'mirror-old',
      'unknown',
      'unknown',
    ]);
    const byFunction = new HighWaterScheduler({
      highWater: 1,
      freshness: (m) => (m.id === 'unknown' ? 99 : 0),
    });
    assert.equal(byFunction.tryAcquire(pool)?.member.id, 'unknown');
  });

  it('favours a member with fewer requests of the same type in flight', () => {
    const a = view('a');
    const b = view('b');
    const s = new HighWaterScheduler({ highWater: 10, costs: { multimedia: 1, static: 1 } });
    s.tryAcquire([a], { type: 'multimedia' });
    s.tryAcquire([b], { type: 'static' });
    for (let i = 0; i < 10; i++) {
      const lease = s.tryAcquire([a, b], { type: 'multimedia' })!;
      assert.equal(lease.member.id, 'b');
      lease.release();
    }
  });

  it('requests for a busy member wait while requests that can use an idle member go at once', async () => {
    const a = view('a');
    const b = view('b');
    const s = new HighWaterScheduler({ highWater: 1 });
    const holdA = await s.acquire([a]);
    const x = track(s.acquire([a])); // only a will do: waits
    const y = track(s.acquire([a, b])); // b is idle: goes now
    const z = track(s.acquire([a])); // behind x
    await flush();
    assert.equal(x.lease(), undefined);
    assert.equal(y.lease()?.member.id, 'b');
    assert.equal(z.lease(), undefined);
    holdA.release();
    await flush();
    assert.equal(x.lease()?.member.id, 'a', 'first come, first served');
    assert.equal(z.lease(), undefined);
    x.lease()!.release();
    await flush();
    assert.equal(z.lease()?.member.id, 'a');
  });

  it('a waiting request keeps later, smaller requests from jumping ahead on its members', async () => {
    const pool = upPool(1);
    const s = new HighWaterScheduler({ highWater: 4 });
    const held = await s.acquire(pool, { cost: 3 });
    const big = track(s.acquire(pool, { cost: 2 })); // 3 + 2 > 4: waits
    const small = track(s.acquire(pool, { cost: 1 })); // would fit, but big came first
    await flush();
    assert.equal(big.lease(), undefined);
    assert.equal(small.lease(), undefined);
    assert.equal(s.tryAcquire(pool, { cost: 1 }), undefined, 'tryAcquire respects the queue too');
    held.release();
    await flush();
    assert.equal(big.lease()?.cost, 2);
    assert.equal(small.lease()?.cost, 1);
  });

  it('reads a function source again when the queue moves, and reschedule() retries after a pool change', async () => {
    let members = [view('a', { health: 'down' }), view('b')];
    const s = new HighWaterScheduler({ highWater: 1 });
    const hold = await s.acquire(() => members);
    assert.equal(hold.member.id, 'b');
    const waiting = track(s.acquire(() => members));
    await flush();
    assert.equal(waiting.lease(), undefined);
    members = [view('a'), view('b')];
    s.reschedule();
    await flush();
    assert.equal(waiting.lease()?.member.id, 'a');
  });

  it('a queued request whose candidates all went down fails fast when the queue moves', async () => {
    let members = [view('a')];
    const s = new HighWaterScheduler({ highWater: 1 });
    const hold = await s.acquire(() => members);
    const waiting = track(s.acquire(() => members));
    await flush();
    members = [view('a', { health: 'down' })];
    s.reschedule();
    await flush();
    assert.ok(waiting.error() instanceof NoEligibleMemberError);
    assert.equal(s.queued, 0);
    hold.release();
    assert.deepEqual(s.snapshot(), []);
  });

  it('rejects with NoEligibleMemberError when every member is down or draining', async () => {
    const s = new HighWaterScheduler();
    const dead = [view('a', { health: 'down' }), view('b', { health: 'draining' })];
    await assert.rejects(s.acquire(dead), NoEligibleMemberError);
    await assert.rejects(s.acquire([]), { code: 'USHER_ERR_NO_ELIGIBLE_MEMBER' });
    assert.equal(s.tryAcquire(dead), undefined);
  });

  it('times out a queued request (mocked timers) and lets the next one have its place', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const pool = upPool(1);
      const s = new HighWaterScheduler({ highWater: 1, queueTimeoutMs: 500 });
      const hold = await s.acquire(pool);
      const slow = track(s.acquire(pool));
      const patient = track(s.acquire(pool, { timeoutMs: 10_000 }));
      mock.timers.tick(499);
      await flush();
      assert.equal(slow.error(), undefined);
      mock.timers.tick(1);
      await flush();
      assert.ok(slow.error() instanceof QueueTimeoutError);
      assert.equal((slow.error() as QueueTimeoutError).code, 'USHER_ERR_QUEUE_TIMEOUT');
      assert.equal(s.queued, 1);
      hold.release();
      await flush();
      assert.equal(patient.lease()?.member.id, 'm0');
      mock.timers.tick(20_000); // its timer was cleared: nothing happens
      await flush();
      assert.equal(patient.error(), undefined);
    } finally {
      mock.timers.reset();
    }
  });

  it('an aborted wait rejects with the signal reason and leaves the queue', async () => {
    const pool = upPool(1);
    const s = new HighWaterScheduler({ highWater: 1 });
    const hold = await s.acquire(pool);
    const controller = new AbortController();
    const aborted = track(s.acquire(pool, { signal: controller.signal }));
    const next = track(s.acquire(pool));
    controller.abort(new Error('client went away'));
    await flush();
    assert.equal((aborted.error() as Error).message, 'client went away');
    assert.equal(s.queued, 1);
    hold.release();
    await flush();
    assert.equal(next.lease()?.member.id, 'm0');
    await assert.rejects(s.acquire(pool, { signal: AbortSignal.abort(new Error('already')) }), /already/);
  });

  it('validates its options', () => {
    assert.throws(() => new HighWaterScheduler({ highWater: 0 }), { code: 'USHER_ERR_INVALID_ARGUMENT' });
    assert.throws(() => new HighWaterScheduler({ maxQueue: -1 }), /maxQueue/);
    assert.throws(() => new HighWaterScheduler({ costs: { database: -2 } }), /costs\.database/);
    assert.throws(() => new HighWaterScheduler({ queueTimeoutMs: Number.NaN }), /queueTimeoutMs/);
    const s = new HighWaterScheduler();
    assert.throws(() => s.tryAcquire(upPool(1), { cost: 0 }), /cost/);
  });

  it('property: marks hold, nothing waits that could go, FIFO per pool, and everything drains', async () => {
    const opArb = fc.oneof(
      fc.record({
        op: fc.constant('acquire' as const),
        type: fc.constantFrom('database', 'multimedia', 'dynamic', 'static'),
        subset: fc.nat(),
      }),
      fc.record({ op: fc.constant('release' as const), index: fc.nat() }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        fc.nat(),
        async (ops, mark, seed) => {
          const pool = [
            view('a'),
            view('b', { health: 'down' }),
            view('c'),
            view('d', { health: 'draining' }),
            view('e'),
          ];
          const subsets = [pool, [pool[0]!], [pool[2]!, pool[4]!]];
          const s = new HighWaterScheduler({ highWater: mark, maxQueue: 10, random: seededRandom(seed) });
          const held: Lease[] = [];
          const resolvedOrder = new Map<number, number[]>(); // subset -> arrival numbers in resolution order
          let arrivals = 0;
          for (const op of ops) {
            if (op.op === 'acquire') {
              const which = op.subset % subsets.length;
              const n = arrivals++;
              s.acquire(subsets[which]!, { type: op.type }).then(
                (lease) => {
                  held.push(lease);
                  resolvedOrder.set(which, [...(resolvedOrder.get(which) ?? []), n]);
                },
                (e) => assert.ok(e instanceof QueueFullError),
              );
            } else if (held.length > 0) {
              held.splice(op.index % held.length, 1)[0]!.release();
            }
            await flush();
            for (const id of ['a', 'c', 'e']) {
              const { cost = 0, requests = 0 } = s.snapshot().find((x) => x.id === id) ?? {};
              assert.ok(cost <= mark || requests === 1, `${id}: ${cost} in flight over mark ${mark}`);
            }
            for (const id of ['b', 'd'])
              assert.equal(s.inFlight(id), 0, `down/draining member ${id} got work`);
            if (s.queued > 0) assert.ok(held.length > 0, 'requests wait while nothing is in flight');
          }
          for (const order of resolvedOrder.values())
            assert.deepEqual(
              order,
              [...order].sort((x, y) => x - y),
            );
          while (held.length > 0 || s.queued > 0) {
            assert.ok(held.length > 0, 'queue stuck with nothing in flight');
            held.pop()!.release();
            await flush();
          }
          assert.deepEqual(s.snapshot(), []);
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
  });
});
