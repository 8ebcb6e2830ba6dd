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

/** What `EligibleCache.get` returns. */
export interface EligibleSnapshot<T> {
  /** The derived value, built from the members' ids and weights. */
  readonly value: T;
  /**
   * The current eligible `Member` objects in canonical order: ascending id (UTF-16 code units),
   * one per id (the first listed wins should a snapshot repeat an id). Always the objects of the
   * latest call, so a changed address or label is never served stale.
   */
  readonly members: readonly Member[];
}

/**
 * Holds one value derived from a pool's eligible members and their weights (a Maglev table, a
 * range allocation, a sorted order) and rebuilds it only when the set of eligible ids or their
 * weights change. The value must refer to members by id or by position in the canonical order
 * (see `EligibleSnapshot.members`), never hold `Member` objects, so that a member that changed
 * something else (an address, a label) is served as it is now without a rebuild.
 * The fast path (the same `Member` objects in the same order as last time, the usual case between
 * membership changes; new load reports keep the `Member` objects) costs n identity checks and no
 * allocation. Otherwise the canonical order is sorted again and its (id, weight) signature decides
 * whether to rebuild.
 */
export class EligibleCache<T> {
  #input: readonly Member[] = [];
  #snapshot: EligibleSnapshot<T> | undefined;
  #signature: string | undefined;
  #builds = 0;
  readonly #build: (members: readonly Member[]) => T;

  /** `build` receives the eligible members in canonical order (ascending id, unique ids). */
  constructor(build: (members: readonly Member[]) => T) {
    this.#build = build;
  }

  /** How many times the value was built (for tests and metrics). */
  get builds(): number {
    return this.#builds;
  }

  get(views: readonly MemberView[]): EligibleSnapshot<T> {
    const input = this.#input;
    const cached = this.#snapshot;
    if (cached !== undefined && input.length === views.length) {
      let same = true;
      for (let i = 0; i < views.length; i++) {
        if (views[i]!.member !== input[i]) {
          same = false;
          break;
        }
      }
      if (same) return cached;
    }
    const seen = new Set<string>();
    const members: Member[] = [];
    for (const v of views) {
      if (seen.has(v.member.id)) continue;
      seen.add(v.member.id);
      members.push(v.member);
    }
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const signature = members.map((m) => `${m.id}\u0000${m.weight}`).join('\u0001');
    let value: T;
    if (cached === undefined || signature !== this.#signature) {
      value = this.#build(members);
      this.#signature = signature;
      this.#builds++;
    } else {
      value = cached.value;
    }
    this.#snapshot = { value, members };
    this.#input = views.map((v) => v.member);
    return this.#snapshot;
  }
}
