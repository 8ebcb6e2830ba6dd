/**
 * The range plan of a self-selecting cluster (seed 002: C2.3, C2.6, C2.7): which member accepts
 * which connection values (`value.ts`), in proportion to availability.
 *
 * `planRanges` reuses the core's bucketed weighted rendezvous (`computeRanges` in
 * `src/core/policy/ranges.ts`) unchanged: the space is cut into B buckets (4000 by default, 8
 * values each over the default 32000 values); bucket b goes to the member with the greatest
 * `availability / -ln(u(id, b))`, an exponential race that each member wins with probability
 * exactly `a_i / A` (A = the sum of availabilities). Pure and deterministic: the same members and
 * availabilities give the same plan on every peer, in any order, in any JavaScript engine.
 *
 * Bounds (B buckets, A = sum of availabilities, s_i = member i's share in a plan):
 * - Coverage, exact: the ranges do not overlap and together cover the space exactly.
 * - Isolation, exact for every input: when members join, leave or change availability, a bucket
 *   changes owner only if its old or its new owner is one of the changed members; no value ever
 *   moves between two unchanged members. (Members count as changed when their effective
 *   availability changes: one that is <= 0 or not finite counts as 0, and while every
 *   availability is 0 all count as 1, so the step into or out of "all zero" changes everyone.)
 * - Amount, exact for one changed member X: the moved share is `|s'_X - s_X|`: its whole new
 *   share for a join, exactly its old share for a leave (C2.6: spread over the others), the
 *   difference for a change. No allocation with these shares can move less. In expectation that
 *   is `c / (A + c)` for a join of availability c, `c / A` for a leave, and
 *   `|c' / (A - c + c') - c / A|` for a change c -> c'.
 * - Proportion, statistical: E[s_i] = a_i / A exactly; the realised share deviates by a binomial
 *   error of standard deviation `sqrt(p (1 - p) / B)` (p = a_i / A): 0.47 percentage points for
 *   10 equal members at B = 4000, 0.17 at B = 32000 (one value per bucket). Not "within a few
 *   buckets": no pure function of the current members can have both the isolation bound above
 *   and shares exact to a few buckets for arbitrary member ids (docs/cluster.md). The agents'
 *   feedback absorbs the bias: a member that gets more than its share gets busier, reports less
 *   availability and is given less.
 * Cost O(B * n) hash evaluations: about 1.5 ms for 10 members and 5 ms for 100 at B = 4000
 * (measured on the development machine, Node 20).
 * Pure: no `node:` imports.
 */

import { computeRanges, type RangeSpace, resolveRangesOptions } from '../core/policy/ranges.js';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_VALUE_SPACE } from './value.js';

/** A member as the plan sees it: its id and its latest availability (C2.4). */
export interface PlanMember {
  readonly id: string;
  /** Any number; <= 0 or not finite means "give it nothing". */
  readonly availability: number;
}

export interface PlanOptions {
  /** The value space, inclusive; `{ lo: 0, hi: 31999 }` by default (same as `value.ts`). */
  readonly space?: RangeSpace;
  /** Number of buckets, 1..2^20, capped at the number of values; 4000 by default. */
  readonly buckets?: number;
  /** Version of the plan, a safe integer >= 0; 0 by default. Whoever computes plans increases it. */
  readonly epoch?: number;
}

/** An inclusive interval `[lo, hi]` of connection values. */
export type ValueInterval = readonly [number, number];

export interface RangePlan {
  readonly epoch: number;
  readonly space: RangeSpace;
  /** Buckets actually used. Bucket b holds the values `lo + floor(b * N / B)` .. `lo + floor((b + 1) * N / B) - 1`. */
  readonly buckets: number;
  /** Bucket index -> member id; empty when there are no members. */
  readonly owners: readonly string[];
  /** Member id -> its values as sorted, merged, inclusive intervals (`[]` for a member given nothing). */
  readonly ranges: Readonly<Record<string, readonly ValueInterval[]>>;
  /** Member id -> fraction of the space it owns (they sum to 1 when there are members). */
  readonly shares: Readonly<Record<string, number>>;
}

