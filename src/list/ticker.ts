/**
 * Demo live data for the stream protocol: price ticks for a few symbols, published into a
 * StreamServer on topics `ticker.<SYMBOL>` every `intervalMs`.
 *
 * The feed is a pure function of wall-clock time: the tick number is floor(now / intervalMs) and
 * the price a deterministic function of (symbol, tick number). The tick number is also the
 * message's seq. So two servers publish the same message under the same seq for the same
 * instant, and a client that moves to another server and resubscribes with `since` gets what it
 * missed from the new server's history (seed 003, L3.6).
 */
import { fmix32, fnv1a32 } from '../core/hash.js';
import { InvalidArgumentError } from '../errors.js';
import type { PublishOptions } from './stream-server.js';

export const DEFAULT_SYMBOLS: readonly string[] = ['USHR', 'ACME', 'GLOBX'];

/** What a ticker publishes into (a StreamServer). */
export interface TickPublisher {
  publish(topic: string, data: unknown, options?: PublishOptions): number;
}

export interface TickerOptions {
  readonly server: TickPublisher;
  readonly symbols?: readonly string[];
  /** Tick period in ms (default 250). */
  readonly intervalMs?: number;
  /** Topic of a symbol: prefix + symbol (default `ticker.`). */
  readonly topicPrefix?: string;
  /** Missed ticks published after a late timer, at most (default 32; older ones are skipped). */
  readonly maxCatchUp?: number;
  /** The clock (default Date.now). */
  readonly now?: () => number;
}

/** One tick as published (the message's `data`). */
export interface Tick {
  readonly symbol: string;
  /** Tick number: floor(t / intervalMs); also the message's seq. */
  readonly tick: number;
  /** Start of the tick, ms since the epoch. */
  readonly t: number;
  readonly price: number;
}

/** The tick number of an instant. */
export function tickNumber(now: number, intervalMs: number): number {
  return Math.floor(now / intervalMs);
}

/** A value in [-1, 1] from a hash of (key, n). */
function noise(key: string, n: number): number {
  return (fmix32(fnv1a32(`${key}:${n}`)) / 0xffff_ffff) * 2 - 1;
}

/** Value noise: random knots every `period` ticks, linearly interpolated between. */
function smooth(key: string, tick: number, period: number): number {
  const k = Math.floor(tick / period);
  const f = (tick - k * period) / period;
  return noise(key, k) * (1 - f) + noise(key, k + 1) * f;
}

/** The price of `symbol` at tick number `tick`: a deterministic wander around a per-symbol base. */
export function tickPrice(symbol: string, tick: number): number {
  const base = 20 + (fnv1a32(symbol) % 18_000) / 100; // 20.00 .. 199.99
  const wander = 0.06 * smooth(`${symbol}/slow`, tick, 240) + 0.015 * smooth(`${symbol}/fast`, tick, 12);
  const jitter = 0.002 * noise(`${symbol}/tick`, tick);
  return Math.round(base * (1 + wander + jitter) * 100) / 100;
}

/** The tick of `symbol` at tick number `tick`. */
export function tickAt(symbol: string, tick: number, intervalMs: number): Tick {
  return { symbol, tick, t: tick * intervalMs, price: tickPrice(symbol, tick) };
}

/** Publishes deterministic price ticks into a StreamServer until stopped. */
export class TickerFeed {
  readonly symbols: readonly string[];
  readonly intervalMs: number;
  readonly topicPrefix: string;
  readonly #server: TickPublisher;
  readonly #maxCatchUp: number;
  readonly #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #last: number | undefined;
  #running = false;

  constructor(options: TickerOptions) {
    if (!options?.server) throw new InvalidArgumentError('TickerFeed server: expected a StreamServer');
    this.#server = options.server;
    this.symbols = [...(options.symbols ?? DEFAULT_SYMBOLS)];
    this.intervalMs = options.intervalMs ?? 250;
    if (!(Number.isSafeInteger(this.intervalMs) && this.intervalMs > 0))
      throw new InvalidArgumentError(
        `TickerFeed intervalMs: expected an integer > 0, got ${this.intervalMs}`,
      );
    this.topicPrefix = options.topicPrefix ?? 'ticker.';
    this.#maxCatchUp = options.maxCatchUp ?? 32;
    this.#now = options.now ?? Date.now;
  }

  /** The topic a symbol is published on. */
  topic(symbol: string): string {
    return `${this.topicPrefix}${symbol}`;
  }

  /** The last tick number published (undefined before the first). */
  get lastTick(): number | undefined {
    return this.#last;
  }

  /** Publishes the current tick at once, then every tick as its instant comes. */
  start(): this {
    if (this.#running) return this;
    this.#running = true;
    this.#tick();
    return this;
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    if (!this.#running) return;
    const now = this.#now();
    const current = tickNumber(now, this.intervalMs);
    // After a late timer, publish the ticks it skipped (seqs stay contiguous); a clock that went
    // back publishes nothing until it passes the last tick again.
    const from =
      this.#last === undefined ? current : Math.max(this.#last + 1, current - this.#maxCatchUp + 1);
    for (let n = from; n <= current; n++) {
      for (const symbol of this.symbols) {
        try {
          this.#server.publish(this.topic(symbol), tickAt(symbol, n, this.intervalMs), { seq: n });
        } catch {
          // The topic is already past n (another publisher on it): skip, never kill the timer.
        }
      }
      this.#last = n;
    }
    const delay = Math.max(1, (current + 1) * this.intervalMs - now);
    this.#timer = setTimeout(() => this.#tick(), delay);
  }
}
