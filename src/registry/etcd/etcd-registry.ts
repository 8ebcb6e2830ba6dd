/**
 * The `etcd` registry (scale-out): the state lives in etcd under a prefix (key layout in
 * keys.ts and docs/protocols/etcd.md). Each instance keeps a replica fed by one range read and
 * then a watch, and delivers the watch's changes as registry events through one ordered queue
 * with a local revision counter. Writes are etcd transactions guarded by compares, so a write
 * on a member that is gone rejects with NotFoundError whatever this instance's view says.
 *
 * When etcd is unreachable the instance keeps answering reads from its last view, writes reject
 * with RegistryError, `connected` is false; once the watch is back it resumes from the last
 * revision seen and re-registers the members this instance registered whose keys are gone.
 */
import type { HealthState, LoadReport, Member, MemberView } from '../../core/model.js';
import { RegistryError, UsherError } from '../../errors.js';
import { EventQueue } from '../event-queue.js';
import type { EventBody } from '../mesh/replica.js';
import type { RegisterOptions, Registry, RegistryListener, RegistrySnapshot } from '../registry.js';
import { createClient, op, txn } from './connection.js';
import { PrefixFeed } from './feed.js';
import {
  assignmentInput,
  healthInput,
  idInput,
  loadInput,
  memberInput,
  reasonInput,
  ttlInput,
} from './input.js';
import { encode, KeyLayout } from './keys.js';
import { MemberWrites } from './member-writes.js';
import { type EtcdRegistryOptions, type ResolvedEtcdOptions, resolveEtcdOptions } from './options.js';
import { OwnMembers } from './own-members.js';
import { EtcdReplica } from './replica.js';

export interface EtcdStats {
  /** Whether the watch is connected to etcd (false: answering from the last view). */
  readonly connected: boolean;
  /** Times the watch came back after losing etcd. */
  readonly reconnects: number;
  /** Key changes received from the watch. */
  readonly watchEvents: number;
  /** Changes that failed for a reason other than the registry's own (NotFound, bad input). */
  readonly writesFailed: number;
  /** Full re-reads of the state after the watch fell behind a compaction. */
  readonly resyncs: number;
  /** Members this instance registered again after an outage had let their lease expire. */
  readonly reregistered: number;
  /** Values under the prefix that could not be decoded and were ignored. */
  readonly malformed: number;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class EtcdRegistry implements Registry {
  readonly kind = 'etcd';
  readonly #options: ResolvedEtcdOptions;
  readonly #client: ReturnType<typeof createClient>;
  readonly #keys: KeyLayout;
  readonly #replica: EtcdReplica;
  readonly #events: EventQueue;
  readonly #feed: PrefixFeed;
  readonly #writes: MemberWrites;
  readonly #own = new OwnMembers();
  #started = false;
  #closed = false;
  #disconnectedAt = 0;
  #recovery: ReturnType<typeof setTimeout> | undefined;
  #reconnects = 0;
  #watchEvents = 0;
  #writesFailed = 0;
  #resyncs = 0;
  #reregistered = 0;

  private constructor(options: ResolvedEtcdOptions) {
    this.#options = options;
    this.#client = createClient(options);
    this.#keys = new KeyLayout(options.prefix);
    this.#replica = new EtcdReplica(this.#keys);
    this.#events = new EventQueue(options.onListenerError);
    this.#writes = new MemberWrites(this.#client, this.#keys, this.#replica, options.logger);
    this.#feed = new PrefixFeed(
      this.#client,
      options.prefix,
      {
        onState: (kvs, revision) => {
          if (!this.#started) return this.#replica.reset(kvs);
          this.#resyncs += 1;
          this.#deliver(this.#replica.resync(kvs, this.#feed.revision), revision);
        },
        onRevision: (changes, revision) => {
          this.#watchEvents += changes.length;
          this.#deliver(this.#replica.applyRevision(changes), revision);
        },
        onDisconnected: (error) => this.#onDisconnected(error),
        onReconnected: () => this.#onReconnected(),
      },
      options.logger,
      options.reconnectMaxMs,
    );
  }

  /**
   * Connects, reads the state under the prefix and starts watching it. Throws
   * InvalidArgumentError for a bad option, RegistryError when etcd does not answer in time.
   */
  static async start(options: EtcdRegistryOptions): Promise<EtcdRegistry> {
    const registry = new EtcdRegistry(resolveEtcdOptions(options));
    const { endpoints, dialTimeoutMs } = registry.#options;
    try {
      await registry.#feed.start(dialTimeoutMs);
    } catch (error) {
      await registry.close();
      throw new RegistryError(`etcd: cannot reach ${endpoints.join(', ')}: ${message(error)}`, {
        cause: error,
      });
    }
    registry.#started = true;
    return registry;
  }

  /** Whether the watch is connected to etcd; while false, reads answer from the last view. */
  get connected(): boolean {
    return !this.#closed && this.#feed.connected;
  }

  stats(): EtcdStats {
    return {
      connected: this.connected,
      reconnects: this.#reconnects,
      watchEvents: this.#watchEvents,
      writesFailed: this.#writesFailed,
      resyncs: this.#resyncs,
      reregistered: this.#reregistered,
      malformed: this.#replica.malformed,
    };
  }

  #check(): void {
    if (this.#closed) throw new RegistryError('registry is closed');
  }

  /** Runs a change against etcd; any failure but the registry's own errors becomes RegistryError. */
  async #write<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.#check();
    try {
      return await fn();
    } catch (error) {
      if (error instanceof UsherError) throw error;
      this.#writesFailed += 1;
      if (this.#closed) throw new RegistryError('registry is closed', { cause: error });
      const state = this.#feed.connected ? '' : ' (etcd unreachable; serving the last view)';
      throw new RegistryError(`etcd: ${what} failed${state}: ${message(error)}`, { cause: error });
    }
  }

  #deliver(events: EventBody[], etcdRevision: number): void {
    this.#own.observe(events, etcdRevision);
    this.#events.emit(events);
  }

