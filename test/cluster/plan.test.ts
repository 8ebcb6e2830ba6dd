import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  DEFAULT_PLAN_BUCKETS,
  isNewer,
  movedShare,
  naiveProportionalPlan,
  ownerOf,
  type PlanMember,
  planRanges,
  type RangePlan,
} from '../../src/cluster/plan.js';
import { seededRandom } from '../../src/core/hash.js';
import { InvalidArgumentError } from '../../src/errors.js';

const SEED = 0x5eed;
const B = DEFAULT_PLAN_BUCKETS;

/** 1..maxLength members with unique ids and availabilities 0.1..100. */
function membersArb(maxLength = 12): fc.Arbitrary<PlanMember[]> {
  return fc.uniqueArray(
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 6 }),
      availability: fc.double({ min: 0.1, max: 100, noNaN: true }),
    }),
    { selector: (m) => m.id, minLength: 1, maxLength },
  );
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

/** Checks that the ranges tile the space and agree with `owners`, `ownerOf` and `shares`. */
function assertWellFormed(plan: RangePlan, members: readonly PlanMember[]): void {
  const { lo, hi } = plan.space;
  const all = Object.entries(plan.ranges).flatMap(([id, list]) => list.map(([a, b]) => ({ id, a, b })));
  all.sort((x, y) => x.a - y.a);
  assert.equal(all[0]!.a, lo, 'the first range starts at lo');
  assert.equal(all.at(-1)!.b, hi, 'the last range ends at hi');
  for (let i = 0; i < all.length; i++) {
    assert.ok(all[i]!.a <= all[i]!.b, 'no empty range');
    if (i > 0) assert.equal(all[i]!.a, all[i - 1]!.b + 1, 'no gap and no overlap');
    assert.equal(ownerOf(plan, all[i]!.a), all[i]!.id);
    assert.equal(ownerOf(plan, all[i]!.b), all[i]!.id);
  }
  for (const list of Object.values(plan.ranges)) {
    for (let i = 1; i < list.length; i++)
      assert.ok(list[i]![0] > list[i - 1]![1] + 1, 'adjacent ranges merged');
  }
  assert.equal(plan.owners.length, plan.buckets);
  assert.deepEqual(Object.keys(plan.ranges).sort(), members.map((m) => m.id).sort());
  const total = Object.values(plan.shares).reduce((s, x) => s + x, 0);
  assert.ok(Math.abs(total - 1) < 1e-9, `shares sum to ${total}`);
  for (const [id, list] of Object.entries(plan.ranges)) {
    const values = list.reduce((s, [a, b]) => s + b - a + 1, 0);
    assert.ok(Math.abs(plan.shares[id]! - values / (hi - lo + 1)) < 1e-12);
  }
}

/** The member that changes, before and after (undefined = absent). */
type Change = { id: string; before: number | undefined; after: number | undefined };

function applyChange(members: readonly PlanMember[], change: Change): PlanMember[] {
  const rest = members.filter((m) => m.id !== change.id);
  return change.after === undefined ? rest : [...rest, { id: change.id, availability: change.after }];
}

const changeArb = membersArb().chain((members) =>
  fc.tuple(
    fc.constant(members),
    fc.oneof(
      fc.record({ kind: fc.constant('join'), c: fc.double({ min: 0.1, max: 100, noNaN: true }) }),
      fc.record({ kind: fc.constant('leave'), k: fc.nat(members.length - 1) }),
      fc.record({
        kind: fc.constant('change'),
        k: fc.nat(members.length - 1),
        c: fc.double({ min: 0.1, max: 100, noNaN: true }),
      }),
    ),
  ),
);

