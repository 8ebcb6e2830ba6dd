/**
 * Roles that must run once (the cluster coordinator of C2.5b, the gateway managers of G4.9) are
 * elected through etcd. Every candidate puts a key `<prefix>election/coordinator/<role>/<lease>`
 * (value: its name) under a lease it keeps alive; the key with the lowest create revision leads.
 * Every candidate watches the role's keys and re-reads the oldest one on every change, so all
 * agree on one leader; when the leader's process dies its lease expires, its key goes, and the
 * next oldest leads. (etcd3's own Election observer was not used: with candidates starting
 * together it could settle on the newest key of a batch, and two candidates each saw themselves
 * lead.)
 */
import { EventEmitter } from 'node:events';
import { Etcd3, type Lease, type Namespace, type Watcher } from 'etcd3';
import { InvalidArgumentError } from '../../errors.js';

export interface CoordinatorElectionOptions {
  /** etcd client URLs, `http://host:port`. */
  readonly endpoints: readonly string[];
  /** Key prefix of this installation (default `/usher/`). */
  readonly prefix?: string;
  /** What is being led, e.g. `cluster/web` (letters, digits, `/`, `.`, `_`, `-`). */
  readonly role: string;
  /** This candidate's name (its node id): what the others see as leader. */
  readonly candidate: string;
  /** Lease of the candidacy in whole seconds (default 2; etcd raises it to its minimum). */
  readonly ttlSec?: number;
  /** Deadline of each call to etcd in ms (default 5000). */
  readonly dialTimeoutMs?: number;
}

export interface CoordinatorElectionEvents {
  /** This candidate leads now. */
  elected: [];
  /** The leader changed (undefined: none); also told once just after `start`. */
  leader: [leader: string | undefined];
  error: [error: Error];
}

export class CoordinatorElection extends EventEmitter<CoordinatorElectionEvents> {
  readonly role: string;
  readonly candidate: string;
  readonly #client: Etcd3;
  readonly #ns: Namespace;
  readonly #ttl: number;
  #lease: Lease | undefined;
  #key: string | undefined;
  #watcher: Watcher | undefined;
  #leader: string | undefined;
  #leaderKey: string | undefined;
  #elected = false;
  #closed = false;
  #reading: Promise<void> = Promise.resolve();

  private constructor(options: CoordinatorElectionOptions, client: Etcd3, ttl: number) {
    super();
    this.role = options.role;
    this.candidate = options.candidate;
    this.#client = client;
    this.#ttl = ttl;
    this.#ns = client.namespace(`${options.prefix ?? '/usher/'}election/coordinator/${options.role}/`);
  }

  /** Connects, campaigns and starts following the leader (resolves before the outcome is known). */
  static async start(options: CoordinatorElectionOptions): Promise<CoordinatorElection> {
    if (!/^[A-Za-z0-9][A-Za-z0-9/._-]{0,127}$/.test(options.role ?? ''))
      throw new InvalidArgumentError(
        `role: expected letters, digits, '/', '.', '_' or '-', got ${JSON.stringify(options.role)}`,
      );
    if (typeof options.candidate !== 'string' || options.candidate === '' || options.candidate.length > 256)
      throw new InvalidArgumentError(
        `candidate: expected a non-empty name, got ${JSON.stringify(options.candidate)}`,
      );
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0)
      throw new InvalidArgumentError('endpoints: expected at least one http://host:port');
    const ttl = options.ttlSec ?? 2;
    if (!Number.isInteger(ttl) || ttl < 1)
      throw new InvalidArgumentError(`ttlSec: expected an integer >= 1, got ${ttl}`);
    const client = new Etcd3({ hosts: [...options.endpoints], dialTimeout: options.dialTimeoutMs ?? 5000 });
    const self = new CoordinatorElection(options, client, ttl);
    try {
      const watcher = await self.#ns.watch().prefix('').create();
      self.#watcher = watcher;
      watcher.on('put', () => self.#reread());
      watcher.on('delete', () => self.#reread());
      watcher.on('connected', () => self.#reread());
      watcher.on('error', (error) => self.#error(error));
      await self.#campaign();
      setImmediate(() => {
        if (!self.#closed) self.emit('leader', self.#leader);
      });
    } catch (error) {
      client.close();
      throw error;
    }
    return self;
  }

  /** A fresh lease and key; a lost lease (etcd unreachable past the TTL) campaigns again. */
  async #campaign(): Promise<void> {
    const lease = this.#ns.lease(this.#ttl);
    this.#lease = lease;
    const id = await lease.grant();
    const key = `${BigInt(id).toString(16).padStart(16, '0')}`;
    await lease.put(key).value(this.candidate);
    this.#key = key;
    lease.on('lost', (error) => {
      if (this.#closed || this.#lease !== lease) return;
      this.#error(error);
      this.#key = undefined;
      void this.#campaign().catch((e: Error) => this.#error(e));
    });
    this.#reread();
  }

  /** Reads the oldest key of the role: its candidate leads. Reads are serialised. */
  #reread(): void {
    this.#reading = this.#reading.then(async () => {
      if (this.#closed) return;
      try {
        const res = await this.#ns.getAll().sort('Create', 'Ascend').limit(1).exec();
        const kv = res.kvs[0];
        const key = kv?.key.toString();
        const leader = kv?.value.toString();
        if (key !== this.#leaderKey) {
          this.#leaderKey = key;
          if (leader !== this.#leader || key === undefined) {
            this.#leader = leader;
            this.emit('leader', leader);
          }
        }
        const elected = key !== undefined && key === this.#key;
        if (elected && !this.#elected) {
          this.#elected = true;
          this.emit('elected');
        } else if (!elected) this.#elected = false;
      } catch (error) {
        this.#error(error as Error);
      }
    });
  }

  #error(error: Error): void {
    if (this.#closed) return;
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  /** The current leader as last read. */
  get leader(): string | undefined {
    return this.#leader;
  }

  /** Whether this candidate leads. */
  get isLeader(): boolean {
    return this.#elected;
  }

  /** Steps down: its key goes at once and the next candidate leads; it no longer campaigns. */
  async resign(): Promise<void> {
    this.#elected = false;
    const lease = this.#lease;
    this.#lease = undefined;
    this.#key = undefined;
    await lease?.revoke().catch(() => {});
  }

  /** Resigns, stops following and disconnects; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.resign();
    this.#closed = true;
    await this.#watcher?.cancel().catch(() => {});
    await this.#reading;
    this.#client.close();
  }
}
