import type { Member, MemberView } from '../model.js';

/**
 * What a policy is asked: the pool's members as currently seen, and an optional key
 * (a hash of the client's address, a connection value) for policies that are deterministic.
 */
export interface PickRequest {
  /** Members of the pool with health and load. The policy applies `eligible()` itself. */
  readonly members: readonly MemberView[];
  /** Key for deterministic policies (consistent hashing, ranges). Unsigned 32-bit integer or string. */
  readonly key?: number | string;
}

/** One selection policy. `pick` returns undefined when no member is eligible. */
export interface Policy {
  /** Stable name used in configuration (`round-robin`, `maglev`, ...). */
  readonly name: string;
  pick(request: PickRequest): Member | undefined;
}

/** A source of uniform random numbers in [0, 1); injectable so tests can be deterministic. */
export type Random = () => number;