  #onDisconnected(error: unknown): void {
    this.#disconnectedAt = Date.now();
    this.#own.outage();
    this.#options.logger.warn?.(
      { endpoints: this.#options.endpoints, err: error },
      'etcd: connection lost; serving the last view, writes fail until it returns',
    );
  }

  #onReconnected(): void {
    this.#reconnects += 1;
    this.#options.logger.info?.(
      { endpoints: this.#options.endpoints, downMs: Date.now() - this.#disconnectedAt },
      'etcd: connection restored; watch resumed',
    );
    this.#recover(100);
  }

  /** Registers again the members this instance registered whose keys the outage let expire. */
  #recover(retryMs: number): void {
    if (this.#recovery) clearTimeout(this.#recovery);
    this.#recovery = undefined;
    this.#own
      .recover(this.#writes, () => this.#closed)
      .then(
        (ids) => {
          this.#reregistered += ids.length;
          for (const id of ids) {
            this.#options.logger.info?.({ id }, 'etcd: member registered again after its lease expired');
          }
        },
        (error: unknown) => {
          if (this.#closed) return;
          this.#options.logger.warn?.(
            { err: error },
            'etcd: checking own members after the outage failed; retrying',
          );
          this.#recovery = setTimeout(() => this.#recover(Math.min(retryMs * 2, 5_000)), retryMs);
          this.#recovery.unref?.();
        },
      );
  }

  async register(member: Member, options: RegisterOptions = {}): Promise<void> {
    this.#check();
    const definition = encode(memberInput(member));
    const ttlMs = ttlInput(options.ttlMs);
    const health = healthInput(options.health ?? 'up');
    await this.#write('register', () => this.#writes.register(member.id, definition, ttlMs, health));
    this.#own.registered(member.id, definition, ttlMs, health);
  }

  async keepAlive(id: string): Promise<void> {
    this.#check();
    idInput(id);
    await this.#write('keepAlive', () => this.#writes.keepAlive(id, this.#options.dialTimeoutMs));
  }

  async deregister(id: string, reason = 'deregistered'): Promise<void> {
    this.#check();
    idInput(id);
    reasonInput(reason);
    await this.#write('deregister', () => this.#writes.deregister(id, reason, this.#options.removalTtlSec));
    this.#own.forget(id);
  }

  async report(id: string, load: LoadReport): Promise<void> {
    this.#check();
    idInput(id);
    const value = encode(loadInput(load));
    await this.#write('report', () => this.#writes.report(id, value));
  }

  async setHealth(id: string, health: HealthState, reason: string): Promise<void> {
    this.#check();
    idInput(id);
    healthInput(health);
    reasonInput(reason);
    await this.#write('setHealth', () => this.#writes.setHealth(id, health, reason));
  }

  async assign(key: string, value: unknown): Promise<void> {
    this.#check();
    idInput(key, 'assignment key');
    const stored = assignmentInput(key, value, Date.now());
    await this.#write('assign', () =>
      txn(this.#client, { compare: [], success: [op.put(this.#keys.key('assignments', key), stored)] }),
    );
  }

  async unassign(key: string): Promise<void> {
    this.#check();
    idInput(key, 'assignment key');
    await this.#write('unassign', () =>
      txn(this.#client, { compare: [], success: [op.delete(this.#keys.key('assignments', key))] }),
    );
  }

  async get(id: string): Promise<MemberView | undefined> {
    this.#check();
    return this.#replica.view(id);
  }

  async snapshot(): Promise<RegistrySnapshot> {
    this.#check();
    return {
      revision: this.#events.revision,
      members: this.#replica.views(),
      assignments: this.#replica.assignments(),
    };
  }

  watch(listener: RegistryListener): () => void {
    this.#check();
    return this.#events.watch(listener);
  }

  /** Stops watching and disconnects; leases and keys stay in etcd (members with a TTL expire). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#recovery) clearTimeout(this.#recovery);
    this.#events.clear();
    await this.#feed.stop();
    this.#client.close();
  }
}
