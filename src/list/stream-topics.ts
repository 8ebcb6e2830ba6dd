/**
 * The stream server's topics: per topic the latest seq, the last messages (for `since` replay)
 * and the subscribers. No I/O; the server (stream-server.ts) sends what this table says.
 */

/** One message kept for replay: its seq and its encoded data frame. */
export interface HeldMessage {
  readonly seq: number;
  readonly frame: string;
}

export interface Topic<C> {
  seq: number;
  /** The last messages, oldest first (increasing seq). */
  readonly history: HeldMessage[];
  readonly subscribers: Set<C>;
}

export class TopicTable<C> {
  readonly #topics = new Map<string, Topic<C>>();
  readonly #historySize: number;

  constructor(historySize: number) {
    this.#historySize = historySize;
  }

  get(name: string): Topic<C> | undefined {
    return this.#topics.get(name);
  }

  /** The topic, created empty when new. */
  ensure(name: string): Topic<C> {
    let t = this.#topics.get(name);
    if (!t) {
      t = { seq: 0, history: [], subscribers: new Set() };
      this.#topics.set(name, t);
    }
    return t;
  }

  /** Records a published message (the caller checked that `seq` is greater than the latest). */
  record(t: Topic<C>, seq: number, frame: string): void {
    t.seq = seq;
    t.history.push({ seq, frame });
    if (t.history.length > this.#historySize) t.history.shift();
  }

  /** The held frames after `since`, oldest first. */
  after(t: Topic<C>, since: number): string[] {
    let lo = 0;
    let hi = t.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (t.history[mid]!.seq > since) hi = mid;
      else lo = mid + 1;
    }
    return t.history.slice(lo).map((m) => m.frame);
  }

  /** Removes a subscriber; a topic nobody publishes to and nobody follows is forgotten (clients cannot grow the map). */
  leave(name: string, subscriber: C): void {
    const t = this.#topics.get(name);
    if (!t) return;
    t.subscribers.delete(subscriber);
    if (t.subscribers.size === 0 && t.seq === 0) this.#topics.delete(name);
  }
}
