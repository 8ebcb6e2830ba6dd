import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../../src/core/hash.js';
import { createPolicy } from '../../../src/core/policy/index.js';
import {
  loadShareProbabilities,
  PriorityLoadPolicy,
  priorityLoadProbabilities,
} from '../../../src/core/policy/priority-load.js';
import { poolArb, proportionsProblem, SEED, tally, view } from './support.js';

const close = (a: number, b: number, eps = 1e-12) => Math.abs(a - b) <= eps;

describe('priority-load: the seed-003 formula', () => {
  it("reproduces the seed's example: 2963 and 2979 users give 0.501 and 0.499", () => {
    const [a, n] = loadShareProbabilities([2963, 2979]);
    assert.equal(a!.toFixed(3), '0.501');
    assert.equal(n!.toFixed(3), '0.499');
  });

  it('equals (1 - users_i / total) / (live - 1) whenever live >= 2 and total > 0', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 1_000_000 }), { minLength: 2, maxLength: 30 }), (users) => {
        const total = users.reduce((s, u) => s + u, 0);
        fc.pre(total > 0);
        const p = loadShareProbabilities(users);
        users.forEach((u, i) => {
          assert.ok(close(p[i]!, (1 - u / total) / (users.length - 1), 1e-12), `p[${i}] = ${p[i]}`);
        });
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('always gives probabilities in [0, 1] that sum to 1, whatever the counts (NaN, negative, infinite, huge)', () => {
    const count = fc.oneof(
      fc.nat({ max: 10_000 }),
      fc.double({ noNaN: false }),
      fc.constantFrom(
        0,
        -1,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        Number.MAX_VALUE,
      ),
    );
    fc.assert(
      fc.property(fc.array(count, { minLength: 1, maxLength: 20 }), (users) => {
        const p = loadShareProbabilities(users);
        assert.equal(p.length, users.length);
        for (const v of p) assert.ok(v >= 0 && v <= 1, `probability ${v}`);
        assert.ok(
          close(
            p.reduce((s, v) => s + v, 0),
            1,
            1e-9,
          ),
        );
      }),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('gives more users a smaller or equal chance', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 100_000 }), { minLength: 2, maxLength: 20 }), (users) => {
        const p = loadShareProbabilities(users);
        for (let i = 0; i < users.length; i++)
          for (let j = 0; j < users.length; j++)
            if (users[i]! > users[j]!) assert.ok(p[i]! <= p[j]! + 1e-15, `users ${users[i]} > ${users[j]}`);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('edge cases: none, one live server, zero users, one server with every user, unusable counts', () => {
    assert.deepEqual(loadShareProbabilities([]), []);
    assert.deepEqual(loadShareProbabilities([5000]), [1]);
    assert.deepEqual(loadShareProbabilities([0]), [1]);
    assert.deepEqual(loadShareProbabilities([0, 0, 0, 0]), [0.25, 0.25, 0.25, 0.25]);
    // One server has all the users: it gets 0 and the others share the rest evenly.
    assert.deepEqual(loadShareProbabilities([0, 90, 0, 0]), [1 / 3, 0, 1 / 3, 1 / 3]);
    // Unusable counts count as 0; if that leaves no users at all, uniform.
    assert.deepEqual(loadShareProbabilities([Number.NaN, -4]), [0.5, 0.5]);
    assert.deepEqual(loadShareProbabilities([Number.NaN, 10, -3]), [0.5, 0, 0.5]);
    // Infinite counts: the limit of the formula.
    assert.deepEqual(loadShareProbabilities([Number.POSITIVE_INFINITY, 1, 2]), [0, 0.5, 0.5]);
    assert.deepEqual(
      loadShareProbabilities([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]),
      [0.5, 0.5],
    );
    // Counts too large to sum still work (scaled by the largest first).
    assert.deepEqual(loadShareProbabilities([Number.MAX_VALUE, Number.MAX_VALUE, 0]), [0.25, 0.25, 0.5]);
  });
});

describe('priority-load: groups and the policy', () => {
  it('uses only the lowest group with a live member, and only live members in it', () => {
    const pool = [
      view('a0', { group: 0, health: 'down', load: { users: 1 } }),
      view('b0', { group: 0, health: 'draining' }),
      view('a1', { group: 1, load: { users: 300 } }),
      view('b1', { group: 1, load: { users: 100 } }),
      view('c1', { group: 1, health: 'down' }),
      view('a2', { group: 2 }),
    ];
    const p = priorityLoadProbabilities(pool);
    assert.deepEqual(
      p.map((x) => Number(x.toFixed(6))),
      [0, 0, 0.25, 0.75, 0, 0],
    );
    const policy = new PriorityLoadPolicy({ random: seededRandom(4) });
    const counts = tally(10_000, () => policy.pick({ members: pool })?.id);
    const problem = proportionsProblem(
      counts,
      new Map([
        ['a1', 0.25],
        ['b1', 0.75],
      ]),
      10_000,
    );
    assert.equal(problem, undefined, problem);
    // The primary group comes back: everything goes there.
    const back = pool.map((v) => (v.member.id === 'a0' ? view('a0', { group: 0 }) : v));
    for (let i = 0; i < 50; i++) assert.equal(policy.pick({ members: back })?.id, 'a0');
  });

  it('picks with the probabilities it publishes', () => {
    fc.assert(
      fc.property(poolArb({ minLength: 1 }), fc.nat(), (pool, seed) => {
        const p = priorityLoadProbabilities(pool);
        const total = p.reduce((s, x) => s + x, 0);
        const policy = new PriorityLoadPolicy({ random: seededRandom(seed) });
        if (total === 0) {
          assert.equal(policy.pick({ members: pool }), undefined);
          return;
        }
        assert.ok(close(total, 1, 1e-9));
        const draws = 10_000;
        const counts = tally(draws, () => policy.pick({ members: pool })?.id);
        const expected = new Map(pool.map((v, i) => [v.member.id, p[i]!] as const).filter(([, x]) => x > 0));
        const problem = proportionsProblem(counts, expected, draws);
        assert.equal(problem, undefined, problem);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });

  it('can use another metric as the user count', () => {
    const pool = [
      view('a', { load: { connections: 30, users: 0 } }),
      view('b', { load: { connections: 10, users: 0 } }),
    ];
    assert.deepEqual(priorityLoadProbabilities(pool, { metric: 'connections' }), [0.25, 0.75]);
    assert.deepEqual(priorityLoadProbabilities(pool), [0.5, 0.5]);
  });
});

describe('priority-load: normalizeByWeight (capacity-aware formula)', () => {
  const count = fc.oneof(
    fc.nat({ max: 10_000 }),
    fc.double({ noNaN: false }),
    fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE),
  );
  const sum = (p: readonly number[]) => p.reduce((s, v) => s + v, 0);
  const r12 = (p: readonly number[]) => p.map((x) => Number(x.toFixed(12)));

  it('with equal weights gives the same probabilities as the seed formula (within 1e-12), whatever the counts', () => {
    fc.assert(
      fc.property(
        fc.array(count, { minLength: 0, maxLength: 20 }),
        fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
        (users, w) => {
          const plain = loadShareProbabilities(users);
          const weighted = loadShareProbabilities(
            users,
            users.map(() => w),
          );
          assert.equal(weighted.length, plain.length);
          plain.forEach((p, i) => {
            assert.ok(close(weighted[i]!, p), `p[${i}]: ${weighted[i]} vs ${p}`);
          });
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('equals weight_i (1 - load_i / Σ load) renormalised, with load_i = users_i / weight_i', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 100_000 }), fc.integer({ min: 1, max: 1000 })), {
          minLength: 2,
          maxLength: 20,
        }),
        (rows) => {
          const users = rows.map(([u]) => u);
          const weights = rows.map(([, w]) => w);
          const loads = rows.map(([u, w]) => u / w);
          const total = sum(loads);
          fc.pre(total > 0);
          const raw = rows.map(([, w], i) => Math.max(0, w * (1 - loads[i]! / total)));
          const norm = sum(raw);
          const p = loadShareProbabilities(users, weights);
          p.forEach((x, i) => {
            assert.ok(close(x, raw[i]! / norm, 1e-12), `p[${i}] = ${x}, expected ${raw[i]! / norm}`);
          });
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('a server with twice the weight and the same load per unit of weight gets twice the chance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.nat({ max: 10_000 }),
        fc.array(fc.tuple(fc.nat({ max: 10_000 }), fc.integer({ min: 1, max: 1000 })), { maxLength: 10 }),
        (w, perUnit, others) => {
          const users = [perUnit * w, perUnit * 2 * w, ...others.map(([u]) => u)];
          const weights = [w, 2 * w, ...others.map(([, x]) => x)];
          const p = loadShareProbabilities(users, weights);
          assert.ok(close(p[1]!, 2 * p[0]!, 1e-12), `${p[1]} vs 2 × ${p[0]}`);
        },
      ),
      { seed: SEED, numRuns: 500 },
    );
    // The worked case: capacities 100 and 200, both 40% full, and an empty server of 100.
    const p = loadShareProbabilities([40, 80, 0], [100, 200, 100]);
    // loads 0.4, 0.4, 0 → 1 - load/0.8 = 0.5, 0.5, 1 → weighted 50, 100, 100 → / 250
    assert.deepEqual(
      p.map((x) => Number(x.toFixed(12))),
      [0.2, 0.4, 0.4],
    );
  });

  it('always gives probabilities in [0, 1] that sum to 1, whatever the counts and weights', () => {
    const weight = fc.oneof(
      fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
      fc.double({ noNaN: false }),
      fc.constantFrom(0, -1, Number.NaN, Number.POSITIVE_INFINITY, Number.MIN_VALUE, Number.MAX_VALUE),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(count, weight), { minLength: 1, maxLength: 20 }), (rows) => {
        const p = loadShareProbabilities(
          rows.map(([u]) => u),
          rows.map(([, w]) => w),
        );
        assert.equal(p.length, rows.length);
        for (const v of p) assert.ok(v >= 0 && v <= 1, `probability ${v}`);
        assert.ok(close(sum(p), 1, 1e-9), `sum ${sum(p)}`);
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('edge cases: one server, zero users, unusable weights, infinite and unusable counts', () => {
    assert.deepEqual(r12(loadShareProbabilities([], [])), []);
    assert.deepEqual(r12(loadShareProbabilities([7], [0])), [1]);
    // No users: in proportion to weight.
    assert.deepEqual(r12(loadShareProbabilities([0, 0, 0], [1, 1, 2])), [0.25, 0.25, 0.5]);
    assert.deepEqual(r12(loadShareProbabilities([Number.NaN, -4], [1, 3])), [0.25, 0.75]);
    // A server with no usable weight never gets picked; none usable: the unweighted formula.
    assert.deepEqual(r12(loadShareProbabilities([0, 10, 30], [0, 1, 1])), [0, 0.75, 0.25]);
    assert.deepEqual(
      r12(loadShareProbabilities([10, 30], [Number.NaN, -1])),
      r12(loadShareProbabilities([10, 30])),
    );
    // Infinite counts: 0 for them, the others in proportion to weight; all infinite: by weight.
    assert.deepEqual(
      r12(loadShareProbabilities([Number.POSITIVE_INFINITY, 5, 9], [1, 1, 3])),
      [0, 0.25, 0.75],
    );
    assert.deepEqual(
      loadShareProbabilities([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY], [1, 3]),
      [0.25, 0.75],
    );
    // One server carrying all the load: 0 for it, the others by weight.
    assert.deepEqual(r12(loadShareProbabilities([0, 90, 0], [1, 5, 3])), [0.25, 0, 0.75]);
    assert.throws(() => loadShareProbabilities([1, 2], [1]), /one weight per user count/);
  });

  it('the policy, createPolicy and priorityLoadProbabilities use it; off by default', () => {
    const pool = [
      view('small', { weight: 50, load: { users: 25 } }),
      view('big', { weight: 200, load: { users: 100 } }),
      view('other', { weight: 100, group: 1, load: { users: 0 } }),
    ];
    // Both half full: in proportion to weight, 1 : 4.
    const p = priorityLoadProbabilities(pool, { normalizeByWeight: true });
    assert.deepEqual(
      p.map((x) => Number(x.toFixed(12))),
      [0.2, 0.8, 0],
    );
    // The seed formula (raw users) would favour the small one: 0.8 / 0.2.
    assert.deepEqual(
      priorityLoadProbabilities(pool).map((x) => Number(x.toFixed(12))),
      [0.8, 0.2, 0],
    );
    const policy = createPolicy('priority-load', { normalizeByWeight: true, random: seededRandom(9) });
    const counts = tally(10_000, () => policy.pick({ members: pool })?.id);
    const problem = proportionsProblem(
      counts,
      new Map([
        ['small', 0.2],
        ['big', 0.8],
      ]),
      10_000,
    );
    assert.equal(problem, undefined, problem);
    assert.throws(
      () => createPolicy('priority-load', { normalizeByWeight: 'yes' }),
      /normalizeByWeight: expected true or false, got "yes"/,
    );
  });

  it('picks with the probabilities it publishes', () => {
    fc.assert(
      fc.property(poolArb({ minLength: 1 }), fc.nat(), (pool, seed) => {
        const p = priorityLoadProbabilities(pool, { normalizeByWeight: true });
        const policy = new PriorityLoadPolicy({ normalizeByWeight: true, random: seededRandom(seed) });
        if (sum(p) === 0) {
          assert.equal(policy.pick({ members: pool }), undefined);
          return;
        }
        assert.ok(close(sum(p), 1, 1e-9));
        const draws = 10_000;
        const counts = tally(draws, () => policy.pick({ members: pool })?.id);
        const expected = new Map(pool.map((v, i) => [v.member.id, p[i]!] as const).filter(([, x]) => x > 0));
        const problem = proportionsProblem(counts, expected, draws);
        assert.equal(problem, undefined, problem);
      }),
      { seed: SEED, numRuns: 40 },
    );
  });
});

describe('priority-load: sharpen (factor raised to live − 1)', () => {
  it('equals weight_i (1 - load_i / Σ load)^(live-1) renormalised', () => {
    const users = [10, 20, 30, 40];
    const weights = [1, 2, 1, 4];
    const load = users.map((u, i) => u / weights[i]!);
    const total = load.reduce((a, b) => a + b, 0);
    const raw = load.map((l, i) => weights[i]! * (1 - l / total) ** 3);
    const sum = raw.reduce((a, b) => a + b, 0);
    const p = loadShareProbabilities(users, weights, 3);
    p.forEach((x, i) => {
      assert.ok(Math.abs(x - raw[i]! / sum) < 1e-12, `p[${i}] = ${x}`);
    });
  });

  it('pulls harder toward the emptier server than the seed formula, and equals it when loads are equal', () => {
    const users = [50, 100, 100, 100];
    const plain = priorityLoadProbabilities(
      users.map((u, i) => view(`m${i}`, { load: { users: u } })),
      {},
    );
    const sharp = priorityLoadProbabilities(
      users.map((u, i) => view(`m${i}`, { load: { users: u } })),
      { sharpen: true },
    );
    assert.ok(sharp[0]! > plain[0]!, `the emptier server gets more: ${sharp[0]} > ${plain[0]}`);
    const even = priorityLoadProbabilities(
      [7, 7, 7].map((u, i) => view(`e${i}`, { load: { users: u } })),
      { sharpen: true },
    );
    for (const x of even) assert.ok(Math.abs(x - 1 / 3) < 1e-12, `even loads: ${x}`);
    assert.throws(
      () => createPolicy('priority-load', { sharpen: 'yes' as unknown as boolean }),
      /option sharpen: expected true or false/,
    );
  });
});
