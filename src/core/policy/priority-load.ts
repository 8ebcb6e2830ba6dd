import { InvalidArgumentError } from '../../errors.js';
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
import { sanitizeWeight, weightedIndex } from './weighted-random.js';

export interface PriorityLoadOptions {
  /** The "connected users" of the formula; `users` by default. A missing load report reads as 0. */
  readonly metric?: LoadMetric;
  /**
   * Capacity-aware variant of the formula (default false). The seed formula over raw counts
   * equalises users, not utilisation: with uneven capacities a small server fills up as fast as
   * a big one. With this set, each member's load is its count per unit of `member.weight`,
   * `load_i = users_i / weight_i`, and
   *
   *     P(i) ∝ weight_i · (1 - load_i / Σ_j load_j)      (renormalised to sum to 1)
   *
   * so a member with twice the weight and the same load per unit of weight gets twice the
   * chance. With equal weights this is exactly the seed formula. See `loadShareProbabilities`.
   */
  readonly normalizeByWeight?: boolean;
  /**
   * Sharpened formula (default false): each member's factor `1 - load_i / Σ load` is raised to
   * the power `live - 1` before renormalising, `P(i) ∝ weight_i · (1 - load_i / Σ load)^(live-1)`.
   * The seed formula's pull toward the emptier server is at most 1/(live - 1) (with ten servers,
   * one carrying twice the average still gets 0.089 instead of 0.1), so in practice it spreads
   * clients about as evenly as weighted random. Raised to `live - 1`, a member 10 % above the
   * average gets about 10 % fewer new clients (elasticity about 1), which evens out sampling
   * noise while staying gentle enough for lists a second or more stale (bench/list.ts).
   * With one server, or all loads equal, it is the same as the formula.
   */
  readonly sharpen?: boolean;
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

/** Probabilities in proportion to `w` (non-negative, summing to `sumOf` > 0). */
function byWeight(w: readonly number[], sumOf: number): number[] {
  return w.map((x) => x / sumOf);
}

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
 *
 * With `weights` (one per count; `PriorityLoadOptions.normalizeByWeight`), the capacity-aware
 * form: `load_i = users_i / weight_i` and `P(i) ∝ weight_i · (1 - load_i / Σ_j load_j)`,
 * renormalised. With equal weights that is the formula above (the factor w and the sum
 * w · (live - 1) cancel). The edge cases keep their meaning, with "uniform" becoming
 * "proportional to weight" (the limit of the formula, and uniform when the weights are equal):
 * - one server: `[1]`, whatever its weight;
 * - a weight that is not a positive finite number: that server gets 0 and the formula runs on
 *   the others (if no server has a usable weight: as if all weights were equal);
 * - all loads 0: proportional to weight;
 * - an infinite count (or load): 0 for that server, the finite ones in proportion to weight;
 *   every load infinite: proportional to weight.
 * Throws InvalidArgumentError if `weights` and `users` differ in length.
 */
export function loadShareProbabilities(
  users: readonly number[],
  weights?: readonly number[],
  exponent = 1,
): number[] {
  if (weights !== undefined) return weightedLoadShare(users, weights, exponent);
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
    const f = 1 - clean(users[i]!) / max / total;
    const v = (f > 0 ? (exponent === 1 ? f : f ** exponent) : 0) / (n - 1);
    const clamped = v > 0 ? Math.min(v, 1) : 0;
    p.push(clamped);
    sum += clamped;
  }
  if (!(sum > 0)) return uniform(n);
  if (sum !== 1) for (let i = 0; i < n; i++) p[i] = p[i]! / sum;
  return p;
}

