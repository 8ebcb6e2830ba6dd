/**
 * Token buckets per source (an IP address): `perSecond` tokens flow in, at most `burst` are
 * kept, each datagram takes one. Buckets live in a bounded map; when it is full the source seen
 * least recently is forgotten (its next datagram starts with a full bucket again), so a flood
 * of spoofed sources costs a fixed amount of memory.
 */
import { InvalidArgumentError } from '../errors.js';

export interface RateLimitOptions {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Bucket size: datagrams a quiet source may send at once. */
  readonly burst: number;
  /** Sources remembered at most (least recently seen are evicted first). Default 100 000. */
  readonly maxSources?: number;
  /** Clock in milliseconds; `Date.now` by default. */
  readonly now?: () => number;
}

/** A source's bucket, and its place in the recency list (least recently seen first). */
interface Bucket {
  readonly source: string;
  tokens: number;
  at: number;
  older: Bucket | undefined;
  newer: Bucket | undefined;
}

export const DEFAULT_MAX_SOURCES = 100_000;

export class RateLimiter {
  #perSecond = 0;
  #burst = 0;
  readonly #maxSources: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  /**
   * Recency order as a linked list through the buckets: a hit moves its bucket to the newest
   * end with a few pointer writes (deleting and re-adding the map entry per datagram, as a
   * map in insertion order would need, made a large map rehash over and over).
   */
  #oldest: Bucket | undefined;
  #newest: Bucket | undefined;
  #evicted = 0;

  constructor(options: RateLimitOptions) {
    this.#maxSources = options.maxSources ?? DEFAULT_MAX_SOURCES;
    if (!Number.isInteger(this.#maxSources) || this.#maxSources < 1)
      throw new InvalidArgumentError(`maxSources: expected an integer >= 1, got ${this.#maxSources}`);
    this.#now = options.now ?? Date.now;
    this.configure(options.perSecond, options.burst);
  }

  /** Changes the rates; buckets keep their tokens (capped at the new burst). */
  configure(perSecond: number, burst: number): void {
    if (!(perSecond > 0) || !Number.isFinite(perSecond))
      throw new InvalidArgumentError(`perSecond: expected a number > 0, got ${perSecond}`);
    if (!(burst >= 1) || !Number.isFinite(burst))
      throw new InvalidArgumentError(`burst: expected a number >= 1, got ${burst}`);
    this.#perSecond = perSecond;
    this.#burst = burst;
  }

  /** Takes one token from `source`'s bucket; false when it is empty (the datagram is dropped). */
  take(source: string): boolean {
    const now = this.#now();
    let b = this.#buckets.get(source);
    if (b === undefined) {
      const oldest = this.#oldest;
      if (oldest !== undefined && this.#buckets.size >= this.#maxSources) {
        this.#unlink(oldest);
        this.#buckets.delete(oldest.source);
        this.#evicted++;
      }
      b = { source, tokens: this.#burst, at: now, older: undefined, newer: undefined };
      this.#buckets.set(source, b);
    } else {
      this.#unlink(b);
      const elapsed = Math.max(0, now - b.at) / 1000;
      b.tokens = Math.min(this.#burst, b.tokens + elapsed * this.#perSecond);
      b.at = now;
    }
    // Newest end.
    b.older = this.#newest;
    if (this.#newest !== undefined) this.#newest.newer = b;
    else this.#oldest = b;
    this.#newest = b;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Sources currently remembered. */
  get sources(): number {
    return this.#buckets.size;
  }

  /** Sources forgotten because the map was full. */
  get evicted(): number {
    return this.#evicted;
  }

  clear(): void {
    this.#buckets.clear();
    this.#oldest = undefined;
    this.#newest = undefined;
  }

  #unlink(b: Bucket): void {
    if (b.older !== undefined) b.older.newer = b.newer;
    else this.#oldest = b.newer;
    if (b.newer !== undefined) b.newer.older = b.older;
    else this.#newest = b.older;
    b.older = undefined;
    b.newer = undefined;
  }
}