export const DEFAULT_PLAN_BUCKETS = 4000;

function resolve(options: PlanOptions): { space: RangeSpace; buckets: number; epoch: number } {
  const epoch = options.epoch ?? 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0) {
    throw new InvalidArgumentError(`planRanges: option epoch: expected a safe integer >= 0, got ${epoch}`);
  }
  const { space, buckets } = resolveRangesOptions({
    space: options.space ?? DEFAULT_VALUE_SPACE,
    buckets: options.buckets ?? DEFAULT_PLAN_BUCKETS,
  });
  return { space: Object.freeze({ ...space }), buckets, epoch };
}

/** Availability as the plan uses it: finite and > 0, else 0. */
function effective(availability: number): number {
  return typeof availability === 'number' && Number.isFinite(availability) && availability > 0
    ? availability
    : 0;
}

function checkMembers(members: readonly PlanMember[], who: string): void {
  const seen = new Set<string>();
  for (const m of members) {
    if (typeof m.id !== 'string')
      throw new InvalidArgumentError(`${who}: member id: expected a string, got ${m.id}`);
    if (seen.has(m.id)) throw new InvalidArgumentError(`${who}: duplicate member id ${JSON.stringify(m.id)}`);
    seen.add(m.id);
  }
}

function bucketStart(space: RangeSpace, buckets: number, b: number): number {
  return space.lo + Math.floor((b * (space.hi - space.lo + 1)) / buckets);
}

/** Builds the frozen plan from the bucket owners (shared by both planners). */
function assemble(
  members: readonly PlanMember[],
  owners: string[],
  space: RangeSpace,
  buckets: number,
  epoch: number,
): RangePlan {
  const ranges: Record<string, ValueInterval[]> = Object.create(null);
  const shares: Record<string, number> = Object.create(null);
  for (const m of members) {
    ranges[m.id] = [];
    shares[m.id] = 0;
  }
  const size = space.hi - space.lo + 1;
  for (let b = 0; b < owners.length; ) {
    const id = owners[b]!;
    let end = b + 1;
    while (end < owners.length && owners[end] === id) end++;
    const lo = bucketStart(space, buckets, b);
    const hi = bucketStart(space, buckets, end) - 1;
    ranges[id]!.push(Object.freeze([lo, hi] as const));
    shares[id]! += (hi - lo + 1) / size;
    b = end;
  }
  for (const id of Object.keys(ranges)) Object.freeze(ranges[id]);
  return Object.freeze({
    epoch,
    space,
    buckets,
    owners: Object.freeze(owners),
    ranges: Object.freeze(ranges),
    shares: Object.freeze(shares),
  });
}

/**
 * The plan for these members: bucketed weighted rendezvous (module comment for the bounds).
 * Members whose availability is <= 0 or not finite get nothing; if that is all of them, the
 * space is split evenly among all (a cluster that accepts nothing is worse). Throws
 * InvalidArgumentError for duplicate ids or bad options. O(B * n).
 */
export function planRanges(members: readonly PlanMember[], options: PlanOptions = {}): RangePlan {
  const { space, buckets, epoch } = resolve(options);
  checkMembers(members, 'planRanges');
  const allocation = computeRanges(
    members.map((m) => ({ id: m.id, capacity: effective(m.availability) })),
    { space, buckets },
  );
  const owners: string[] = [];
  if (allocation.ranges.length > 0) {
    let r = 0;
    for (let b = 0; b < buckets; b++) {
      const start = bucketStart(space, buckets, b);
      while (allocation.ranges[r]!.hi < start) r++;
      owners.push(allocation.ranges[r]!.memberId);
    }
  }
  return assemble(members, owners, space, buckets, epoch);
}

