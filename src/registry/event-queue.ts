/**
 * Ordered delivery of registry events, shared by the memory, mesh and etcd registries: a local
 * revision counter, events
 * delivered in revision order and each once, listener errors isolated, and a change made by a
 * listener (re-entrantly) queued behind the event being delivered.
 */
import type { RegistryEvent, RegistryListener } from './registry.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** An event before the queue numbers it. */
export type EventBody = DistributiveOmit<RegistryEvent, 'revision'>;

export class EventQueue {
  #revision = 0;
  readonly #listeners = new Set<RegistryListener>();
  #queue: RegistryEvent[] = [];
  #delivering = false;
  readonly #onListenerError: (error: unknown) => void;

  constructor(onListenerError: (error: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  get revision(): number {
    return this.#revision;
  }

  watch(listener: RegistryListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Numbers the events and delivers them (now, or after the event being delivered). */
  emit(bodies: readonly EventBody[]): void {
    for (const body of bodies) {
      this.#revision += 1;
      this.#queue.push({ ...body, revision: this.#revision } as RegistryEvent);
    }
    if (this.#delivering || this.#queue.length === 0) return;
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

  /** Drops every listener and undelivered event. */
  clear(): void {
    this.#listeners.clear();
    this.#queue = [];
  }
}
