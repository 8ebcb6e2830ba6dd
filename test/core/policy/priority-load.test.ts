import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../../src/core/hash.js';
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
