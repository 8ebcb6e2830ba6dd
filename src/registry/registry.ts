import type { HealthState, LoadReport, Member, MemberView } from '../core/model.js';

/**
 * An assignment binds a key to a value that some role decided: a front-end to a site
 * (G4.9), a range set to a cluster member (C2.5), a coordinator to a role.
 */
export interface Assignment {
  /** Namespaced key, e.g. `gateway/site/shop/frontends`. */
  readonly key: string;
  /** JSON-serialisable value. */
  readonly value: unknown;
  /** Milliseconds since the epoch when it was set. */
  readonly updatedAt: number;
}

export interface RegistrySnapshot {
  /** Monotonic revision of the registry's state; every change increments it. */
  readonly revision: number;
  readonly members: readonly MemberView[];
  readonly assignments: readonly Assignment[];
}

/** A change to the registry. `revision` is the registry's revision after the change. */
export type RegistryEvent =
  | { readonly type: 'member-added'; readonly revision: number; readonly member: Member }
  | { readonly type: 'member-updated'; readonly revision: number; readonly member: Member }
  | {
      readonly type: 'member-removed';
      readonly revision: number;
      readonly id: string;
      readonly reason: string;
    }
  | { readonly type: 'load'; readonly revision: number; readonly id: string; readonly load: LoadReport }
  | {
      readonly type: 'health';
      readonly revision: number;
      readonly id: string;
      readonly health: HealthState;
      readonly previous: HealthState;
      readonly reason: string;
    }
  | { readonly type: 'assignment-set'; readonly revision: number; readonly assignment: Assignment }
  | { readonly type: 'assignment-deleted'; readonly revision: number; readonly key: string };

export type RegistryListener = (event: RegistryEvent) => void;

export interface RegisterOptions {
  /**
   * Lease time-to-live in milliseconds. When set, the registration expires (the member is
   * removed with reason `lease-expired`) unless `keepAlive` is called within the TTL.
   */
  readonly ttlMs?: number;
  /** Initial health; defaults to `up`. */
  readonly health?: HealthState;
}

/**
 * The control plane's state with change events. Implementations: `memory` (one process),
 * `mesh` (peers), `etcd` (scale-out). All pass the same contract suite
 * (test/registry/contract.ts). Member ids are unique across the registry.
 */
export interface Registry {
  /** `memory`, `mesh`, `etcd`. */
  readonly kind: string;
  /** Adds a member or replaces its definition (health and load are kept on replace). */
  register(member: Member, options?: RegisterOptions): Promise<void>;
  /** Renews the member's lease. Rejects with NotFoundError for unknown ids. */
  keepAlive(id: string): Promise<void>;
  /** Removes a member. Removing an unknown id is a no-op. */
  deregister(id: string, reason?: string): Promise<void>;
  /** Publishes a load report. Rejects with NotFoundError for unknown ids. */
  report(id: string, load: LoadReport): Promise<void>;
  /** Sets health. No event when the state does not change. Rejects with NotFoundError for unknown ids. */
  setHealth(id: string, health: HealthState, reason: string): Promise<void>;
  /** Sets (creates or replaces) an assignment. */
  assign(key: string, value: unknown): Promise<void>;
  /** Deletes an assignment; unknown keys are a no-op. */
  unassign(key: string): Promise<void>;
  /** One member's view, or undefined. */
  get(id: string): Promise<MemberView | undefined>;
  /** A consistent copy of the whole state. */
  snapshot(): Promise<RegistrySnapshot>;
  /**
   * Subscribes to changes. Events are delivered in revision order, each once, after the
   * promise of the change that caused it resolves or before; returns an unsubscribe function.
   */
  watch(listener: RegistryListener): () => void;
  /** Releases resources; further calls reject. */
  close(): Promise<void>;
}
