import type { HealthState, LoadReport, Member, MemberView } from '../core/model.js';
import { NotFoundError, RegistryError } from '../errors.js';
import type {
  Assignment,
  RegisterOptions,
  Registry,
  RegistryEvent,
  RegistryListener,
  RegistrySnapshot,
} from './registry.js';

interface Entry {
  member: Member;
  health: HealthState;
  load?: LoadReport;
  ttlMs?: number;
  timer?: ReturnType<typeof setTimeout>;
}

export interface MemoryRegistryOptions {
  /** Called when a listener throws; the error never reaches the caller of the change. */
  onListenerError?: (error: unknown) => void;
}

/**
 * The embedded registry: one process, state in memory, events delivered synchronously in
 * revision order. Leases (ttlMs) expire with a timer.
 */
export class MemoryRegistry implements Registry {
  readonly kind = 'memory';
  #revision = 0;
  #members = new Map<string, Entry>();
  #assignments = new Map<string, Assignment>();
  #listeners = new Set<RegistryListener>();
  /** Events not yet delivered: a listener that changes the registry queues behind the current event. */
  #queue: RegistryEvent[] = [];
  #delivering = false;
  #closed = false;
  #onListenerError: (error: unknown) => void;

  constructor(options: MemoryRegistryOptions = {}) {
    this.#onListenerError = options.onListenerError ?? (() => {});
  }

  #check(): void {
    if (this.#closed) throw new RegistryError('registry is closed');
  }

  #entry(id: string): Entry {
    const e = this.#members.get(id);
    if (!e) throw new NotFoundError('member', id);
    return e;
  }

  #emit(build: (revision: number) => RegistryEvent): void {
    this.#revision += 1;
    this.#queue.push(build(this.#revision));
    // A change made by a listener (re-entrantly) is delivered after the current event has
    // reached every listener, so each listener sees revisions in order.
    if (this.#delivering) return;
    this.#delivering = true;
    try {
      for (let event = this.#queue.shift(); event; event = this.#queue.shift()) {
        for (const listener of [...this.#listeners]) {
          if (!this.#listeners.has(listener)) continue; // unsubscribed by an earlier listener
          try {
            listener(event);
          } catch (error) {
            this.#onListenerError(error);
          }
        }
      }
    } finally {
      this.#delivering = false;
    }
  }

  #arm(id: string, entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.ttlMs === undefined) return;
    entry.timer = setTimeout(() => {
      if (this.#members.get(id) !== entry) return;
      this.#members.delete(id);
      this.#emit((revision) => ({ type: 'member-removed', revision, id, reason: 'lease-expired' }));
    }, entry.ttlMs);
    entry.timer.unref?.();
  }

  async register(member: Member, options: RegisterOptions = {}): Promise<void> {
    this.#check();
    const frozen = freezeMember(member);
    const existing = this.#members.get(member.id);
    if (existing) {
      existing.member = frozen;
      if (options.ttlMs !== undefined) existing.ttlMs = options.ttlMs;
      this.#arm(member.id, existing);
      this.#emit((revision) => ({ type: 'member-updated', revision, member: frozen }));
      return;
    }
    const entry: Entry = { member: frozen, health: options.health ?? 'up', ttlMs: options.ttlMs };
    this.#members.set(member.id, entry);
    this.#arm(member.id, entry);
    this.#emit((revision) => ({ type: 'member-added', revision, member: frozen }));
  }

  async keepAlive(id: string): Promise<void> {
    this.#check();
    const entry = this.#entry(id);
    this.#arm(id, entry);
  }

  async deregister(id: string, reason = 'deregistered'): Promise<void> {
    this.#check();
    const entry = this.#members.get(id);
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    this.#members.delete(id);
    this.#emit((revision) => ({ type: 'member-removed', revision, id, reason }));
  }

  async report(id: string, load: LoadReport): Promise<void> {
    this.#check();
    const entry = this.#entry(id);
    const frozen = Object.freeze({ ...load, custom: Object.freeze({ ...load.custom }) });
    entry.load = frozen;
    this.#emit((revision) => ({ type: 'load', revision, id, load: frozen }));
  }

  async setHealth(id: string, health: HealthState, reason: string): Promise<void> {
    this.#check();
    const entry = this.#entry(id);
    const previous = entry.health;
    if (previous === health) return;
    entry.health = health;
    this.#emit((revision) => ({ type: 'health', revision, id, health, previous, reason }));
  }

  async assign(key: string, value: unknown): Promise<void> {
    this.#check();
    const assignment: Assignment = Object.freeze({
      key,
      value: deepFreeze(structuredClone(value)),
      updatedAt: Date.now(),
    });
    this.#assignments.set(key, assignment);
    this.#emit((revision) => ({ type: 'assignment-set', revision, assignment }));
  }

  async unassign(key: string): Promise<void> {
    this.#check();
    if (!this.#assignments.delete(key)) return;
    this.#emit((revision) => ({ type: 'assignment-deleted', revision, key }));
  }

  async get(id: string): Promise<MemberView | undefined> {
    this.#check();
    const e = this.#members.get(id);
    return e ? view(e) : undefined;
  }

  async snapshot(): Promise<RegistrySnapshot> {
    this.#check();
    return {
      revision: this.#revision,
      members: [...this.#members.values()].map(view),
      assignments: [...this.#assignments.values()],
    };
  }

  watch(listener: RegistryListener): () => void {
    this.#check();
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#members.values()) if (e.timer) clearTimeout(e.timer);
    this.#listeners.clear();
    this.#queue = [];
  }
}

function view(e: Entry): MemberView {
  return e.load
    ? { member: e.member, health: e.health, load: e.load }
    : { member: e.member, health: e.health };
}

function freezeMember(m: Member): Member {
  return Object.freeze({
    ...m,
    addresses: Object.freeze([...m.addresses]),
    ports: Object.freeze({ ...m.ports }),
    labels: Object.freeze({ ...m.labels }),
  });
}

/** Freezes a cloned JSON-like value so readers (snapshots, events) cannot alter the stored one. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
