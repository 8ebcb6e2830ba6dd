import { InvalidArgumentError } from '../../errors.js';
import { fmix32, hashToSpace, murmur3 } from '../hash.js';
import { eligible, type Member } from '../model.js';
import { EligibleCache, type PickRequest, type Policy, type Random } from './policy.js';
import { sanitizeWeight } from './weighted-random.js';

/**
 * Capacity-proportional ranges over a value space (seed 002: C2.3, C2.6, C2.7).
 *
 * Every cluster member computes the same connection value for a request (C2.2) and accepts it
 * only if the value lies in its own range. `computeRanges` is the pure function from the view
 * (member ids and capacities) to the ranges; peers that hold the same view compute the same
 * ranges, whatever order they list the members in, in any JavaScript engine (integer hashing
 * plus a logarithm made of + - * / only, so no engine-dependent `Math.log`).
 *
 * Design: weighted rendezvous hashing over buckets. The space `lo..hi` is cut into B buckets of
 * equal size (to within one value); bucket b goes to the member with the greatest score
 * `capacity / -ln(u)`, where `u = (h + 0.5) / 2^32` and `h = combine32(murmur3(id), b)`; adjacent
 * buckets of one member are merged into one range. `-ln(u)` is an Exp(1) draw, so this is an
 * exponential race: each bucket goes to member i with probability exactly `c_i / C`.
 *
 * Guarantees:
 * - Coverage: the ranges are sorted, do not overlap and cover `lo..hi` exactly.
 * - Proportion: each member's expected share of the space is `p = c_i / C`; its actual share
 *   deviates by a binomial error with standard deviation `sqrt(p (1 - p) / B)`, plus at most
 *   one value per bucket from rounding. At the default B = 16384 that is 2.3% of the share for
 *   10 equal members, 7.8% for 100: more buckets, closer shares (B up to the number of values
 *   makes every value its own bucket). This noise is the price of the exact disruption bound
 *   below: a quota-based split could hit the shares exactly, but would then move values between
 *   unchanged members whenever any member changed.
 * - Cost: O(B * n) hash evaluations, logarithms mostly skipped by a bound; measured on the
 *   development machine (Node 20) about 4 ms for 10 members, 12 ms for 100 and 75 ms for 1000 at
 *   B = 16384 (`npm run bench -- policy` reports it as `details.buildMs`). Members own many
 *   small ranges (about B of them in all), not one contiguous range each.
 * - Disruption, exact for every input: when members join, leave or change capacity, a value
 *   changes owner only if its old owner or its new owner is one of the changed members. No value
 *   ever moves between two unchanged members (each bucket's race among unchanged members has the
 *   same winner before and after).
 * - Disruption, expected amount: one member of capacity c joining a cluster of total C moves
 *   `c / (C + c)` of the space, all of it to the newcomer; one leaving moves its own share `c / C`,
 *   spread over the others in proportion to capacity (C2.6); a capacity change c -> c' moves
 *   `|c' / (C - c + c') - c / C|`, all to or from that member. That is the least any allocation
 *   with these shares can move; the actual amount deviates binomially as above.
 * Capacities of 0 own nothing; if every capacity is 0 they are all treated as equal (a cluster
 * that accepts nothing is worse than an even split).
 */

/** An inclusive interval of integers. */
export interface RangeSpace {
  readonly lo: number;
  readonly hi: number;
}

/** The values `lo..hi` (inclusive) that `memberId` accepts. */
export interface MemberRange {
  readonly memberId: string;
  readonly lo: number;
  readonly hi: number;
}

export interface RangeMember {
  readonly id: string;
  /** Available capacity, a finite number >= 0 (C2.3: "share of the cluster's available capacity"). */
  readonly capacity: number;
}

export interface RangesOptions {
  /** The value space; `{ lo: 0, hi: 32000 }` by default (the seed's example). Integers, at most 2^32 values. */
  readonly space?: RangeSpace;
  /** Number of buckets B (1..2^20); 16384 by default; capped at the number of values in the space. */
  readonly buckets?: number;
}

export interface RangeAllocation {
  /** Sorted by `lo`, non-overlapping, covering the space; empty when there are no members. */
  readonly ranges: readonly MemberRange[];
  readonly space: RangeSpace;
  /** Buckets actually used. */
  readonly buckets: number;
}

export const DEFAULT_RANGE_SPACE: RangeSpace = Object.freeze({ lo: 0, hi: 32000 });
export const DEFAULT_RANGE_BUCKETS = 16384;
const MAX_BUCKETS = 1 << 20;

