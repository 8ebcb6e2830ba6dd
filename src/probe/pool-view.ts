/**
 * A cached copy of the registry's members, kept current from `registry.watch`, so that the
 * assigner never asks the registry for a snapshot per datagram.
 *
 * Events carry everything except the health of a member that just joined; for that one the
 * view reads a fresh snapshot (coalesced when several members join at once) and, until it has
 * it, treats the newcomer as `down` (never chosen). Events that arrive while a snapshot is
 * read are held and replayed when their revision is newer than the snapshot's.
 */
import type { MemberView } from '../core/model.js';
import type { Registry, RegistryEvent } from '../registry/registry.js';

export class PoolView {
  readonly #registry: Registry;
  readonly #onError: (error: unknown) => void;
  #members = new Map<string, MemberView>();
  /** Per pool, the members in registration order; rebuilt lazily after a change. */
  #pools = new Map<string, readonly MemberView[]>();
  #dirty = true;
  #revision = 0;
  #unwatch: (() => void) | undefined;
  /** Events held while a snapshot is being read. */
  #held: RegistryEvent[] | undefined;
  #resyncAgain = false;
  #resyncing: Promise<void> | undefined;
  #closed = false;

  constructor(registry: Registry, onError: (error: unknown) => void = () => {}) {
    this.#registry = registry;
    this.#onError = onError;
  }

  /** Reads the registry and starts following it. */
  async start(): Promise<void> {
    this.#unwatch = this.#registry.watch((event) => {
      if (this.#held) this.#held.push(event);
      else this.#apply(event);
    });
    try {
      await this.#resync();
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** The registry revision the view reflects (at least). */
  get revision(): number {
    return this.#revision;
  }

  /** The members of `pool`, as MemberViews (the policy's input). */
  members(pool: string): readonly MemberView[] {
    if (this.#dirty) this.#rebuild();
    return this.#pools.get(pool) ?? [];
  }

  /** Resolves when no snapshot read is in flight (for tests and orderly shutdown). */
  async settled(): Promise<void> {
    while (this.#resyncing) await this.#resyncing.catch(() => {});
  }

  close(): void {
    this.#closed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  #rebuild(): void {
    const pools = new Map<string, MemberView[]>();
    for (const v of this.#members.values()) {
      const list = pools.get(v.member.pool);
      if (list) list.push(v);
      else pools.set(v.member.pool, [v]);
    }
    this.#pools = pools;
    this.#dirty = false;
  }

  #resync(): Promise<void> {
    if (this.#resyncing) {
      this.#resyncAgain = true;
      return this.#resyncing;
    }
    const run = async (): Promise<void> => {
      do {
        this.#resyncAgain = false;
        this.#held = [];
        let snap: Awaited<ReturnType<Registry['snapshot']>>;
        try {
          snap = await this.#registry.snapshot();
        } catch (error) {
          const held = this.#held;
          this.#held = undefined;
          for (const e of held) this.#apply(e);
          throw error;
        }
        if (this.#closed) return;
        const held = this.#held;
        this.#held = undefined;
        this.#members = new Map(snap.members.map((v) => [v.member.id, v]));
        this.#revision = snap.revision;
        this.#dirty = true;
        for (const e of held) if (e.revision > snap.revision) this.#apply(e);
      } while (this.#resyncAgain && !this.#closed);
    };
    this.#resyncing = run().finally(() => {
      this.#resyncing = undefined;
    });
    return this.#resyncing;
  }

  #apply(event: RegistryEvent): void {
    if (this.#closed) return;
    if (event.revision <= this.#revision) return;
    this.#revision = event.revision;
    const views = this.#members;
    switch (event.type) {
      case 'member-added':
      case 'member-updated': {
        const old = views.get(event.member.id);
        if (old) {
          views.set(event.member.id, { ...old, member: event.member });
        } else {
          // Health unknown until a snapshot says: not chosen meanwhile.
          views.set(event.member.id, { member: event.member, health: 'down' });
          this.#resync().catch((error: unknown) => {
            if (!this.#closed) this.#onError(error);
          });
        }
        break;
      }
      case 'member-removed':
        views.delete(event.id);
        break;
      case 'load': {
        const old = views.get(event.id);
        if (old) views.set(event.id, { ...old, load: event.load });
        break;
      }
      case 'health': {
        const old = views.get(event.id);
        if (old) views.set(event.id, { ...old, health: event.health });
        break;
      }
      default:
        return;
    }
    this.#dirty = true;
  }
}
