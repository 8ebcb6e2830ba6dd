import { eligible, type Member } from '../model.js';
import type { PickRequest, Policy, Random } from './policy.js';

export interface RandomOptions {
  /** Source of uniform numbers in [0, 1); `Math.random` by default. */
  readonly random?: Random;
}

/** Uniformly random among the eligible members, ignoring weights and load. */
export class RandomPolicy implements Policy {
  readonly name = 'random';
  readonly #random: Random;

  constructor(options: RandomOptions = {}) {
    this.#random = options.random ?? Math.random;
  }

  pick(request: PickRequest): Member | undefined {
    const members = eligible(request.members);
    if (members.length === 0) return undefined;
    return members[randomIndex(members.length, this.#random)]!.member;
  }
}

/** A uniform index in 0..n-1 from `random`, safe against a source that returns exactly 1. */
export function randomIndex(n: number, random: Random): number {
  const i = Math.floor(random() * n);
  return Math.min(n - 1, Math.max(0, i));
}