function weightedLoadShare(users: readonly number[], weights: readonly number[], exponent: number): number[] {
  const n = users.length;
  if (weights.length !== n) {
    throw new InvalidArgumentError(
      `priority-load: expected one weight per user count (${n}), got ${weights.length}`,
    );
  }
  if (n === 0) return [];
  if (n === 1) return [1];
  // Weights scaled by the largest usable one (so in (0, 1]); 0 means unusable.
  let wMax = 0;
  for (let i = 0; i < n; i++) {
    const w = sanitizeWeight(weights[i]!);
    if (w > wMax) wMax = w;
  }
  if (wMax === 0) return loadShareProbabilities(users, undefined, exponent);
  const w = weights.map((x) => sanitizeWeight(x) / wMax);
  // Servers without a usable weight are left out (probability 0); the formula runs on the rest.
  if (w.includes(0)) {
    const keep: number[] = [];
    for (let i = 0; i < n; i++) if (w[i]! > 0) keep.push(i);
    const sub = weightedLoadShare(
      keep.map((i) => users[i]!),
      keep.map((i) => w[i]!),
      exponent,
    );
    const p = new Array<number>(n).fill(0);
    keep.forEach((i, k) => {
      p[i] = sub[k]!;
    });
    return p;
  }
  let uMax = 0;
  for (let i = 0; i < n; i++) {
    const u = users[i]!;
    if (u !== Number.POSITIVE_INFINITY && u > uMax) uMax = u; // NaN and negatives never exceed 0
  }
  // Load per unit of weight, counts scaled by the largest finite one; an infinite count is an
  // infinite load.
  const load = new Array<number>(n);
  let wFinite = 0;
  let wAll = 0;
  for (let i = 0; i < n; i++) {
    const wi = w[i]!;
    const u = users[i]!;
    if (u === Number.POSITIVE_INFINITY) {
      load[i] = Number.POSITIVE_INFINITY;
    } else {
      load[i] = uMax === 0 ? 0 : clean(u) / uMax / wi;
    }
    if (load[i] !== Number.POSITIVE_INFINITY) wFinite += wi;
    wAll += wi;
  }
  // Every usable server infinitely loaded: proportional to weight.
  if (wFinite === 0) return byWeight(w, wAll);
  const finiteWeights = w.map((wi, i) => (load[i] === Number.POSITIVE_INFINITY ? 0 : wi));
  // Summed scaled by the largest finite load, so that the total cannot overflow.
  let lMax = 0;
  let infinite = false;
  for (let i = 0; i < n; i++) {
    if (load[i] === Number.POSITIVE_INFINITY) infinite = true;
    else if (load[i]! > lMax) lMax = load[i]!;
  }
  let total = 0;
  if (!infinite && lMax > 0) for (let i = 0; i < n; i++) total += load[i]! / lMax;
  // Some infinite (the others share in proportion to weight), or no load at all.
  if (infinite || total === 0) return byWeight(finiteWeights, wFinite);
  const p = new Array<number>(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const f = 1 - load[i]! / lMax / total;
    const v = f > 0 ? w[i]! * (exponent === 1 ? f : f ** exponent) : 0;
    const clamped = v;
    p[i] = clamped;
    sum += clamped;
  }
  if (!(sum > 0) || !Number.isFinite(sum)) return byWeight(finiteWeights, wFinite);
  for (let i = 0; i < n; i++) p[i] = p[i]! / sum;
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
  options: Pick<PriorityLoadOptions, 'metric' | 'normalizeByWeight' | 'sharpen'> = {},
): number[] {
  const metric = options.metric ?? 'users';
  assertLoadMetric(metric, 'priority-load: option metric');
  const group = bestGroup(members);
  const p = loadShareProbabilities(
    group.map((v) => loadMetric(v.load, metric)),
    options.normalizeByWeight === true ? group.map((v) => v.member.weight) : undefined,
    options.sharpen === true ? Math.max(1, group.length - 1) : 1,
  );
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
 * emptier server is more likely. `member.weight` is not used (the seed's formula has none)
 * unless `normalizeByWeight` is set: then the load is users per unit of weight and each
 * member's share is scaled by its weight (capacity-aware; identical for equal weights), which
 * evens out utilisation rather than user counts when capacities differ.
 */
export class PriorityLoadPolicy implements Policy {
  readonly name = 'priority-load';
  readonly #read: (load: LoadReport | undefined) => number;
  readonly #random: Random;
  readonly #normalize: boolean;
  readonly #sharpen: boolean;
  readonly #group: Member[] = [];
  readonly #users: number[] = [];
  readonly #weights: number[] = [];

  constructor(options: PriorityLoadOptions = {}) {
    const metric = options.metric ?? 'users';
    assertLoadMetric(metric, 'priority-load: option metric');
    this.#read = metricReader(metric);
    this.#random = options.random ?? Math.random;
    if (options.normalizeByWeight !== undefined && typeof options.normalizeByWeight !== 'boolean') {
      throw new InvalidArgumentError(
        `priority-load: option normalizeByWeight: expected true or false, got ${JSON.stringify(options.normalizeByWeight)}`,
      );
    }
    this.#normalize = options.normalizeByWeight ?? false;
    if (options.sharpen !== undefined && typeof options.sharpen !== 'boolean') {
      throw new InvalidArgumentError(
        `priority-load: option sharpen: expected true or false, got ${JSON.stringify(options.sharpen)}`,
      );
    }
    this.#sharpen = options.sharpen ?? false;
  }

  pick(request: PickRequest): Member | undefined {
    const live = eligible(request.members);
    if (live.length === 0) return undefined;
    let lowest = live[0]!.member.group;
    for (const v of live) if (v.member.group < lowest) lowest = v.member.group;
    const group = this.#group;
    const users = this.#users;
    const weights = this.#weights;
    group.length = 0;
    users.length = 0;
    weights.length = 0;
    for (const v of live) {
      if (v.member.group !== lowest) continue;
      group.push(v.member);
      users.push(this.#read(v.load));
      weights.push(v.member.weight);
    }
    if (group.length === 1) return group[0];
    const p = loadShareProbabilities(
      users,
      this.#normalize ? weights : undefined,
      this.#sharpen ? group.length - 1 : 1,
    );
    return group[weightedIndex(p, identity, this.#random)];
  }
}
