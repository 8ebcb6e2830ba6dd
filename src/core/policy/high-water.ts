import {
  InvalidArgumentError,
  NoEligibleMemberError,
  QueueFullError,
  QueueTimeoutError,
} from '../../errors.js';
import { eligible, type Member, type MemberView } from '../model.js';
import type { Random } from './policy.js';
import { randomIndex } from './random.js';

/**
 * Choosing the origin server with a high-water mark and a bounded queue (seed 004, SEEDS.md
 * G4.11). Unlike the other policies this one is stateful: it counts what it has handed out.
 *
 * - Each member has a high-water mark: the cost units it may have in flight. A request costs
 *   by its type (database, multimedia, dynamic, static: configurable); it goes to a member
 *   whose in-flight cost plus its own stays within the mark. A request costing more than a
 *   member's whole mark may still go to that member when it is idle, so nothing waits forever.
 * - Among members with room: the freshest first (optional `freshness`: "prefer the mirror with
 *   the freshest content until it is saturated"), then the lowest in-flight cost relative to
 *   the mark, then the fewest requests of the same type in flight ("a server with no pending
 *   multimedia requests may be favored"), then uniformly at random.
 * - When no candidate has room the request waits in a bounded FIFO queue; each `release()`
 *   hands the freed room to the queued requests in arrival order, keeping a steady amount in
 *   flight on every member. A waiting request reserves the members it could use, so later
 *   requests for the same busy members queue behind it, while requests that can go to an idle
 *   member go at once (each request brings its own candidates; "requests buffered for a busy
 *   server wait while idle servers get work").
 * - A full queue rejects at once with `QueueFullError`; no eligible member, with
 *   `NoEligibleMemberError` (also a queued request, as soon as the queue moves while all of its
 *   candidates are down or draining; `reschedule()` after a pool change makes the queue move).
 *
 * I/O-free: the asynchronous part is plain promises. The only timer is the optional queue
 * timeout (`queueTimeoutMs` / `timeoutMs`), a `setTimeout` per waiting request, cleared when the
 * request leaves the queue. `AbortSignal` (optional) is standard in browsers and Node.
 */

export type RequestType = 'database' | 'multimedia' | 'dynamic' | 'static';

/** Relative resource cost per request type (seed 004 lists these four kinds). */
export const DEFAULT_REQUEST_COSTS: Readonly<Record<RequestType, number>> = Object.freeze({
  database: 4,
  multimedia: 3,
  dynamic: 2,
  static: 1,
});

export interface HighWaterOptions {
  /** Cost units each member may have in flight: one number, or per member (e.g. `m => 8 * m.weight`). Default 8. */
  readonly highWater?: number | ((member: Member) => number);
  /** Most requests that may wait; more reject with `QueueFullError`. 0 means never wait. Default 1000. */
  readonly maxQueue?: number;
  /** Cost per request type; replaces `DEFAULT_REQUEST_COSTS` when given. */
  readonly costs?: Readonly<Record<string, number>>;
  /** Cost of a request without a type or of a type not in `costs`. Default 1. */
  readonly defaultCost?: number;
  /** Prefer fresher members until they are saturated: a label holding a number, or a function. Higher is fresher. */
  readonly freshness?: string | ((member: Member) => number);
  /** Longest wait in the queue, in ms, before rejecting with `QueueTimeoutError`; none by default. */
  readonly queueTimeoutMs?: number;
  /** Breaks ties; `Math.random` by default. */
  readonly random?: Random;
}

/** The candidates for a request: a snapshot, or a function read again each time the queue moves. */
export type MemberSource = readonly MemberView[] | (() => readonly MemberView[]);

export interface AcquireOptions {
  /** Request type, looked up in `costs`. */
  readonly type?: string;
  /** Explicit cost, overriding the type's. */
  readonly cost?: number;
  /** Longest wait in the queue for this request, in ms; overrides `queueTimeoutMs`. */
  readonly timeoutMs?: number;
  /** Abort while waiting: the promise rejects with `signal.reason` and the request leaves the queue. */
  readonly signal?: AbortSignal;
}

/** Permission to send one request to `member`. Call `release()` once the response is complete. */
export interface Lease {
  readonly member: Member;
  readonly cost: number;
  readonly type: string | undefined;
  /** Gives the cost back and lets queued requests go. Idempotent. */
  release(): void;
}

interface MemberLoad {
  cost: number;
  requests: number;
  readonly byType: Map<string, number>;
}

interface Waiter {
  readonly source: MemberSource;
  readonly cost: number;
  readonly type: string | undefined;
  readonly resolve: (lease: Lease) => void;
  readonly reject: (error: unknown) => void;
  cleanup: () => void;
}

/** Returned by `#dispatch` when nothing waits: nothing is reserved. Never mutated. */
const NONE_RESERVED: ReadonlySet<string> = new Set();

