import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hashToSpace, seededRandom } from '../../../src/core/hash.js';
import {
  computeRanges,
  DEFAULT_RANGE_BUCKETS,
  type MemberRange,
  ownerOf,
  type RangeAllocation,
  type RangeMember,
  RangesPolicy,
} from '../../../src/core/policy/ranges.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { SEED, view } from './support.js';

/** 1..maxLength members with unique ids and capacities 0.1..100. */
function membersArb(maxLength = 16): fc.Arbitrary<RangeMember[]> {
  return fc.uniqueArray(
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 6 }),
      capacity: fc.double({ min: 0.1, max: 100, noNaN: true }),
    }),
    { selector: (m) => m.id, minLength: 1, maxLength },
  );
}

/** Owner of every value of the space, by index from `lo`. */
function owners(allocation: RangeAllocation): string[] {
  const out: string[] = [];
  for (const r of allocation.ranges) for (let v = r.lo; v <= r.hi; v++) out.push(r.memberId);
  return out;
}

function assertCovers(ranges: readonly MemberRange[], lo: number, hi: number): void {
  assert.ok(ranges.length > 0);
  assert.equal(ranges[0]!.lo, lo);
  assert.equal(ranges.at(-1)!.hi, hi);
  for (let i = 0; i < ranges.length; i++) {
    assert.ok(ranges[i]!.lo <= ranges[i]!.hi, 'empty range');
    if (i > 0) {
      assert.equal(ranges[i]!.lo, ranges[i - 1]!.hi + 1, 'gap or overlap');
      assert.notEqual(
        ranges[i]!.memberId,
        ranges[i - 1]!.memberId,
        'adjacent ranges of one member not merged',
      );
    }
  }
}

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const random = seededRandom(seed);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('ranges: computeRanges', () => {
  it('gives sorted, non-overlapping ranges that cover the whole space', () => {
    const spaceArb = fc
      .record({ lo: fc.integer({ min: -1e6, max: 1e6 }), size: fc.integer({ min: 1, max: 50_000 }) })
      .map(({ lo, size }) => ({ lo, hi: lo + size - 1 }));
    fc.assert(
      fc.property(membersArb(), spaceArb, fc.integer({ min: 1, max: 5000 }), (members, space, buckets) => {
        const a = computeRanges(members, { space, buckets });
        assertCovers(a.ranges, space.lo, space.hi);
        assert.equal(a.buckets, Math.min(buckets, space.hi - space.lo + 1));
        const ids = new Set(members.map((m) => m.id));
        for (const r of a.ranges) assert.ok(ids.has(r.memberId));
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('is deterministic and independent of the order peers list the members in', () => {
    fc.assert(
      fc.property(membersArb(), fc.nat(), (members, seed) => {
        const a = computeRanges(members);
        assert.deepEqual(computeRanges(members), a);
        assert.deepEqual(computeRanges(shuffle(members, seed)), a);
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('stays the same from release to release (golden values peers rely on)', () => {
    const members = [
      { id: 'alpha', capacity: 1 },
      { id: 'beta', capacity: 2 },
      { id: 'gamma', capacity: 1 },
    ];
    const { ranges } = computeRanges(members, { space: { lo: 0, hi: 99 }, buckets: 32 });
    assert.deepEqual(
      ranges.map((r) => `${r.memberId}:${r.lo}-${r.hi}`),
      [
        'beta:0-20',
        'alpha:21-24',
        'beta:25-27',
        'alpha:28-33',
        'beta:34-39',
        'alpha:40-45',
        'beta:46-49',
        'alpha:50-52',
        'beta:53-58',
        'gamma:59-64',
        'beta:65-74',
        'alpha:75-80',
        'gamma:81-83',
        'beta:84-99',
      ],
    );
  });

  it('sizes are proportional to capacity (binomial tolerance over the buckets)', () => {
    fc.assert(
      fc.property(membersArb(12), (members) => {
        const a = computeRanges(members);
        const size = a.space.hi - a.space.lo + 1;
        const total = members.reduce((s, m) => s + m.capacity, 0);
        const B = a.buckets;
        for (const m of members) {
          const p = m.capacity / total;
          const values = a.ranges.filter((r) => r.memberId === m.id).reduce((s, r) => s + r.hi - r.lo + 1, 0);
          const sd = Math.sqrt(B * p * (1 - p)) * (size / B);
          const tolerance = 6 * sd + B * p + 1; // + at most one value of rounding per bucket
          assert.ok(
            Math.abs(values - size * p) <= tolerance,
            `${m.id}: expected ${(size * p).toFixed(0)} ± ${tolerance.toFixed(0)} values, got ${values}`,
          );
        }
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('equal capacities: shares spread exactly as the binomial model predicts (hash quality)', () => {
    const n = 100;
    const B = DEFAULT_RANGE_BUCKETS;
    const members = Array.from({ length: n }, (_, i) => ({ id: `node-${i}`, capacity: 1 }));
    // Two values per bucket, so a member's buckets are its values / 2.
    const a = computeRanges(members, { space: { lo: 0, hi: 2 * B - 1 } });
    const buckets = members.map(
      (m) => a.ranges.filter((r) => r.memberId === m.id).reduce((s, r) => s + r.hi - r.lo + 1, 0) / 2,
    );
    const mean = buckets.reduce((s, x) => s + x, 0) / n;
    const sd = Math.sqrt(buckets.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1));
    const model = Math.sqrt(B * (1 / n) * (1 - 1 / n));
    assert.ok(
      sd / model > 0.75 && sd / model < 1.25,
      `spread ${sd.toFixed(2)} buckets, model ${model.toFixed(2)}`,
    );
    for (const x of buckets) assert.ok(Math.abs(x - B / n) < 5 * model, `a member got ${x} buckets`);
  });

  it('exact disruption bound: a value never moves between two unchanged members', () => {
    const changeArb = fc.constantFrom('join', 'leave', 'capacity');
    fc.assert(
      fc.property(
        membersArb(12),
        fc.array(changeArb, { minLength: 1, maxLength: 3 }),
        fc.double({ min: 0.1, max: 100, noNaN: true }),
        fc.nat(),
        (members, changes, capacity, seed) => {
          const random = seededRandom(seed);
          let after = [...members];
          const changed = new Set<string>();
          for (const change of changes) {
            if (change === 'join' || after.length === 1) {
              const id = `new-${changed.size}-${Math.floor(random() * 1e6)}`;
              after.push({ id, capacity });
              changed.add(id);
            } else {
              const victim = after[Math.floor(random() * after.length)]!;
              changed.add(victim.id);
              after =
                change === 'leave'
                  ? after.filter((m) => m !== victim)
                  : after.map((m) => (m === victim ? { id: m.id, capacity: capacity * random() + 0.05 } : m));
            }
          }
          const before = owners(computeRanges(members, { buckets: 1024 }));
          const now = owners(computeRanges(after, { buckets: 1024 }));
          for (let v = 0; v < before.length; v++) {
            if (before[v] !== now[v] && !changed.has(before[v]!) && !changed.has(now[v]!)) {
              assert.fail(`value ${v} moved from ${before[v]} to ${now[v]}, neither of which changed`);
            }
          }
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });

  it("expected disruption: one join, leave or capacity change moves about |c'/C' - c/C| of the space, no more", () => {
    fc.assert(
      fc.property(
        membersArb(12),
        fc.constantFrom('join', 'leave', 'capacity'),
        fc.double({ min: 0.1, max: 100, noNaN: true }),
        fc.nat(),
        (members, change, newCapacity, pickIndex) => {
          const total = members.reduce((s, m) => s + m.capacity, 0);
          let after: RangeMember[];
          let moved: number; // expected fraction
          if (change === 'join' || members.length === 1) {
            after = [...members, { id: '\u0000newcomer', capacity: newCapacity }];
            moved = newCapacity / (total + newCapacity);
          } else {
            const x = members[pickIndex % members.length]!;
            const c2 = change === 'leave' ? 0 : newCapacity;
            after = members.flatMap((m) => (m !== x ? [m] : c2 === 0 ? [] : [{ id: m.id, capacity: c2 }]));
            moved = Math.abs(c2 / (total - x.capacity + c2) - x.capacity / total);
          }
          const a = owners(computeRanges(members));
          const b = owners(computeRanges(after));
          let changedValues = 0;
          for (let v = 0; v < a.length; v++) if (a[v] !== b[v]) changedValues++;
          const B = DEFAULT_RANGE_BUCKETS;
          const size = a.length;
          const tolerance = 6 * Math.sqrt((moved * (1 - moved)) / B) + moved * (B / size) + 1 / B;
          const fraction = changedValues / size;
          assert.ok(
            Math.abs(fraction - moved) <= tolerance,
            `${change}: expected ${(moved * 100).toFixed(2)}% ± ${(tolerance * 100).toFixed(2)} moved, got ${(fraction * 100).toFixed(2)}%`,
          );
        },
      ),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('a failed member is absorbed by the others in proportion to their capacity (C2.6)', () => {
    const members = [
      { id: 'a', capacity: 1 },
      { id: 'b', capacity: 3 },
      { id: 'dead', capacity: 2 },
    ];
    const before = owners(computeRanges(members));
    const after = owners(computeRanges(members.filter((m) => m.id !== 'dead')));
    let toA = 0;
    let toB = 0;
    for (let v = 0; v < before.length; v++) {
      if (before[v] !== 'dead') continue;
      if (after[v] === 'a') toA++;
      else toB++;
    }
    const share = toA / (toA + toB);
    assert.ok(Math.abs(share - 0.25) < 0.06, `a absorbed ${(share * 100).toFixed(1)}% of the dead range`);
  });

  it('handles the edges: no members, zero capacities, validation', () => {
    assert.deepEqual(computeRanges([]).ranges, []);
    assert.equal(ownerOf([], 5), undefined);
    const zero = computeRanges([
      { id: 'a', capacity: 0 },
      { id: 'b', capacity: 0 },
    ]);
    assertCovers(zero.ranges, 0, 32000);
    assert.deepEqual(new Set(zero.ranges.map((r) => r.memberId)), new Set(['a', 'b']));
    const oneZero = computeRanges([
      { id: 'a', capacity: 0 },
      { id: 'b', capacity: 5 },
    ]);
    assert.deepEqual(oneZero.ranges, [{ memberId: 'b', lo: 0, hi: 32000 }]);
    const tiny = computeRanges([{ id: 'x', capacity: 1 }], { space: { lo: 7, hi: 9 } });
    assert.equal(tiny.buckets, 3);
    assert.deepEqual(tiny.ranges, [{ memberId: 'x', lo: 7, hi: 9 }]);
    assert.throws(() => computeRanges([{ id: 'a', capacity: -1 }]), InvalidArgumentError);
    assert.throws(() => computeRanges([{ id: 'a', capacity: Number.NaN }]), InvalidArgumentError);
    assert.throws(
      () => computeRanges([{ id: 'a', capacity: Number.POSITIVE_INFINITY }]),
      InvalidArgumentError,
    );
    assert.throws(
      () =>
        computeRanges([
          { id: 'a', capacity: 1 },
          { id: 'a', capacity: 2 },
        ]),
      /duplicate member id/,
    );
    assert.throws(() => computeRanges([], { space: { lo: 5, hi: 4 } }), {
      code: 'USHER_ERR_INVALID_ARGUMENT',
    });
    assert.throws(() => computeRanges([], { space: { lo: 0.5, hi: 4 } }), InvalidArgumentError);
    assert.throws(() => computeRanges([], { buckets: 0 }), InvalidArgumentError);
    assert.throws(() => computeRanges([], { buckets: 2 ** 21 }), InvalidArgumentError);
  });

  it('ownerOf finds the range holding a value, and nothing outside the space', () => {
    fc.assert(
      fc.property(membersArb(), fc.integer({ min: -10, max: 32010 }), (members, value) => {
        const { ranges } = computeRanges(members, { buckets: 256 });
        const found = ownerOf(ranges, value);
        const expected = ranges.find((r) => r.lo <= value && value <= r.hi)?.memberId;
        assert.equal(found, expected);
        if (value < 0 || value > 32000) assert.equal(found, undefined);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

describe('ranges: the policy', () => {
  const pool = [view('a', { weight: 1 }), view('b', { weight: 2 }), view('c', { weight: 1, health: 'down' })];

  it('uses an integer key in the space as the value, and hashes anything else into it', () => {
    const policy = new RangesPolicy();
    const { ranges } = policy.allocation({ members: pool });
    assert.deepEqual(new Set(ranges.map((r) => r.memberId)), new Set(['a', 'b']));
    for (const value of [0, 1, 15999, 32000])
      assert.equal(policy.pick({ members: pool, key: value })?.id, ownerOf(ranges, value));
    for (const key of ['client-1', 'x', -5, 40000, 1.5]) {
      assert.equal(policy.pick({ members: pool, key })?.id, ownerOf(ranges, hashToSpace(key, 0, 32000)));
    }
  });

  it('computes the ranges once per eligible set and weights', () => {
    const policy = new RangesPolicy({ buckets: 256 });
    for (let i = 0; i < 20; i++) {
      // A new load report makes new views but keeps the members: no rebuild.
      const fresh = pool.map((v) => ({
        ...v,
        load: { users: i, connections: 0, inFlight: 0, cpu: 0, custom: {}, timestamp: i },
      }));
      policy.pick({ members: fresh, key: i });
    }
    assert.equal(policy.builds, 1);
    policy.pick({ members: [...pool].reverse(), key: 1 });
    assert.equal(policy.builds, 1, 'reordering does not rebuild');
    policy.pick({ members: [view('a', { weight: 1 }), view('b', { weight: 2 })], key: 1 });
    assert.equal(policy.builds, 1, 'equal members (new objects, same id and weight) do not rebuild');
    policy.pick({ members: [view('a', { weight: 1 }), view('b', { weight: 3 })], key: 1 });
    assert.equal(policy.builds, 2, 'a weight change rebuilds');
    policy.pick({ members: [view('a', { weight: 1 }), view('b', { weight: 3, health: 'down' })], key: 1 });
    assert.equal(policy.builds, 3, 'a health change that alters the eligible set rebuilds');
  });

  it('two peers with the same view agree on every value', () => {
    const p1 = new RangesPolicy();
    const p2 = new RangesPolicy();
    const shuffled = [pool[2]!, pool[0]!, pool[1]!];
    assert.deepEqual(p1.allocation({ members: pool }), p2.allocation({ members: shuffled }));
  });

  it('without a key, picks in proportion to weight', () => {
    const policy = new RangesPolicy({ random: seededRandom(12) });
    let b = 0;
    const n = 6000;
    for (let i = 0; i < n; i++) if (policy.pick({ members: pool })?.id === 'b') b++;
    const { ranges } = policy.allocation({ members: pool });
    const bShare = ranges.filter((r) => r.memberId === 'b').reduce((s, r) => s + r.hi - r.lo + 1, 0) / 32001;
    assert.ok(Math.abs(b / n - bShare) < 0.03, `b picked ${b} of ${n}, share ${bShare}`);
  });
});
