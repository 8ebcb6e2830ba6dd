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

interface Bucket {
  tokens: number;
  at: number;
}

export const DEFAULT_MAX_SOURCES = 100_000;

export class RateLimiter {
  #perSecond = 0;
  #burst = 0;
  readonly #maxSources: number;
  readonly #now: () => number;
  /** Insertion order is recency order: a hit moves the source to the end. */
  readonly #buckets = new Map<string, Bucket>();
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
      b = { tokens: this.#burst, at: now };
      if (this.#buckets.size >= this.#maxSources) {
        const oldest = this.#buckets.keys().next().value as string;
        this.#buckets.delete(oldest);
        this.#evicted++;
      }
    } else {
      this.#buckets.delete(source);
      const elapsed = Math.max(0, now - b.at) / 1000;
      b.tokens = Math.min(this.#burst, b.tokens + elapsed * this.#perSecond);
      b.at = now;
    }
    this.#buckets.set(source, b);
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
  }
}
