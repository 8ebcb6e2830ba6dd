/**
 * The list service's cache: one document per pool, rebuilt lazily. Registry events mark the
 * pools they touch stale (a load or health report stales only its member's pool, assignments
 * nothing); the next `get` rebuilds from one snapshot. Renderings of a document are kept beside
 * it and dropped with it.
 */
import type { Member, MemberView } from '../core/model.js';
import { NotFoundError } from '../errors.js';
import type { Registry, RegistryEvent } from '../registry/registry.js';
import { type ListDocument, toListDocument } from './entry.js';

/** A built document and what the caller derived from it (rendered bodies), keyed by the caller. */
export interface CachedList<R> {
  readonly doc: ListDocument;
  readonly renderings: Map<string, R>;
}

export interface ListCacheOptions {
  readonly registry: Registry;
  readonly pools: readonly string[];
  readonly urlOf?: (m: Member) => string | undefined;
  /** Clock for `generatedAt`; `Date.now` by default. */
  readonly now?: () => number;
}

interface Built<R> extends CachedList<R> {
  readonly gen: number;
}

interface PoolState<R> {
  /** Bumped by every registry event that may change this pool's document. */
  gen: number;
  built?: Built<R>;
  building?: { readonly gen: number; readonly promise: Promise<Built<R>> };
}

export class ListCache<R> {
  readonly #registry: Registry;
  readonly #state = new Map<string, PoolState<R>>();
  readonly #urlOf: ((m: Member) => string | undefined) | undefined;
  readonly #now: () => number;
  /** Pool of each member id seen, so an event naming only an id stales only that pool. */
  readonly #poolOf = new Map<string, string>();
  readonly #unwatch: () => void;
  #builds = 0;

  constructor(options: ListCacheOptions) {
    this.#registry = options.registry;
    this.#urlOf = options.urlOf;
    this.#now = options.now ?? Date.now;
    for (const p of options.pools) this.#state.set(p, { gen: 0 });
    this.#unwatch = options.registry.watch((event) => this.#onEvent(event));
  }

  /** Whether `pool` is one of the cached pools. */
  has(pool: string): boolean {
    return this.#state.has(pool);
  }

  /** How many times a document was built from a registry snapshot. */
  get builds(): number {
    return this.#builds;
  }

  /**
   * The pool's document, as fresh as the last event seen when called: the cached one when no
   * event touched the pool since it was built, else a new one (concurrent callers share a build).
   * Rejects when the registry's snapshot does, and with NotFoundError for a pool not in `pools`.
   */
  get(pool: string): Promise<CachedList<R>> {
    const state = this.#state.get(pool);
    if (!state) return Promise.reject(new NotFoundError('listed pool', pool));
    const gen = state.gen;
    if (state.built?.gen === gen) return Promise.resolve(state.built);
    if (state.building?.gen === gen) return state.building.promise;
    const promise = this.#registry
      .snapshot()
      .then((snap) => {
        this.#learn(snap.members);
        this.#builds++;
        const built: Built<R> = {
          gen,
          doc: toListDocument(pool, snap.members, snap.revision, this.#now(), this.#urlOf),
          renderings: new Map(),
        };
        if (state.built === undefined || state.built.gen <= gen) state.built = built;
        return built;
      })
      .finally(() => {
        if (state.building?.promise === promise) state.building = undefined;
      });
    state.building = { gen, promise };
    return promise;
  }

  /** Stops watching the registry. */
  close(): void {
    this.#unwatch();
  }

  /** Marks `pool` stale, or every pool when it is unknown. */
  #touch(pool: string | undefined): void {
    if (pool === undefined) {
      for (const s of this.#state.values()) s.gen++;
      return;
    }
    const s = this.#state.get(pool);
    if (s) s.gen++;
  }

  #onEvent(event: RegistryEvent): void {
    switch (event.type) {
      case 'assignment-set':
      case 'assignment-deleted':
        return;
      case 'member-added':
      case 'member-updated': {
        const { id, pool } = event.member;
        const previous = this.#poolOf.get(id);
        this.#poolOf.set(id, pool);
        this.#touch(pool);
        // A member that moved pools, or was defined before we first looked, may leave another pool.
        if (previous !== pool && (previous !== undefined || event.type === 'member-updated'))
          this.#touch(previous);
        return;
      }
      case 'member-removed': {
        const pool = this.#poolOf.get(event.id);
        this.#poolOf.delete(event.id);
        this.#touch(pool);
        return;
      }
      default:
        this.#touch(this.#poolOf.get(event.id));
    }
  }

  #learn(members: readonly MemberView[]): void {
    for (const v of members) this.#poolOf.set(v.member.id, v.member.pool);
  }
}
