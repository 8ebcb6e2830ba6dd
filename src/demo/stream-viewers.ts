/**
 * Demo viewers for `npm start` (seed 003): Node SDK clients that fetch the list, choose a
 * live-data server with the default policy, subscribe to a ticker, stay a while and leave,
 * so that the members' users (and the dashboard) move. Not for production.
 */
import { connectStream, type StreamClient } from '../client/node.js';

export interface DemoViewersOptions {
  /** List URLs, e.g. `http://127.0.0.1:9300/usher/list/live`. */
  readonly listUrls: readonly string[];
  readonly count: number;
  /** Each viewer leaves after about this long and another arrives (0: viewers stay). */
  readonly stayMs: number;
  readonly random?: () => number;
}

export class DemoViewers {
  readonly #o: DemoViewersOptions;
  readonly #clients = new Set<StreamClient>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #ticks = 0;
  #closed = false;

  constructor(options: DemoViewersOptions) {
    this.#o = options;
  }

  start(): void {
    for (let i = 0; i < this.#o.count; i++)
      this.#later(() => this.#arrive(), (this.#o.random ?? Math.random)() * 3000);
  }

  #later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#closed) fn();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  #arrive(): void {
    const client = connectStream({ listUrls: this.#o.listUrls });
    client.on('error', () => {}); // the client keeps trying; the demo does not log every failure
    client.subscribe('ticker.USHR', () => {
      this.#ticks += 1;
    });
    this.#clients.add(client);
    if (this.#o.stayMs <= 0) return;
    const stay = this.#o.stayMs * (0.5 + (this.#o.random ?? Math.random)());
    this.#later(() => {
      this.#clients.delete(client);
      client.close();
      this.#arrive();
    }, stay);
  }

  summary(): { viewers: number; ticks: number } {
    return { viewers: this.#clients.size, ticks: this.#ticks };
  }

  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#clients) c.close();
    this.#clients.clear();
  }
}
