import type { HealthState, LoadReport, Member, MemberView } from '../core/model.js';
import { NotFoundError, RegistryError } from '../errors.js';
import { type EventBody, EventQueue } from './event-queue.js';
import type {
  Assignment,
  RegisterOptions,
  Registry,
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
  #members = new Map<string, Entry>();
  #assignments = new Map<string, Assignment>();
  readonly #events: EventQueue;
  #closed = false;

  constructor(options: MemoryRegistryOptions = {}) {
    this.#events = new EventQueue(options.onListenerError ?? (() => {}));
  }

  #check(): void {
    if (this.#closed) throw new RegistryError('registry is closed');
  }

  #entry(id: string): Entry {
    const e = this.#members.get(id);
    if (!e) throw new NotFoundError('member', id);
    return e;
  }

  /** Delivered in revision order; a change made by a listener queues behind the current event. */
  #emit(body: EventBody): void {
    this.#events.emit([body]);
  }

  #arm(id: string, entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    if (entry.ttlMs === undefined) return;
    entry.timer = setTimeout(() => {
      if (this.#members.get(id) !== entry) return;
      this.#members.delete(id);
      this.#emit({ type: 'member-removed', id, reason: 'lease-expired' });
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
      this.#emit({ type: 'member-updated', member: frozen });
      return;
    }
    const entry: Entry = { member: frozen, health: options.health ?? 'up', ttlMs: options.ttlMs };
    this.#members.set(member.id, entry);
    this.#arm(member.id, entry);
    this.#emit({ type: 'member-added', member: frozen });
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
    this.#emit({ type: 'member-removed', id, reason });
  }

  async report(id: string, load: LoadReport): Promise<void> {
    this.#check();
    const entry = this.#entry(id);
    const frozen = Object.freeze({ ...load, custom: Object.freeze({ ...load.custom }) });
    entry.load = frozen;
    this.#emit({ type: 'load', id, load: frozen });
  }

  async setHealth(id: string, health: HealthState, reason: string): Promise<void> {
    this.#check();
    const entry = this.#entry(id);
    const previous = entry.health;
    if (previous === health) return;
    entry.health = health;
    this.#emit({ type: 'health', id, health, previous, reason });
  }

  async assign(key: string, value: unknown): Promise<void> {
    this.#check();
    const assignment: Assignment = Object.freeze({
      key,
      value: deepFreeze(structuredClone(value)),
      updatedAt: Date.now(),
    });
    this.#assignments.set(key, assignment);
    this.#emit({ type: 'assignment-set', assignment });
  }

  async unassign(key: string): Promise<void> {
    this.#check();
    if (!this.#assignments.delete(key)) return;
    this.#emit({ type: 'assignment-deleted', key });
  }

  async get(id: string): Promise<MemberView | undefined> {
    this.#check();
    const e = this.#members.get(id);
    return e ? view(e) : undefined;
  }

  async snapshot(): Promise<RegistrySnapshot> {
    this.#check();
    return {
      revision: this.#events.revision,
      members: [...this.#members.values()].map(view),
      assignments: [...this.#assignments.values()],
    };
  }

  watch(listener: RegistryListener): () => void {
    this.#check();
    return this.#events.watch(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#members.values()) if (e.timer) clearTimeout(e.timer);
    this.#events.clear();
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
