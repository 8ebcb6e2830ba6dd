/**
 * The feed of changes under the prefix: one range read, then a watch from the revision after
 * it, delivered one etcd revision at a time. The etcd3 watcher re-opens itself after a
 * disconnect and resumes from the last revision it saw; when that revision has been compacted
 * away (etcd cancels the watch), the feed reads the whole prefix again and starts over.
 */
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { readPrefix } from './connection.js';
import type { EtcdLogger } from './options.js';
import type { Kv, KvChange } from './replica.js';

export interface FeedHandlers {
  /** The whole state at `revision` (at start, and after a compaction made the watch lose its place). */
  onState(kvs: readonly Kv[], revision: number): void;
  /** The changes of one etcd revision, in order. */
  onRevision(changes: readonly KvChange[], revision: number): void;
  /** The watch lost etcd (reported once per outage). */
  onDisconnected(error: unknown): void;
  /** The watch is back after an outage. */
  onReconnected(): void;
}

export class PrefixFeed {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #handlers: FeedHandlers;
  readonly #logger: EtcdLogger;
  readonly #retryMaxMs: number;
  #watcher: Watcher | undefined;
  #revision = 0;
  #connected = false;
  #stopped = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #timeoutMs = 5_000;
  /** A re-open is in progress (its failure schedules the next one). */
  #reopening = false;

  constructor(client: Etcd3, prefix: string, handlers: FeedHandlers, logger: EtcdLogger, retryMaxMs: number) {
    this.#client = client;
    this.#prefix = prefix;
    this.#handlers = handlers;
    this.#logger = logger;
    this.#retryMaxMs = retryMaxMs;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /**
   * The etcd revision of the last change delivered (or of the state read). Response headers are
   * not used: while a watch catches up, a header may be ahead of events still to come.
   */
  get revision(): number {
    return this.#revision;
  }

  /** Reads the state and opens the watch; rejects when etcd does not answer within `timeoutMs`. */
  async start(timeoutMs: number): Promise<void> {
    this.#timeoutMs = timeoutMs;
    await this.#open(timeoutMs);
    this.#connected = true;
  }

  async #open(timeoutMs: number): Promise<void> {
    const { kvs, revision } = await readPrefix(this.#client, this.#prefix);
    if (this.#stopped) return;
    this.#handlers.onState(kvs, revision);
    this.#revision = revision;
    const watcher = this.#client
      .watch()
      .prefix(this.#prefix)
      .startRevision(String(revision + 1))
      .watcher();
    this.#watcher = watcher;
    watcher.on('data', (response) => this.#onData(watcher, response));
    watcher.on('disconnected', (error) => this.#lost(watcher, error));
    watcher.on('error', (error) => this.#canceled(watcher, error));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        watcher.removeListener('connected', ready);
        void watcher.cancel().catch(() => {});
        reject(new Error(`etcd watch not established within ${timeoutMs} ms`));
      }, timeoutMs);
      const ready = () => {
        clearTimeout(timer);
        resolve();
      };
      watcher.once('connected', ready);
    });
    watcher.on('connected', () => this.#back(watcher));
  }

  #onData(watcher: Watcher, response: IWatchResponse): void {
    if (watcher !== this.#watcher || this.#stopped) return;
    try {
      let group: KvChange[] = [];
      let groupRevision = 0;
      for (const event of response.events ?? []) {
        const revision = Number(event.kv.mod_revision);
        if (group.length > 0 && revision !== groupRevision) {
          this.#deliver(group, groupRevision);
          group = [];
        }
        groupRevision = revision;
        group.push({ kv: event.kv, deleted: event.type === 'Delete' });
      }
      if (group.length > 0) this.#deliver(group, groupRevision);
    } catch (error) {
      // The etcd3 client rethrows listener errors outside the stream; never let one escape.
      this.#logger.warn?.({ err: error }, 'etcd: a watch response could not be applied');
    }
  }

  #deliver(changes: KvChange[], revision: number): void {
    if (revision <= this.#revision) return; // already part of the state read
    this.#revision = revision;
    this.#handlers.onRevision(changes, revision);
  }

  #lost(watcher: Watcher, error: unknown): void {
    if (watcher !== this.#watcher || this.#stopped || !this.#connected) return;
    this.#connected = false;
    this.#handlers.onDisconnected(error);
  }

  #back(watcher: Watcher): void {
    if (watcher !== this.#watcher || this.#stopped || this.#connected) return;
    this.#connected = true;
    this.#handlers.onReconnected();
  }

  /** etcd canceled the watch (its revision was compacted, or worse): read everything again. */
  #canceled(watcher: Watcher, error: unknown): void {
    if (watcher !== this.#watcher || this.#stopped) return;
    this.#logger.warn?.(
      { err: error, revision: this.#revision },
      'etcd: watch canceled, reading the state again',
    );
    this.#watcher = undefined;
    if (this.#connected) {
      this.#connected = false;
      this.#handlers.onDisconnected(error);
    }
    this.#reopen(100);
  }

  /** Re-reads the state and re-opens the watch, retrying with backoff; one attempt at a time. */
  #reopen(delayMs: number): void {
    if (this.#retry || this.#reopening || this.#stopped) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#stopped) return;
      this.#reopening = true;
      this.#open(this.#timeoutMs).then(
        () => {
          this.#reopening = false;
          if (this.#stopped) return;
          this.#connected = true;
          this.#handlers.onReconnected();
        },
        (error: unknown) => {
          this.#reopening = false;
          this.#logger.debug?.({ err: error }, 'etcd: re-reading the state failed; retrying');
          this.#watcher = undefined;
          this.#reopen(Math.min(this.#retryMaxMs, delayMs * 2));
        },
      );
    }, delayMs);
  }

  /** Cancels the watch (without waiting for etcd when it is unreachable). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (!watcher) return;
    const cancel = watcher.cancel().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([cancel, new Promise((r) => (timer = setTimeout(r, 1_000)))]);
    clearTimeout(timer);
  }
}
