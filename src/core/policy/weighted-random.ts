import { eligible, type Member, type MemberView } from '../model.js';
import type { PickRequest, Policy, Random } from './policy.js';
import { randomIndex } from './random.js';

export interface WeightedRandomOptions {
  /** Source of uniform numbers in [0, 1); `Math.random` by default. */
  readonly random?: Random;
}

/**
 * Random among the eligible members with probability proportional to `member.weight`
 * (P(i) = w_i / sum w). Weights that are not positive finite numbers count as 0; if no member
 * has a positive weight, the choice is uniform.
 */
export class WeightedRandomPolicy implements Policy {
  readonly name = 'weighted-random';
  readonly #random: Random;

  constructor(options: WeightedRandomOptions = {}) {
    this.#random = options.random ?? Math.random;
  }

  pick(request: PickRequest): Member | undefined {
    const members = eligible(request.members);
    if (members.length === 0) return undefined;
    return members[weightedIndex(members, viewWeight, this.#random)]!.member;
  }
}

const viewWeight = (v: MemberView) => v.member.weight;

/** A usable weight: positive and finite, else 0. */
export function sanitizeWeight(w: number): number {
  return w > 0 && Number.isFinite(w) ? w : 0;
}

/**
 * Index of an item drawn with probability proportional to `weightOf(item)` (non-positive or
 * non-finite weights count as 0; all zero means uniform). `items` must not be empty.
 * One call to `random`, two passes over the items.
 */
export function weightedIndex<T>(items: readonly T[], weightOf: (item: T) => number, random: Random): number {
  let total = 0;
  for (const item of items) total += sanitizeWeight(weightOf(item));
  if (!(total > 0) || !Number.isFinite(total)) return randomIndex(items.length, random);
  let target = random() * total;
  let lastPositive = 0;
  for (let i = 0; i < items.length; i++) {
    const w = sanitizeWeight(weightOf(items[i]!));
    if (w === 0) continue;
    lastPositive = i;
    if (target < w) return i;
    target -= w;
  }
  // Rounding left a sliver past the last weight: it belongs to the last positive item.
  return lastPositive;
}
