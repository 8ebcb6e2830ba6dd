import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../../src/core/hash.js';
import { eligible } from '../../../src/core/model.js';
import { RandomPolicy } from '../../../src/core/policy/random.js';
import { RoundRobinPolicy } from '../../../src/core/policy/round-robin.js';
import { WeightedRandomPolicy, weightedIndex } from '../../../src/core/policy/weighted-random.js';
import { poolArb, proportionsProblem, SEED, tally, upPool, view } from './support.js';

const DRAWS = 20_000;

describe('random', () => {
  it('is uniform over the eligible members', () => {
    fc.assert(
      fc.property(poolArb({ minLength: 1 }), fc.nat(), (pool, seed) => {
        const live = eligible(pool);
        fc.pre(live.length > 0);
        const policy = new RandomPolicy({ random: seededRandom(seed) });
        const counts = tally(DRAWS, () => policy.pick({ members: pool })?.id);
        const expected = new Map(live.map((v) => [v.member.id, 1 / live.length]));
        const problem = proportionsProblem(counts, expected, DRAWS);
        assert.equal(problem, undefined, problem);
      }),
      { seed: SEED, numRuns: 30 },
    );
  });

  it('never indexes past the end when the random source returns 1 - 2^-53 or 1', () => {
    const pool = upPool(3);
    assert.equal(new RandomPolicy({ random: () => 1 - 2 ** -53 }).pick({ members: pool })?.id, 'm2');
    assert.equal(new RandomPolicy({ random: () => 1 }).pick({ members: pool })?.id, 'm2');
  });
});

describe('weighted-random', () => {
  it('picks in proportion to weight', () => {
    fc.assert(
      fc.property(poolArb({ minLength: 1 }), fc.nat(), (pool, seed) => {
        const live = eligible(pool);
        fc.pre(live.length > 0);
        const total = live.reduce((s, v) => s + v.member.weight, 0);
        const policy = new WeightedRandomPolicy({ random: seededRandom(seed) });
        const counts = tally(DRAWS, () => policy.pick({ members: pool })?.id);
        const expected = new Map(live.map((v) => [v.member.id, v.member.weight / total]));
        const problem = proportionsProblem(counts, expected, DRAWS);
        assert.equal(problem, undefined, problem);
      }),
      { seed: SEED, numRuns: 30 },
    );
  });

  it('gives weight-0 members nothing, and is uniform when no weight is usable', () => {
    const random = seededRandom(3);
    assert.equal(
      weightedIndex([0, 5, 0], (w) => w, random),
      1,
    );
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[weightedIndex([0, Number.NaN, -1], (w) => w, random)]!++;
    for (const c of counts) assert.ok(c > 800, `uniform fallback: ${counts}`);
    const pool = [view('zero', { weight: 0 }), view('one', { weight: 1 })];
    const policy = new WeightedRandomPolicy({ random });
    for (let i = 0; i < 200; i++) assert.equal(policy.pick({ members: pool })?.id, 'one');
  });

  it('returns the last positive item when the random source returns 1', () => {
    assert.equal(
      weightedIndex(
        [1, 2, 0],
        (w) => w,
        () => 1,
      ),
      1,
    );
  });
});

describe('round-robin', () => {
  it('visits every eligible member once per cycle, in id order', () => {
    fc.assert(
      fc.property(poolArb({ minLength: 1 }), (pool) => {
        const ids = eligible(pool)
          .map((v) => v.member.id)
          .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        fc.pre(ids.length > 0);
        const policy = new RoundRobinPolicy();
        const seen = Array.from({ length: ids.length * 3 }, () => policy.pick({ members: pool })!.id);
        assert.deepEqual(seen, [...ids, ...ids, ...ids]);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('continues after the last id when members come and go', () => {
    const policy = new RoundRobinPolicy();
    const pool = [view('a'), view('b'), view('c'), view('d')];
    assert.equal(policy.pick({ members: pool })?.id, 'a');
    assert.equal(policy.pick({ members: pool })?.id, 'b');
    // b goes down and a new member "bb" joins: rotation continues after "b", no restart.
    const changed = [view('a'), view('b', { health: 'down' }), view('bb'), view('c'), view('d')];
    assert.equal(policy.pick({ members: changed })?.id, 'bb');
    assert.equal(policy.pick({ members: changed })?.id, 'c');
    assert.equal(policy.pick({ members: changed })?.id, 'd');
    assert.equal(policy.pick({ members: changed })?.id, 'a');
  });

  it('does not depend on the order of the pool', () => {
    const policy = new RoundRobinPolicy();
    const pool = [view('c'), view('a'), view('b')];
    const picks = [0, 1, 2].map(() => policy.pick({ members: pool })!.id);
    assert.deepEqual(picks, ['a', 'b', 'c']);
  });
});
