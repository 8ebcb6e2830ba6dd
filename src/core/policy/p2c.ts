import { eligible, type LoadMetric, type LoadReport, type Member } from '../model.js';
import { assertLoadMetric, metricReader, scoreOf } from './least-loaded.js';
import type { PickRequest, Policy, Random } from './policy.js';
import { randomIndex } from './random.js';

export interface P2cOptions {
  /** Metric to compare; `connections` by default. A missing load report reads as 0. */
  readonly metric?: LoadMetric;
  /** Source of uniform numbers in [0, 1); `Math.random` by default. */
  readonly random?: Random;
}

/**
 * Power of two choices (Mitzenmacher): draw two distinct eligible members uniformly at random
 * and take the one with the lower metric per unit of weight (`metric / weight`); on a tie, the
 * first drawn (itself a uniform choice). With one eligible member, that member. Two calls to
 * `random` per pick; the load signal only has to be roughly right, and stale reports do not make
 * every balancer pile onto the same member as pure least-loaded can.
 */
export class P2cPolicy implements Policy {
  readonly name = 'p2c';
  readonly #read: (load: LoadReport | undefined) => number;
  readonly #random: Random;

  constructor(options: P2cOptions = {}) {
    const metric = options.metric ?? 'connections';
    assertLoadMetric(metric, 'p2c: option metric');
    this.#read = metricReader(metric);
    this.#random = options.random ?? Math.random;
  }

  pick(request: PickRequest): Member | undefined {
    const members = eligible(request.members);
    const n = members.length;
    if (n === 0) return undefined;
    if (n === 1) return members[0]!.member;
    const i = randomIndex(n, this.#random);
    let j = randomIndex(n - 1, this.#random);
    if (j >= i) j++;
    const a = members[i]!;
    const b = members[j]!;
    const scoreA = scoreOf(this.#read(a.load), a.member.weight, true);
    const scoreB = scoreOf(this.#read(b.load), b.member.weight, true);
    return scoreB < scoreA ? b.member : a.member;
  }
}
