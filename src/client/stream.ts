/**
 * The stream client (seed 003, L3.5/L3.6), isomorphic: it fetches the server list, chooses a
 * server with a core policy, and keeps one WebSocket to it (docs/protocols/stream.md).
 *
 *   const client = connectStream({ listUrls: ['https://a.example/usher/list/live'] });
 *   const stop = client.subscribe('ticker.USHR', (tick, seq) => render(tick));
 *
 * When the connection fails (closed, errored, silent past the heartbeat timeout) the client
 * emits `lost`, tries the same server once more (`retry-same`, L3.6), and if that fails fetches a
 * fresh list (`refetch`) and chooses again, leaving out the server that failed when any other is
 * eligible; failed rounds back off with full jitter. With `refetchAtOnce`, or after a `goaway`,
 * it goes straight to the list. Subscriptions outlive connections: on every (re)connection they
 * are sent again with `since` = the last seq received, so the application loses nothing but what
 * the new server no longer holds (reported as `gap`). Per topic, data is delivered in increasing
 * seq order, without duplicates, except after moving to a server whose numbering is behind (see
 * the protocol document).
 *
 * Nothing here imports a Node-only module; in Node, `usher/client` supplies `ws` as WebSocket.
 */
import type { Policy } from '../core/policy/index.js';
import { createPolicy } from '../core/policy/index.js';
import { InvalidArgumentError, NoEligibleMemberError } from '../errors.js';
import { isTopic, MAX_TOPIC_LENGTH, type ServerFrame } from '../list/stream-protocol.js';
import { type BackoffOptions, backoffDelay } from '../probe/backoff.js';
import { Emitter } from './probe.js';
import { StreamListError, StreamRefusedError } from './stream-errors.js';
import { StreamLink, type WebSocketConstructor } from './stream-link.js';
import {
  chooseServer,
  type FetchLike,
  fetchListDocument,
  type StreamListDocument,
  type StreamListServer,
} from './stream-list.js';
import {
  STREAM_POLICIES,
  type StreamClientEvents,
  type StreamClientOptions,
  type StreamClientState,
  type StreamClientStats,
  type StreamHandler,
} from './stream-types.js';

interface Subscription {
  readonly handlers: Set<{ readonly fn: StreamHandler | undefined }>;
  /** Last seq delivered. */
  lastSeq: number | undefined;
  /** Set when resubscribed with `since`: the first data after it tells whether there is a gap. */
  resumeFrom: number | undefined;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v))
    throw new InvalidArgumentError(`connectStream ${name}: expected a number > 0, got ${String(v)}`);
  return v;
}

export class StreamClient extends Emitter<StreamClientEvents> {
  readonly #listUrls: readonly string[];
  readonly #pool: string | undefined;
  readonly #policy: Policy;
  readonly #refetchAtOnce: boolean;
  readonly #backoff: BackoffOptions;
  readonly #fetchTimeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #heartbeatTimeoutMs: number | undefined;
  readonly #WebSocket: WebSocketConstructor;
  readonly #fetch: FetchLike;
  readonly #random: () => number;
  readonly #abort = new AbortController();
  readonly #wakers = new Set<() => void>();
  readonly #subs = new Map<string, Subscription>();
  readonly #dropped: Record<string, number> = {};
  #state: StreamClientState = 'idle';
  #started = false;
  #next: number;
  #link: StreamLink | undefined;
  #server: StreamListServer | undefined;
  #stats = { reconnects: 0, listFetches: 0, listFailures: 0, connectFailures: 0, received: 0, gaps: 0 };
  #lastDowntimeMs: number | undefined;