/**
 * The naive baseline: one contiguous slice per member, in id order, sized in proportion to
 * availability (rounded to whole buckets; same options and zero rules as `planRanges`). Shares
 * are exact to a bucket, but any change re-slices the space and moves values between members
 * that did not change. Kept for the benchmark and the tests that show the difference.
 */
export function naiveProportionalPlan(members: readonly PlanMember[], options: PlanOptions = {}): RangePlan {
  const { space, buckets, epoch } = resolve(options);
  checkMembers(members, 'naiveProportionalPlan');
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let weights = sorted.map((m) => effective(m.availability));
  let total = weights.reduce((s, w) => s + w, 0);
  if (total === 0) {
    weights = sorted.map(() => 1);
    total = sorted.length;
  }
  const owners: string[] = [];
  let cumulative = 0;
  for (let i = 0; i < sorted.length; i++) {
    cumulative += weights[i]!;
    const end = i === sorted.length - 1 ? buckets : Math.round((buckets * cumulative) / total);
    while (owners.length < end) owners.push(sorted[i]!.id);
  }
  return assemble(members, owners, space, buckets, epoch);
}

/** The bucket that holds `value` (which must lie in the space). */
function bucketOf(plan: RangePlan, value: number): number {
  const { space, buckets } = plan;
  const size = space.hi - space.lo + 1;
  let b = Math.min(buckets - 1, Math.floor(((value - space.lo) * buckets) / size));
  // Correct any floating-point slip so that the answer agrees with bucketStart exactly.
  while (b > 0 && bucketStart(space, buckets, b) > value) b--;
  while (b < buckets - 1 && bucketStart(space, buckets, b + 1) <= value) b++;
  return b;
}

/** The member that accepts `value`, or undefined (no members, or not an integer in the space). O(1). */
export function ownerOf(plan: RangePlan, value: number): string | undefined {
  const { lo, hi } = plan.space;
  if (!Number.isInteger(value) || value < lo || value > hi || plan.owners.length === 0) return undefined;
  return plan.owners[bucketOf(plan, value)];
}

/** Runs of equal owners as `[lo, hi, owner]`, sorted; one ownerless run for an empty plan. */
function runs(plan: RangePlan): Array<[number, number, string | undefined]> {
  const { space, buckets, owners } = plan;
  if (owners.length === 0) return [[space.lo, space.hi, undefined]];
  const out: Array<[number, number, string | undefined]> = [];
  for (let b = 0; b < owners.length; ) {
    let end = b + 1;
    while (end < owners.length && owners[end] === owners[b]) end++;
    out.push([bucketStart(space, buckets, b), bucketStart(space, buckets, end) - 1, owners[b]]);
    b = end;
  }
  return out;
}

/**
 * The fraction of the value space (0..1) whose owner differs between two plans over the same
 * space (bucket counts may differ). Throws InvalidArgumentError when the spaces differ.
 */
export function movedShare(a: RangePlan, b: RangePlan): number {
  if (a.space.lo !== b.space.lo || a.space.hi !== b.space.hi) {
    throw new InvalidArgumentError(
      `movedShare: expected plans over the same space, got ${JSON.stringify(a.space)} and ${JSON.stringify(b.space)}`,
    );
  }
  const ra = runs(a);
  const rb = runs(b);
  let moved = 0;
  let i = 0;
  let j = 0;
  let at = a.space.lo;
  while (i < ra.length && j < rb.length) {
    const [, hiA, ownerA] = ra[i]!;
    const [, hiB, ownerB] = rb[j]!;
    const hi = Math.min(hiA, hiB);
    if (ownerA !== ownerB) moved += hi - at + 1;
    at = hi + 1;
    if (hiA === hi) i++;
    if (hiB === hi) j++;
  }
  return moved / (a.space.hi - a.space.lo + 1);
}

/** True when plan `a` is newer than plan `b` (a greater epoch). A plan with a lower epoch than the one in force is stale. */
export function isNewer(a: Pick<RangePlan, 'epoch'>, b: Pick<RangePlan, 'epoch'>): boolean {
  return a.epoch > b.epoch;
}
