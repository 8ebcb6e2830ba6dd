import {
  eligible,
  type LoadMetric,
  type LoadReport,
  loadMetric,
  type Member,
  type MemberView,
} from '../model.js';
import { assertLoadMetric, metricReader } from './least-loaded.js';
import type { PickRequest, Policy, Random } from './policy.js';
import { weightedIndex } from './weighted-random.js';

export interface PriorityLoadOptions {
  /** The "connected users" of the formula; `users` by default. A missing load report reads as 0. */
  readonly metric?: LoadMetric;
  /** Source of uniform numbers in [0, 1); `Math.random` by default. */
  readonly random?: Random;
}

/** NaN and negative counts count as 0. */
function clean(u: number): number {
  return Number.isNaN(u) || u < 0 ? 0 : u;
}

function uniform(n: number): number[] {
  return new Array<number>(n).fill(1 / n);
}

const identity = (x: number) => x;

/**
 * The seed-003 formula (SEEDS.md L3.4) over the user counts of the live servers of one group:
 *
 *     P(i) = (1 - users_i / total_users) / (live - 1)
 *
 * For live >= 2 and total > 0 these sum to exactly 1 and are all >= 0, so they are used as
 * they are (a server carrying every user gets 0, the others share 1). The edge cases:
 * - no server: `[]`;
 * - one live server: `[1]` (the formula would be 0/0);
 * - total users 0 (or every count unusable): uniform, 1/live each;
 * - a count that is negative or NaN counts as 0; `+Infinity` is the limit of the formula (that
 *   server gets 0, the finite ones share the rest uniformly); all infinite: uniform;
 * - if rounding ever left every probability at 0, uniform.
 * Counts are scaled by the largest before summing, so huge counts cannot overflow the total.
 * The result is renormalised so that it sums to 1 despite rounding.
 */
export function loadShareProbabilities(users: readonly number[]): number[] {
  const n = users.length;
  if (n === 0) return [];
  if (n === 1) return [1];
  let infinite = 0;
  let max = 0;
  for (let i = 0; i < n; i++) {
    const u = users[i]!;
    if (u === Number.POSITIVE_INFINITY) infinite++;
    else if (u > max) max = u; // NaN and negatives never exceed 0
  }
  if (infinite === n) return uniform(n);
  if (infinite > 0) return users.map((u) => (u === Number.POSITIVE_INFINITY ? 0 : 1 / (n - infinite)));
  if (max === 0) return uniform(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += clean(users[i]!) / max;
  const p: number[] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = (1 - clean(users[i]!) / max / total) / (n - 1);
    const clamped = v > 0 ? Math.min(v, 1) : 0;
    p.push(clamped);
    sum += clamped;
  }
  if (!(sum > 0)) return uniform(n);
  if (sum !== 1) for (let i = 0; i < n; i++) p[i] = p[i]! / sum;
  return p;
}

/** The members the policy draws from: eligible ones of the lowest group number that has any. */
function bestGroup(members: readonly MemberView[]): MemberView[] {
  const live = eligible(members);
  if (live.length === 0) return live;
  let group = live[0]!.member.group;
  for (const v of live) if (v.member.group < group) group = v.member.group;
  return live.filter((v) => v.member.group === group);
}

/**
 * The probability with which `PriorityLoadPolicy` picks each member, aligned with `members`
 * (0 for members that are down, draining, or outside the chosen group). Sums to 1 unless no
 * member is eligible (then all 0). Meant for display (the list SDK shows it beside each server).
 */
export function priorityLoadProbabilities(
  members: readonly MemberView[],
  options: Pick<PriorityLoadOptions, 'metric'> = {},
): number[] {
  const metric = options.metric ?? 'users';
  assertLoadMetric(metric, 'priority-load: option metric');
  const group = bestGroup(members);
  const p = loadShareProbabilities(group.map((v) => loadMetric(v.load, metric)));
  const byView = new Map<MemberView, number>();
  group.forEach((v, i) => {
    byView.set(v, p[i]!);
  });
  return members.map((v) => byView.get(v) ?? 0);
}

/**
 * Seed 003's client-side choice (L3.4): only live members (`eligible()`: up, or suspect when
 * none is up), only the lowest group number that has one (group 0 is primary, 1 the first
 * fallback, ...), then random weighted by `loadShareProbabilities` of their user counts, so an
 * emptier server is more likely. `member.weight` is not used (the seed's formula has none).
 */
export class PriorityLoadPolicy implements Policy {
  readonly name = 'priority-load';
  readonly #read: (load: LoadReport | undefined) => number;
  readonly #random: Random;
  readonly #group: Member[] = [];
  readonly #users: number[] = [];

  constructor(options: PriorityLoadOptions = {}) {
    const metric = options.metric ?? 'users';
    assertLoadMetric(metric, 'priority-load: option metric');
    this.#read = metricReader(metric);
    this.#random = options.random ?? Math.random;
  }

  pick(request: PickRequest): Member | undefined {
    const live = eligible(request.members);
    if (live.length === 0) return undefined;
    let lowest = live[0]!.member.group;
    for (const v of live) if (v.member.group < lowest) lowest = v.member.group;
    const group = this.#group;
    const users = this.#users;
    group.length = 0;
    users.length = 0;
    for (const v of live) {
      if (v.member.group !== lowest) continue;
      group.push(v.member);
      users.push(this.#read(v.load));
    }
    if (group.length === 1) return group[0];
    return group[weightedIndex(loadShareProbabilities(users), identity, this.#random)];
  }
}