  constructor(options: StreamClientOptions) {
    super();
    const urls = options?.listUrls;
    if (!Array.isArray(urls) || urls.length === 0 || urls.some((u) => typeof u !== 'string' || u === ''))
      throw new InvalidArgumentError('connectStream listUrls: expected a non-empty array of URLs');
    const policy = options.policy ?? 'priority-load';
    if (!(STREAM_POLICIES as readonly string[]).includes(policy))
      throw new InvalidArgumentError(
        `connectStream policy: expected one of ${STREAM_POLICIES.join(', ')}, got ${JSON.stringify(policy)}`,
      );
    const WebSocketCtor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (typeof WebSocketCtor !== 'function')
      throw new InvalidArgumentError(
        'connectStream WebSocket: no global WebSocket here; pass options.WebSocket (in Node, import from usher/client)',
      );
    const fetch = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (typeof fetch !== 'function')
      throw new InvalidArgumentError('connectStream fetch: no global fetch here; pass options.fetch');
    this.#listUrls = [...urls];
    this.#pool = options.pool;
    this.#random = options.random ?? Math.random;
    this.#policy =
      policy === 'weighted-random'
        ? createPolicy('weighted-random', { random: this.#random })
        : policy === 'priority-load'
          ? createPolicy('priority-load', {
              metric: 'users',
              normalizeByWeight: true,
              sharpen: true,
              random: this.#random,
            })
          : policy === 'seed-formula'
            ? createPolicy('priority-load', { metric: 'users', random: this.#random })
            : createPolicy(policy, { metric: 'users', random: this.#random });
    this.#refetchAtOnce = options.refetchAtOnce === true;
    this.#backoff = { baseMs: options.backoff?.baseMs ?? 250, maxMs: options.backoff?.maxMs ?? 10_000 };
    this.#fetchTimeoutMs = positive('fetchTimeoutMs', options.fetchTimeoutMs, 3000);
    this.#connectTimeoutMs = positive('connectTimeoutMs', options.connectTimeoutMs, 3000);
    this.#heartbeatTimeoutMs =
      options.heartbeatTimeoutMs === undefined
        ? undefined
        : positive('heartbeatTimeoutMs', options.heartbeatTimeoutMs, 1);
    this.#WebSocket = WebSocketCtor;
    this.#fetch = (url, init) => fetch(url, init);
    this.#next = Math.floor(this.#random() * this.#listUrls.length) % this.#listUrls.length;
  }

  /**
   * Starts fetching the list and connecting (once; `connectStream` calls it). The work begins in
   * a microtask, so listeners added right after `connectStream` see every event from `fetching` on.
   */
  start(): this {
    if (this.#started) return this;
    this.#started = true;
    queueMicrotask(() => {
      if (!this.#closed) this.#run().catch((error: unknown) => this.#report(error));
    });
    return this;
  }

  get state(): StreamClientState {
    return this.#state;
  }

  /** The server connected to now (undefined while not open). */
  get server(): StreamListServer | undefined {
    return this.#state === 'open' ? this.#server : undefined;
  }

  /**
   * Follows `topic` (handler optional: `data` events carry every topic). Kept across
   * reconnections; returns the function that stops following it.
   */
  subscribe(topic: string, handler?: StreamHandler): () => void {
    if (!isTopic(topic))
      throw new InvalidArgumentError(
        `subscribe: expected a topic of 1..${MAX_TOPIC_LENGTH} printable characters, got ${JSON.stringify(topic)}`,
      );
    let sub = this.#subs.get(topic);
    if (!sub) {
      sub = { handlers: new Set(), lastSeq: undefined, resumeFrom: undefined };
      this.#subs.set(topic, sub);
      this.#link?.send({ op: 'subscribe', topic });
    }
    const handle = { fn: handler };
    sub.handlers.add(handle);
    return () => {
      const current = this.#subs.get(topic);
      if (!current?.handlers.delete(handle) || current.handlers.size > 0) return;
      this.#subs.delete(topic);
      this.#link?.send({ op: 'unsubscribe', topic });
    };
  }

  stats(): StreamClientStats {
    return {
      ...this.#stats,
      lastDowntimeMs: this.#lastDowntimeMs,
      server: this.server?.id,
      dropped: { ...this.#dropped },
    };
  }

  /** Closes the connection and stops every timer and request. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    this.#abort.abort();
    for (const wake of [...this.#wakers]) wake();
    this.#link?.close();
    this.#link = undefined;
  }

  // -------------------------------------------------------------------------------------------

  get #closed(): boolean {
    return this.#state === 'closed';
  }

  async #run(): Promise<void> {
    let failures = 0;
    let retry: StreamListServer | undefined;
    let lost: { at: number; server: StreamListServer } | undefined;
    const excluded = new Set<string>();
    while (!this.#closed) {
      let server: StreamListServer;
      const retrying = retry !== undefined;
      if (retry) {
        server = retry;
        retry = undefined;
        this.#setState('retrying');
        this.emit('retry-same', server);
      } else {
        this.#setState('fetching');
        if (lost) this.emit('refetch', { excluded: [...excluded] });
        const doc = await this.#fetchList();
        if (this.#closed) return;
        const chosen = doc && this.#choose(doc, excluded);
        if (!chosen) {
          failures += 1;
          await this.#pause(failures);
          continue;
        }
        server = chosen;
        this.#setState('connecting');
      }
      const link = await this.#connect(server);
      if (this.#closed) {
        link?.close();
        return;
      }
      if (!link) {
        this.#stats.connectFailures += 1;
        excluded.add(server.id);
        // A failed retry-same goes straight to the list (L3.6); other failures back off.
        if (!retrying) {
          failures += 1;
          await this.#pause(failures);
        }
        continue;
      }
      const openedAt = Date.now();
      this.#server = server;
      this.#setState('open');
      this.emit('open', server, link.welcome!);
      if (lost) {
        const downtimeMs = Date.now() - lost.at;
        this.#stats.reconnects += 1;
        this.#lastDowntimeMs = downtimeMs;
        this.emit('reconnected', { server, previous: lost.server, downtimeMs });
      }
      const end = await link.ended;
      if (this.#link === link) this.#link = undefined;
      if (this.#closed) return;
      lost = { at: Date.now(), server };
      this.emit('lost', { server, reason: end.reason, detail: end.detail });
      // A link that said welcome and nothing more is no better than a failed connect: the server
      // is left out and the next round backs off. A link that a retry-same opened gets no second
      // retry-same unless it lasted (twice its heartbeat timeout): a server that keeps welcoming
      // and then falling silent must not hold the client (L3.6: once to the same, then the list).
      const { healthy } = link;
      const lasted = !retrying || Date.now() - openedAt >= 2 * link.heartbeatTimeoutMs;
      if (healthy && lasted) {
        failures = 0;
        excluded.clear();
      }
      if (healthy && lasted && end.reason !== 'goaway' && !this.#refetchAtOnce) retry = server;
      else excluded.add(server.id);
      if (!healthy) {
        failures += 1;
        await this.#pause(failures);
      }
    }
  }

  /** One round over the list URLs, from where the last one left off; undefined when none answered. */
  async #fetchList(): Promise<StreamListDocument | undefined> {
    for (let i = 0; i < this.#listUrls.length && !this.#closed; i++) {
      const url = this.#listUrls[this.#next]!;
      this.#next = (this.#next + 1) % this.#listUrls.length;
      this.#stats.listFetches += 1;
      try {
        const doc = await fetchListDocument(url, this.#fetch, this.#fetchTimeoutMs, this.#abort.signal);
        if (this.#closed) return undefined;
        if (this.#pool !== undefined && doc.pool !== this.#pool)
          throw new StreamListError(url, `expected pool ${this.#pool}, got ${doc.pool}`);
        this.emit('list', doc);
        return doc;
      } catch (error) {
        if (this.#closed) return undefined;
        this.#stats.listFailures += 1;
        this.#report(error);
      }
    }
    return undefined;
  }

  #choose(doc: StreamListDocument, excluded: ReadonlySet<string>): StreamListServer | undefined {
    const server = chooseServer(doc, this.#policy, excluded);
    if (!server) {
      this.#report(
        new NoEligibleMemberError(`no eligible stream server in list ${doc.pool} revision ${doc.revision}`),
      );
      return undefined;
    }
    this.emit('chosen', server);
    return server;
  }

  /** Opens a link to `server` and resubscribes; undefined (and an `error` event) when it fails. */
  async #connect(server: StreamListServer): Promise<StreamLink | undefined> {
    let link: StreamLink;
    try {
      link = new StreamLink({
        url: server.url!,
        WebSocket: this.#WebSocket,
        connectTimeoutMs: this.#connectTimeoutMs,
        heartbeatTimeoutMs: this.#heartbeatTimeoutMs,
        onFrame: (frame) => this.#frame(server, frame),
        onDrop: (reason) => this.#drop(reason),
      });
    } catch (error) {
      this.#report(error);
      return undefined;
    }
    this.#link = link;
    try {
      await link.opened;
    } catch (error) {
      if (this.#link === link) this.#link = undefined;
      if (!this.#closed) this.#report(error);
      return undefined;
    }
    for (const [topic, sub] of this.#subs) {
      sub.resumeFrom = sub.lastSeq;
      link.send(
        sub.lastSeq === undefined
          ? { op: 'subscribe', topic }
          : { op: 'subscribe', topic, since: sub.lastSeq },
      );
    }
    return link;
  }

  #frame(server: StreamListServer, frame: ServerFrame): void {
    try {
      if (frame.type === 'data') this.#data(frame.topic, frame.data, frame.seq);
      else if (frame.type === 'error')
        this.#report(new StreamRefusedError(server.id, frame.code, frame.message, frame.topic));
      else if (frame.type === 'subscribed') {
        const sub = this.#subs.get(frame.topic);
        // This server's numbering is behind what we have seen (a restarted publisher, or a clock
        // behind the last server's): take its numbering from here (docs: may repeat a few).
        if (sub?.resumeFrom !== undefined && frame.seq < sub.resumeFrom) {
          sub.lastSeq = frame.seq;
          sub.resumeFrom = undefined;
        }
      }
      // heartbeat, pong: nothing to do (the link counted them as signs of life); goaway: the link ends
    } catch (error) {
      this.#report(error); // a throwing listener must not break the link
    }
  }

  #data(topic: string, data: unknown, seq: number): void {
    const sub = this.#subs.get(topic);
    if (!sub || (sub.lastSeq !== undefined && seq <= sub.lastSeq)) {
      this.#drop(sub ? 'duplicate' : 'unsubscribed');
      return;
    }
    if (sub.resumeFrom !== undefined) {
      if (seq > sub.resumeFrom + 1) {
        this.#stats.gaps += 1;
        this.emit('gap', { topic, fromSeq: sub.resumeFrom + 1, toSeq: seq - 1 });
      }
      sub.resumeFrom = undefined;
    }
    sub.lastSeq = seq;
    this.#stats.received += 1;
    for (const handle of [...sub.handlers]) {
      try {
        handle.fn?.(data, seq, topic);
      } catch (error) {
        this.#report(error);
      }
    }
    this.emit('data', topic, data, seq);
  }

  #pause(failures: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#setState('retrying');
    const ms = backoffDelay(failures - 1, this.#backoff, this.#random);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakers.add(wake);
    });
  }

  #setState(state: StreamClientState): void {
    if (this.#state === state || this.#state === 'closed') return;
    this.#state = state;
    this.emit('state', state);
  }

  #drop(reason: string): void {
    this.#dropped[reason] = (this.#dropped[reason] ?? 0) + 1;
  }

  #report(error: unknown): void {
    try {
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
    } catch {
      // an error listener that throws has nowhere else to go
    }
  }
}

/** Creates a stream client and starts it: fetch the list, choose, connect (seed 003, L3.5). */
export function connectStream(options: StreamClientOptions): StreamClient {
  return new StreamClient(options).start();
}

export { StreamConnectError, StreamListError, StreamRefusedError } from './stream-errors.js';
export type { StreamLostReason, WebSocketConstructor, WebSocketLike } from './stream-link.js';
export {
  chooseServer,
  type FetchLike,
  listMemberViews,
  parseListDocument,
  type StreamListDocument,
  type StreamListServer,
} from './stream-list.js';
export * from './stream-types.js';