const LN2 = Math.LN2;
const TWO_32 = 4294967296;
/** 2^-32 shrunk by 1e-6: `(2^32 - h - 0.5) * PRUNE_SCALE` is a safe lower bound of `negLnUnit(h)`. */
const PRUNE_SCALE = (1 - 1e-6) / TWO_32;
const SQRT2 = Math.SQRT2;
/** 2^-k for k = 0..33, built by exact halving. */
const INV_POW2: number[] = [];
for (let k = 0, v = 1; k <= 33; k++, v /= 2) INV_POW2.push(v);

/**
 * `-ln((h + 0.5) / 2^32)` for a uint32 h, using only correctly rounded operations (+ - * /), so
 * every engine returns the same bits (`Math.log` is not specified to the last bit). Relative
 * error below 1e-12; always > 0, and never below `1 - u` by more than one part in 10^9 (the
 * pruning bound in `computeRanges` relies on that).
 */
export function negLnUnit(h: number): number {
  const x = h + 0.5;
  // x = m * 2^e with m in [1, 2): exact, because scaling by a power of two is exact.
  let e = h === 0 ? -1 : 31 - Math.clz32(h);
  let m = x * (e >= 0 ? INV_POW2[e]! : 2);
  if (m > SQRT2) {
    m *= 0.5;
    e += 1;
  }
  // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716; -ln u = (32 - e) ln 2 - ln m.
  const s = (m - 1) / (m + 1);
  const s2 = s * s;
  const series =
    1 + s2 * (1 / 3 + s2 * (1 / 5 + s2 * (1 / 7 + s2 * (1 / 9 + s2 * (1 / 11 + s2 * (1 / 13))))));
  return (32 - e) * LN2 - 2 * s * series;
}

function validateSpace(space: RangeSpace): RangeSpace {
  const { lo, hi } = space;
  if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || lo > hi || hi - lo + 1 > 2 ** 32) {
    throw new InvalidArgumentError(
      `ranges: option space: expected integers lo <= hi with at most 2^32 values, got ${JSON.stringify(space)}`,
    );
  }
  return { lo, hi };
}

function validateBuckets(buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > MAX_BUCKETS) {
    throw new InvalidArgumentError(
      `ranges: option buckets: expected an integer 1..${MAX_BUCKETS}, got ${buckets}`,
    );
  }
  return buckets;
}

/** Checks the options once; returns the space and the bucket count actually used. */
export function resolveRangesOptions(options: RangesOptions = {}): { space: RangeSpace; buckets: number } {
  const space = validateSpace(options.space ?? DEFAULT_RANGE_SPACE);
  const buckets = validateBuckets(options.buckets ?? DEFAULT_RANGE_BUCKETS);
  return { space, buckets: Math.min(buckets, space.hi - space.lo + 1) };
}

/**
 * The ranges for a view of the cluster. Pure and deterministic (see the module comment for the
 * guarantees). Throws InvalidArgumentError for duplicate ids or a capacity that is negative or
 * not finite. O(B * n) time.
 */
