import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../../src/core/hash.js';
import { eligible, loadMetric } from '../../../src/core/model.js';
import { LeastLoadedPolicy, loadScore } from '../../../src/core/policy/least-loaded.js';
import { P2cPolicy } from '../../../src/core/policy/p2c.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { poolArb, proportionsProblem, SEED, tally, view } from './support.js';

const metricArb = fc.constantFrom('users', 'connections', 'inFlight', 'cpu') as fc.Arbitrary<
  'users' | 'connections' | 'inFlight' | 'cpu'
>;

describe('least-loaded', () => {
  it('picks a member with the least metric (per weight when normalised); ties go to the greater weight', () => {
    fc.assert(
      fc.property(
        poolArb({ minLength: 1 }),
        metricArb,
        fc.boolean(),
        fc.nat(),
        (pool, metric, normalize, seed) => {
          const live = eligible(pool);
          fc.pre(live.length > 0);
          const policy = new LeastLoadedPolicy({
            metric,
            normalizeByWeight: normalize,
            random: seededRandom(seed),
          });
          const picked = policy.pick({ members: pool })!;
          const pickedView = live.find((v) => v.member === picked)!;
          const best = Math.min(...live.map((v) => loadScore(v, metric, normalize)));
          assert.equal(loadScore(pickedView, metric, normalize), best);
          const tiedWeights = live
            .filter((v) => loadScore(v, metric, normalize) === best)
            .map((v) => v.member.weight);
          assert.equal(picked.weight, Math.max(...tiedWeights));
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('spreads exact ties at random', () => {
    const pool = ['a', 'b', 'c'].map((id) => view(id, { load: { connections: 2 } }));
    const policy = new LeastLoadedPolicy({ random: seededRandom(9) });
    const counts = tally(3000, () => policy.pick({ members: pool })?.id);
    const problem = proportionsProblem(counts, new Map(['a', 'b', 'c'].map((id) => [id, 1 / 3])), 3000);
    assert.equal(problem, undefined, problem);
  });

  it('reads custom metrics and normalises by weight when asked', () => {
    const pool = [
      view('small', { weight: 1, load: { custom: { queue: 3 } } }),
      view('big', { weight: 4, load: { custom: { queue: 8 } } }),
    ];
    assert.equal(new LeastLoadedPolicy({ metric: 'custom.queue' }).pick({ members: pool })?.id, 'small');
    const perWeight = new LeastLoadedPolicy({ metric: 'custom.queue', normalizeByWeight: true });
    assert.equal(perWeight.pick({ members: pool })?.id, 'big');
    assert.equal(loadMetric(pool[1]!.load, 'custom.queue'), 8);
  });

  it('rejects an unknown metric', () => {
    assert.throws(() => new LeastLoadedPolicy({ metric: 'memory' as never }), InvalidArgumentError);
    assert.throws(() => new LeastLoadedPolicy({ metric: 'custom.' as never }), {
      code: 'USHER_ERR_INVALID_ARGUMENT',
    });
  });
});

describe('p2c', () => {
  it('never picks the unique most loaded member (per weight) when there are two or more', () => {
    fc.assert(
      fc.property(poolArb({ minLength: 2 }), metricArb, fc.nat(), (pool, metric, seed) => {
        const live = eligible(pool);
        fc.pre(live.length >= 2);
        const scores = live.map((v) => loadScore(v, metric, true));
        const worst = Math.max(...scores);
        fc.pre(scores.filter((s) => s === worst).length === 1);
        const worstId = live[scores.indexOf(worst)]!.member.id;
        const policy = new P2cPolicy({ metric, random: seededRandom(seed) });
        for (let i = 0; i < 50; i++) assert.notEqual(policy.pick({ members: pool })?.id, worstId);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('picks the r-th least loaded of n with probability 2(n - r) / (n (n - 1))', () => {
    const loadsArb = fc
      .integer({ min: 2, max: 8 })
      .chain((n) => fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }));
    fc.assert(
      fc.property(loadsArb, fc.nat(), (loads, seed) => {
        const n = loads.length;
        const pool = loads.map((connections, i) => view(`m${i}`, { load: { connections } }));
        const policy = new P2cPolicy({ random: seededRandom(seed) });
        const draws = 20_000;
        const counts = tally(draws, () => policy.pick({ members: pool })?.id);
        const expected = new Map(
          pool.map((v) => {
            const rank = 1 + pool.filter((o) => o.load!.connections < v.load!.connections).length;
            return [v.member.id, (2 * (n - rank)) / (n * (n - 1))];
          }),
        );
        for (const [id, p] of expected) if (p === 0) expected.delete(id);
        const problem = proportionsProblem(counts, expected, draws);
        assert.equal(problem, undefined, problem);
      }),
      { seed: SEED, numRuns: 20 },
    );
  });

  it('normalises by weight: a member with 4x the weight may carry 4x the load', () => {
    const pool = [
      view('light', { weight: 1, load: { connections: 3 } }),
      view('heavy', { weight: 4, load: { connections: 8 } }),
    ];
    const policy = new P2cPolicy({ random: seededRandom(5) });
    for (let i = 0; i < 100; i++) assert.equal(policy.pick({ members: pool })?.id, 'heavy');
  });

  it('with one eligible member returns it without drawing', () => {
    const policy = new P2cPolicy({
      random: () => {
        throw new Error('should not draw');
      },
    });
    assert.equal(policy.pick({ members: [view('only'), view('gone', { health: 'down' })] })?.id, 'only');
  });
});