function assertPositive(value: unknown, where: string): asserts value is number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(
      `high-water: ${where}: expected a finite number > 0, got ${JSON.stringify(value)}`,
    );
  }
}

export class HighWaterScheduler {
  readonly #highWater: (member: Member) => number;
  readonly #maxQueue: number;
  readonly #costs: Readonly<Record<string, number>>;
  readonly #defaultCost: number;
  readonly #freshness: ((member: Member) => number) | undefined;
  readonly #timeoutMs: number | undefined;
  readonly #random: Random;
  readonly #loads = new Map<string, MemberLoad>();
  #queue: Waiter[] = [];
  readonly #tied: number[] = [];

  constructor(options: HighWaterOptions = {}) {
    const hw = options.highWater ?? 8;
    if (typeof hw === 'function') this.#highWater = hw;
    else {
      assertPositive(hw, 'option highWater');
      this.#highWater = () => hw;
    }
    const maxQueue = options.maxQueue ?? 1000;
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) {
      throw new InvalidArgumentError(
        `high-water: option maxQueue: expected an integer >= 0, got ${maxQueue}`,
      );
    }
    this.#maxQueue = maxQueue;
    const costs = options.costs ?? DEFAULT_REQUEST_COSTS;
    for (const [type, cost] of Object.entries(costs)) assertPositive(cost, `option costs.${type}`);
    this.#costs = { ...costs };
    this.#defaultCost = options.defaultCost ?? 1;
    assertPositive(this.#defaultCost, 'option defaultCost');
    if (options.queueTimeoutMs !== undefined) assertPositive(options.queueTimeoutMs, 'option queueTimeoutMs');
    this.#timeoutMs = options.queueTimeoutMs;
    const fresh = options.freshness;
    if (typeof fresh === 'string') {
      this.#freshness = (m) => {
        const raw = m.labels[fresh];
        const v = raw === undefined || raw.trim() === '' ? Number.NaN : Number(raw);
        return Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v;
      };
    } else if (typeof fresh === 'function') {
      this.#freshness = (m) => {
        const v = fresh(m);
        return Number.isNaN(v) ? Number.NEGATIVE_INFINITY : v;
      };
    }
    this.#random = options.random ?? Math.random;
  }

  /** Requests waiting in the queue. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Cost units in flight on a member (0 if none). */
  inFlight(memberId: string): number {
    return this.#loads.get(memberId)?.cost ?? 0;
  }

  /** Per member with anything in flight: cost units and number of requests. */
  snapshot(): Array<{ id: string; cost: number; requests: number }> {
    return [...this.#loads].map(([id, l]) => ({ id, cost: l.cost, requests: l.requests }));
  }

  /** The cost a request of `options` counts against the mark. */
  costOf(options: Pick<AcquireOptions, 'type' | 'cost'> = {}): number {
    if (options.cost !== undefined) {
      assertPositive(options.cost, 'cost');
      return options.cost;
    }
    if (options.type !== undefined && Object.hasOwn(this.#costs, options.type))
      return this.#costs[options.type]!;
    return this.#defaultCost;
  }

  /** A lease now if some candidate has room (and no earlier waiter reserved it), else undefined. Never queues. */
  tryAcquire(members: MemberSource, options: Pick<AcquireOptions, 'type' | 'cost'> = {}): Lease | undefined {
    const cost = this.costOf(options);
    const blocked = this.#dispatch();
    const member = this.#choose(eligible(read(members)), cost, options.type, blocked);
    return member === undefined ? undefined : this.#lease(member, cost, options.type);
  }

  /**
   * A lease as soon as a candidate has room. Rejects with `NoEligibleMemberError` if no
   * candidate is eligible now, `QueueFullError` if it would have to wait and the queue is full,
   * `QueueTimeoutError` after the timeout, or the signal's reason when aborted.
   */
  acquire(members: MemberSource, options: AcquireOptions = {}): Promise<Lease> {
    try {
      const cost = this.costOf(options);
      const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
      if (timeoutMs !== undefined) assertPositive(timeoutMs, 'timeoutMs');
      const signal = options.signal;
      if (signal?.aborted) return Promise.reject(signal.reason);
      const live = eligible(read(members));
      if (live.length === 0) return Promise.reject(new NoEligibleMemberError());
      const blocked = this.#dispatch();
      const member = this.#choose(live, cost, options.type, blocked);
      if (member !== undefined) return Promise.resolve(this.#lease(member, cost, options.type));
      if (this.#queue.length >= this.#maxQueue) return Promise.reject(new QueueFullError(this.#maxQueue));
      return new Promise<Lease>((resolve, reject) => {
        const waiter: Waiter = {
          source: members,
          cost,
          type: options.type,
          resolve,
          reject,
          cleanup: () => {},
        };
        const leave = (error: unknown) => {
          const i = this.#queue.indexOf(waiter);
          if (i < 0) return;
          this.#queue.splice(i, 1);
          waiter.cleanup();
          reject(error);
          this.#dispatch(); // its reservation is gone: others may go now
        };
        const timer =
          timeoutMs === undefined
            ? undefined
            : setTimeout(() => leave(new QueueTimeoutError(timeoutMs)), timeoutMs);
        const onAbort = () => leave(signal!.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        waiter.cleanup = () => {
          if (timer !== undefined) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        };
        this.#queue.push(waiter);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Lets queued requests go if they can: call after the pool changed (a member came up, a mark grew). */
  reschedule(): void {
    this.#dispatch();
  }

  #lease(member: Member, cost: number, type: string | undefined): Lease {
    let load = this.#loads.get(member.id);
    if (load === undefined) {
      load = { cost: 0, requests: 0, byType: new Map() };
      this.#loads.set(member.id, load);
    }
    load.cost += cost;
    load.requests++;
    const typeKey = type ?? '';
    load.byType.set(typeKey, (load.byType.get(typeKey) ?? 0) + 1);
    let released = false;
    return {
      member,
      cost,
      type,
      release: () => {
        if (released) return;
        released = true;
        const l = this.#loads.get(member.id);
        if (l !== undefined) {
          l.requests--;
          l.cost = l.requests === 0 ? 0 : l.cost - cost; // snap to 0 so float costs cannot drift
          const t = (l.byType.get(typeKey) ?? 1) - 1;
          if (t === 0) l.byType.delete(typeKey);
          else l.byType.set(typeKey, t);
          if (l.requests === 0) this.#loads.delete(member.id);
        }
        this.#dispatch();
      },
    };
  }

  /**
   * Hands room to queued requests in FIFO order. A request that cannot go reserves its
   * candidates for the rest of the pass. Returns the reserved member ids, which a new request
   * arriving now must also respect.
   */
  #dispatch(): ReadonlySet<string> {
    if (this.#queue.length === 0) return NONE_RESERVED;
    const blocked = new Set<string>();
    const keep: Waiter[] = [];
    const snapshots = new Map<MemberSource, readonly MemberView[]>();
    let failedSource: MemberSource | undefined;
    let failedCost = 0;
    for (const w of this.#queue) {
      if (w.source === failedSource && w.cost >= failedCost) {
        keep.push(w); // same candidates, no cheaper: cannot fit either, and reserves nothing new
        continue;
      }
      let live = snapshots.get(w.source);
      if (live === undefined) {
        live = eligible(read(w.source));
        snapshots.set(w.source, live);
      }
      if (live.length === 0) {
        // Every candidate went down or is draining: waiting for them would hang; fail fast.
        w.cleanup();
        w.reject(new NoEligibleMemberError());
        continue;
      }
      const member = this.#choose(live, w.cost, w.type, blocked);
      if (member === undefined) {
        for (const v of live) blocked.add(v.member.id);
        failedSource = w.source;
        failedCost = w.cost;
        keep.push(w);
        continue;
      }
      w.cleanup();
      w.resolve(this.#lease(member, w.cost, w.type));
    }
    this.#queue = keep;
    return blocked;
  }

  /** The best member with room among `members` (already `eligible()`), skipping reserved ones. */
  #choose(
    members: readonly MemberView[],
    cost: number,
    type: string | undefined,
    blocked: ReadonlySet<string>,
  ): Member | undefined {
    const tied = this.#tied;
    tied.length = 0;
    let bestFresh = Number.NEGATIVE_INFINITY;
    let bestLoad = Number.POSITIVE_INFINITY;
    let bestSame = Number.POSITIVE_INFINITY;
    const typeKey = type ?? '';
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!.member;
      if (blocked.has(m.id)) continue;
      const mark = this.#highWater(m);
      if (!(mark > 0)) continue;
      const load = this.#loads.get(m.id);
      const used = load?.cost ?? 0;
      if (used + cost > mark && used > 0) continue;
      const fresh = this.#freshness === undefined ? 0 : this.#freshness(m);
      const relative = used / mark;
      const same = load?.byType.get(typeKey) ?? 0;
      const better =
        tied.length === 0 ||
        fresh > bestFresh ||
        (fresh === bestFresh && (relative < bestLoad || (relative === bestLoad && same < bestSame)));
      if (better) {
        bestFresh = fresh;
        bestLoad = relative;
        bestSame = same;
        tied.length = 0;
        tied.push(i);
      } else if (fresh === bestFresh && relative === bestLoad && same === bestSame) {
        tied.push(i);
      }
    }
    if (tied.length === 0) return undefined;
    const index = tied.length === 1 ? tied[0]! : tied[randomIndex(tied.length, this.#random)]!;
    return members[index]!.member;
  }
}

function read(source: MemberSource): readonly MemberView[] {
  return typeof source === 'function' ? source() : source;
}