export function computeRanges(members: readonly RangeMember[], options: RangesOptions = {}): RangeAllocation {
  const { space, buckets } = resolveRangesOptions(options);
  const seen = new Set<string>();
  for (const m of members) {
    if (seen.has(m.id)) throw new InvalidArgumentError(`ranges: duplicate member id ${JSON.stringify(m.id)}`);
    seen.add(m.id);
    if (!(m.capacity >= 0) || !Number.isFinite(m.capacity)) {
      throw new InvalidArgumentError(
        `ranges: member ${JSON.stringify(m.id)}: capacity: expected a finite number >= 0, got ${m.capacity}`,
      );
    }
  }
  let racers = members.filter((m) => m.capacity > 0).map((m) => ({ id: m.id, capacity: m.capacity }));
  if (racers.length === 0) racers = members.map((m) => ({ id: m.id, capacity: 1 }));
  if (racers.length === 0) return { ranges: [], space, buckets };
  // Sorted by id so that exact score ties (vanishingly rare) go to the smaller id on every peer.
  racers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ids = racers.map((r) => r.id);
  const hashes = Int32Array.from(racers, (r) => murmur3(r.id));
  const inverse = Float64Array.from(racers, (r) => 1 / r.capacity);
  const count = racers.length;

  const size = space.hi - space.lo + 1;
  const ranges: MemberRange[] = [];
  let current = -1;
  let start = space.lo;
  for (let b = 0; b < buckets; b++) {
    // Winner: the least key = -ln(u) / capacity, i.e. the greatest capacity / -ln(u); ties go
    // to the first in id order. Since -ln(u) >= 1 - u, a member whose (1 - u) / capacity,
    // shrunk by a margin far above rounding error, is already >= the best key cannot win, and
    // its logarithm is skipped: the result is the same as without the shortcut, only faster.
    let best = 0;
    let bestKey = Number.POSITIVE_INFINITY;
    const bucketHash = fmix32((b + 0x9e3779b9) | 0); // combine32(memberHash, b), hoisted
    for (let i = 0; i < count; i++) {
      const h = fmix32(hashes[i]! ^ bucketHash);
      const inv = inverse[i]!;
      if ((TWO_32 - h - 0.5) * PRUNE_SCALE * inv >= bestKey) continue;
      const key = negLnUnit(h) * inv;
      if (key < bestKey) {
        bestKey = key;
        best = i;
      }
    }
    if (best !== current) {
      const bucketLo = space.lo + Math.floor((b * size) / buckets);
      if (current >= 0) ranges.push({ memberId: ids[current]!, lo: start, hi: bucketLo - 1 });
      current = best;
      start = bucketLo;
    }
  }
  ranges.push({ memberId: ids[current]!, lo: start, hi: space.hi });
  return { ranges, space, buckets };
}

/** The member whose range holds `value`, or undefined (no ranges, or value outside the space). O(log n). */
export function ownerOf(ranges: readonly MemberRange[], value: number): string | undefined {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (value < r.lo) hi = mid - 1;
    else if (value > r.hi) lo = mid + 1;
    else return r.memberId;
  }
  return undefined;
}

export interface RangesPolicyOptions extends RangesOptions {
  /** Draws a value when a request has no key; `Math.random` by default. */
  readonly random?: Random;
}

interface RangesTable {
  readonly allocation: RangeAllocation;
  /** Member id -> position in the snapshot's canonical member order. */
  readonly position: ReadonlyMap<string, number>;
}

/**
 * Picks the eligible member whose range (capacities = `member.weight`) holds the request's
 * value: `request.key` as is when it is an integer inside the space (a C2.2 connection value),
 * otherwise (a string, or a number outside the space) hashed into the space with `hashToSpace`.
 * Without a key, a random value: a pick proportional to weight. The ranges are computed once per
 * eligible set and weights (`EligibleCache`).
 */
export class RangesPolicy implements Policy {
  readonly name = 'ranges';
  readonly #space: RangeSpace;
  readonly #buckets: number;
  readonly #random: Random;
  readonly #cache: EligibleCache<RangesTable>;

  constructor(options: RangesPolicyOptions = {}) {
    const { space, buckets } = resolveRangesOptions(options);
    this.#space = space;
    this.#buckets = buckets;
    this.#random = options.random ?? Math.random;
    this.#cache = new EligibleCache((members) => {
      const racers = members.map((m) => ({ id: m.id, capacity: sanitizeWeight(m.weight) }));
      return {
        allocation: computeRanges(racers, { space: this.#space, buckets: this.#buckets }),
        position: new Map(members.map((m, i) => [m.id, i])),
      };
    });
  }

  /** How many times the ranges were computed (they are cached per eligible set and weights). */
  get builds(): number {
    return this.#cache.builds;
  }

  /** The current ranges for a pool (for display and for the cluster filter). */
  allocation(request: Pick<PickRequest, 'members'>): RangeAllocation {
    return this.#cache.get(eligible(request.members)).value.allocation;
  }

  /** The value a request maps to. */
  valueOf(key: number | string | undefined): number {
    const { lo, hi } = this.#space;
    if (key === undefined) return lo + Math.min(hi - lo, Math.floor(this.#random() * (hi - lo + 1)));
    if (typeof key === 'number' && Number.isInteger(key) && key >= lo && key <= hi) return key;
    return hashToSpace(key, lo, hi);
  }

  pick(request: PickRequest): Member | undefined {
    const members = eligible(request.members);
    if (members.length === 0) return undefined;
    const { value, members: current } = this.#cache.get(members);
    const id = ownerOf(value.allocation.ranges, this.valueOf(request.key));
    const at = id === undefined ? undefined : value.position.get(id);
    return at === undefined ? undefined : current[at];
  }
}