describe('cluster plan: shape', () => {
  it('tiles the whole space exactly, whatever the members and space', () => {
    const spaceArb = fc
      .record({ lo: fc.integer({ min: 0, max: 1e6 }), size: fc.integer({ min: 1, max: 40_000 }) })
      .map(({ lo, size }) => ({ lo, hi: lo + size - 1 }));
    fc.assert(
      fc.property(membersArb(), spaceArb, fc.integer({ min: 1, max: 5000 }), (members, space, buckets) => {
        const plan = planRanges(members, { space, buckets });
        assert.equal(plan.buckets, Math.min(buckets, space.hi - space.lo + 1));
        assertWellFormed(plan, members);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('defaults to 32000 values in 4000 buckets, epoch 0', () => {
    const plan = planRanges([{ id: 'a', availability: 1 }]);
    assert.deepEqual(plan.space, { lo: 0, hi: 31999 });
    assert.equal(plan.buckets, 4000);
    assert.equal(plan.epoch, 0);
    assert.deepEqual(plan.ranges.a, [[0, 31999]]);
    assert.equal(plan.shares.a, 1);
    assert.ok(Object.isFrozen(plan) && Object.isFrozen(plan.owners) && Object.isFrozen(plan.ranges.a));
  });

  it('is the same plan whatever order the members come in', () => {
    fc.assert(
      fc.property(membersArb(), fc.integer(), (members, seed) => {
        assert.deepEqual(planRanges(shuffle(members, seed)), planRanges(members));
      }),
      { seed: SEED, numRuns: 50 },
    );
  });

  it('gives nothing to members with availability <= 0 or not finite; splits evenly when all are', () => {
    const members = [
      { id: 'up', availability: 3 },
      { id: 'zero', availability: 0 },
      { id: 'neg', availability: -2 },
      { id: 'nan', availability: Number.NaN },
      { id: 'inf', availability: Number.POSITIVE_INFINITY },
    ];
    const plan = planRanges(members);
    assert.deepEqual(plan.ranges.up, [[0, 31999]]);
    for (const id of ['zero', 'neg', 'nan', 'inf']) {
      assert.deepEqual(plan.ranges[id], []);
      assert.equal(plan.shares[id], 0);
    }
    const none = planRanges(members.slice(1));
    assertWellFormed(none, members.slice(1));
    for (const id of ['zero', 'neg', 'nan', 'inf']) {
      assert.ok(Math.abs(none.shares[id]! - 0.25) < 0.03, `${id}: share ${none.shares[id]}`);
    }
  });

  it('an empty cluster owns nothing', () => {
    const plan = planRanges([]);
    assert.deepEqual(plan.owners, []);
    assert.deepEqual({ ...plan.ranges }, {});
    assert.equal(ownerOf(plan, 5), undefined);
  });

  it('ownerOf answers only for integers inside the space', () => {
    const plan = planRanges([{ id: 'a', availability: 1 }], { space: { lo: 10, hi: 20 } });
    assert.equal(ownerOf(plan, 10), 'a');
    assert.equal(ownerOf(plan, 20), 'a');
    assert.equal(ownerOf(plan, 9), undefined);
    assert.equal(ownerOf(plan, 21), undefined);
    assert.equal(ownerOf(plan, 12.5), undefined);
  });

  it('refuses duplicate ids and bad options', () => {
    const bad = (fn: () => unknown, pattern: RegExp) =>
      assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message));
    const one = [{ id: 'a', availability: 1 }];
    bad(() => planRanges([...one, ...one]), /duplicate member id "a"/);
    bad(() => naiveProportionalPlan([...one, ...one]), /duplicate member id "a"/);
    bad(() => planRanges(one, { epoch: -1 }), /epoch/);
    bad(() => planRanges(one, { epoch: 1.5 }), /epoch/);
    bad(() => planRanges(one, { buckets: 0 }), /buckets/);
    bad(() => planRanges(one, { space: { lo: 3, hi: 2 } }), /space/);
    bad(() => movedShare(planRanges(one), planRanges(one, { space: { lo: 0, hi: 9 } })), /same space/);
  });
});

describe('cluster plan: disruption', () => {
  it('moves buckets only to or from the member that changed, exactly |share change| of the space', () => {
    fc.assert(
      fc.property(changeArb, fc.string({ minLength: 7, maxLength: 8 }), ([members, op], newId) => {
        let change: Change;
        if (op.kind === 'join') change = { id: newId, before: undefined, after: op.c };
        else if (op.kind === 'leave')
          change = { id: members[op.k]!.id, before: members[op.k]!.availability, after: undefined };
        else change = { id: members[op.k]!.id, before: members[op.k]!.availability, after: op.c };
        const next = applyChange(members, change);
        const a = planRanges(members);
        const b = planRanges(next);
        if (next.length === 0) return; // the last member left: nothing is owned any more
        for (let i = 0; i < B; i++) {
          if (a.owners[i] !== b.owners[i]) {
            assert.ok(
              a.owners[i] === change.id || b.owners[i] === change.id,
              `bucket ${i} moved from ${a.owners[i]} to ${b.owners[i]}, neither is ${change.id}`,
            );
          }
        }
        const delta = Math.abs((b.shares[change.id] ?? 0) - (a.shares[change.id] ?? 0));
        assert.ok(
          Math.abs(movedShare(a, b) - delta) < 1e-9,
          `moved ${movedShare(a, b)}, share change ${delta}`,
        );
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('a join moves c / (C + c) of the space in expectation (binomial spread)', () => {
    const random = seededRandom(SEED);
    const id = () => Math.floor(random() * 2 ** 32).toString(36);
    let sumZ = 0;
    let sumZ2 = 0;
    const trials = 300;
    for (let t = 0; t < trials; t++) {
      const n = 2 + Math.floor(random() * 9);
      const members = Array.from({ length: n }, () => ({ id: id(), availability: 0.5 + random() * 10 }));
      const c = 0.5 + random() * 10;
      const total = members.reduce((s, m) => s + m.availability, 0);
      const p = c / (total + c);
      const moved = movedShare(
        planRanges(members),
        planRanges([...members, { id: `new-${id()}`, availability: c }]),
      );
      const z = (moved - p) / Math.sqrt((p * (1 - p)) / B);
      assert.ok(Math.abs(z) < 5, `trial ${t}: moved ${moved}, expected ${p} (z = ${z.toFixed(2)})`);
      sumZ += z;
      sumZ2 += z * z;
    }
    // Unbiased (mean z within about 4 standard errors of 0) and binomial (mean z^2 near 1).
    assert.ok(Math.abs(sumZ / trials) < 0.25, `mean z ${sumZ / trials}`);
    assert.ok(sumZ2 / trials > 0.7 && sumZ2 / trials < 1.35, `mean z^2 ${sumZ2 / trials}`);
  });

  it('one of N equal members leaving or joining moves <= 1/N + 2%; naive re-slicing moves far more', () => {
    for (let n = 5; n <= 10; n++) {
      const ids = Array.from({ length: n }, (_, i) => `member-${String.fromCharCode(97 + i)}`);
      const all = ids.map((id) => ({ id, availability: 1 }));
      const ours = planRanges(all);
      const naive = naiveProportionalPlan(all);
      let naiveSum = 0;
      let oursSum = 0;
      const events = [
        ...ids.map((id) => ({ kind: 'leave', id })),
        ...['aaa', 'member-d2', 'zzz'].map((id) => ({ kind: 'join', id })),
      ];
      for (const e of events) {
        const others = e.kind === 'leave' ? all.filter((m) => m.id !== e.id) : all;
        const size = e.kind === 'leave' ? n : n + 1;
        const changed = e.kind === 'leave' ? others : [...all, { id: e.id, availability: 1 }];
        const o =
          e.kind === 'leave'
            ? movedShare(ours, planRanges(changed))
            : movedShare(planRanges(others), planRanges(changed));
        const v =
          e.kind === 'leave'
            ? movedShare(naive, naiveProportionalPlan(changed))
            : movedShare(naiveProportionalPlan(others), naiveProportionalPlan(changed));
        assert.ok(
          o <= 1 / size + 0.02,
          `N=${size}, ${e.kind} ${e.id}: ours moved ${o.toFixed(4)} > 1/N + 2%`,
        );
        oursSum += o;
        naiveSum += v;
      }
      const oursMean = oursSum / events.length;
      const naiveMean = naiveSum / events.length;
      assert.ok(
        naiveMean > 2 * oursMean,
        `N=${n}: naive mean ${naiveMean.toFixed(3)} vs ours ${oursMean.toFixed(3)}`,
      );
      assert.ok(naiveMean > 0.3, `N=${n}: naive mean ${naiveMean.toFixed(3)}`);
    }
  });

  it('movedShare: 0 for the same plan, 1 against an empty one, symmetric, any bucket counts', () => {
    fc.assert(
      fc.property(membersArb(), membersArb(), fc.integer({ min: 1, max: 8000 }), (m1, m2, buckets) => {
        const a = planRanges(m1);
        const b = planRanges(m2, { buckets });
        assert.equal(movedShare(a, a), 0);
        assert.equal(movedShare(a, planRanges([])), 1);
        assert.equal(movedShare(a, b), movedShare(b, a));
        // Brute force over every value.
        let moved = 0;
        for (let v = 0; v < 32000; v += 1) if (ownerOf(a, v) !== ownerOf(b, v)) moved++;
        assert.ok(Math.abs(movedShare(a, b) - moved / 32000) < 1e-12);
      }),
      { seed: SEED, numRuns: 25 },
    );
  });
});

describe('cluster plan: proportion', () => {
  it('shares follow availability within the binomial error of 4000 buckets', () => {
    let sumZ2 = 0;
    let count = 0;
    fc.assert(
      fc.property(membersArb(), (members) => {
        const plan = planRanges(members);
        const total = members.reduce((s, m) => s + m.availability, 0);
        for (const m of members) {
          const p = m.availability / total;
          const sigma = Math.sqrt((p * (1 - p)) / B);
          const error = Math.abs(plan.shares[m.id]! - p);
          assert.ok(error <= 5 * sigma + 1 / B, `${m.id}: share ${plan.shares[m.id]}, expected ${p}`);
          if (p < 1) {
            sumZ2 += (error / sigma) ** 2;
            count++;
          }
        }
      }),
      { seed: SEED, numRuns: 200 },
    );
    assert.ok(sumZ2 / count > 0.7 && sumZ2 / count < 1.35, `mean z^2 ${sumZ2 / count} over ${count} shares`);
  });

  it('the naive baseline is exact to a bucket (the price is its disruption)', () => {
    fc.assert(
      fc.property(membersArb(), (members) => {
        const plan = naiveProportionalPlan(members);
        assertWellFormed(plan, members);
        const total = members.reduce((s, m) => s + m.availability, 0);
        for (const m of members) {
          assert.ok(Math.abs(plan.shares[m.id]! - m.availability / total) <= 1 / B + 1e-12);
          assert.ok(plan.ranges[m.id]!.length <= 1, 'one contiguous slice each');
        }
      }),
      { seed: SEED, numRuns: 100 },
    );
  });
});

describe('cluster plan: epoch', () => {
  it('carries the epoch; a lower epoch is stale', () => {
    const members = [{ id: 'a', availability: 1 }];
    const old = planRanges(members, { epoch: 6 });
    const current = planRanges(members, { epoch: 7 });
    assert.equal(current.epoch, 7);
    assert.ok(isNewer(current, old));
    assert.ok(!isNewer(old, current));
    assert.ok(!isNewer(current, current));
  });
});
