/**
 * Registrations that die with their process. With a shared registry (etcd), a member this
 * process registers must vanish when the process does: this wrapper gives every registration
 * without a TTL a lease of `ttlMs` and renews it every `ttlMs / 3` while the process lives.
 * Everything else passes through unchanged.
 */
import type { HealthState, LoadReport, Member, MemberView } from '../core/model.js';
import type { Logger } from '../util/logger.js';
import type { RegisterOptions, Registry, RegistryListener, RegistrySnapshot } from './registry.js';

export class LeasedRegistry implements Registry {
  readonly inner: Registry;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  /** Members registered here without a TTL of their own: renewed by this process. */
  readonly #kept = new Set<string>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(inner: Registry, ttlMs: number, logger: Logger) {
    this.inner = inner;
    this.#ttlMs = ttlMs;
    this.#logger = logger;
    this.#timer = setInterval(() => this.#renew(), Math.max(50, Math.floor(ttlMs / 3)));
    this.#timer.unref();
  }

  get kind(): string {
    return this.inner.kind;
  }

  #renew(): void {
    for (const id of this.#kept)
      this.inner.keepAlive(id).catch((err: unknown) => {
        if ((err as { code?: string }).code === 'USHER_ERR_NOT_FOUND') this.#kept.delete(id);
        this.#logger.warn({ err, member: id }, 'registry: cannot renew the lease of a member');
      });
  }

  async register(member: Member, options: RegisterOptions = {}): Promise<void> {
    if (options.ttlMs !== undefined) {
      this.#kept.delete(member.id);
      return this.inner.register(member, options);
    }
    await this.inner.register(member, { ...options, ttlMs: this.#ttlMs });
    this.#kept.add(member.id);
  }

  keepAlive(id: string): Promise<void> {
    return this.inner.keepAlive(id);
  }

  deregister(id: string, reason?: string): Promise<void> {
    this.#kept.delete(id);
    return this.inner.deregister(id, reason);
  }

  report(id: string, load: LoadReport): Promise<void> {
    return this.inner.report(id, load);
  }

  setHealth(id: string, health: HealthState, reason: string): Promise<void> {
    return this.inner.setHealth(id, health, reason);
  }

  assign(key: string, value: unknown): Promise<void> {
    return this.inner.assign(key, value);
  }

  unassign(key: string): Promise<void> {
    return this.inner.unassign(key);
  }

  get(id: string): Promise<MemberView | undefined> {
    return this.inner.get(id);
  }

  snapshot(): Promise<RegistrySnapshot> {
    return this.inner.snapshot();
  }

  watch(listener: RegistryListener): () => void {
    return this.inner.watch(listener);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#kept.clear();
    await this.inner.close();
  }
}
