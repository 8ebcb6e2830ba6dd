/**
 * The members this instance registered, so that an outage does not silently unregister them:
 * when etcd has been unreachable for longer than a member's TTL, its lease expires; once etcd
 * is back, a member whose keys are gone is registered again (new lease, same definition, last
 * known health), unless it was deregistered meanwhile (a removal record says so).
 *
 * A lease expiry seen while connected is final (the caller stopped renewing): the member is
 * forgotten. One seen in the replay of an outage is not, until the member has been checked.
 */
import type { HealthState } from '../../core/model.js';
import type { EventBody } from '../mesh/replica.js';
import { encode } from './keys.js';
import type { MemberWrites } from './member-writes.js';

interface OwnMember {
  definition: string;
  ttlMs: number | undefined;
  health: HealthState;
  /** A lease expiry at an etcd revision above this is final; Infinity while an outage is unchecked. */
  finalAfter: number;
}

export class OwnMembers {
  readonly #members = new Map<string, OwnMember>();

  /** Records a registration this instance made (a later one replaces the definition and TTL). */
  registered(id: string, definition: string, ttlMs: number | undefined, health: HealthState): void {
    const known = this.#members.get(id);
    this.#members.set(id, {
      definition,
      ttlMs: ttlMs ?? known?.ttlMs,
      health: known?.health ?? health,
      finalAfter: 0,
    });
  }

  forget(id: string): void {
    this.#members.delete(id);
  }

  /** Follows the events of one etcd revision (or of a resync) for the members it knows. */
  observe(events: readonly EventBody[], etcdRevision: number): void {
    for (const e of events) {
      if (e.type === 'assignment-set' || e.type === 'assignment-deleted') continue;
      const own = this.#members.get(
        e.type === 'member-added' || e.type === 'member-updated' ? e.member.id : e.id,
      );
      if (!own) continue;
      if (e.type === 'member-updated') own.definition = encode(e.member);
      else if (e.type === 'health') own.health = e.health;
      else if (e.type === 'member-removed') {
        if (e.reason !== 'lease-expired' || etcdRevision > own.finalAfter) this.#members.delete(e.id);
      }
    }
  }

  /** etcd is unreachable: expiries seen from now on may be the outage's doing. */
  outage(): void {
    for (const own of this.#members.values()) own.finalAfter = Number.POSITIVE_INFINITY;
  }

  /** Checks every member left unchecked by an outage; resolves to the ids registered again. */
  async recover(writes: MemberWrites, stopped: () => boolean): Promise<string[]> {
    const again: string[] = [];
    for (const [id, own] of [...this.#members]) {
      if (stopped()) break;
      if (own.finalAfter !== Number.POSITIVE_INFINITY) continue;
      const now = await writes.read(id);
      if (this.#members.get(id) !== own) continue; // deregistered or registered again meanwhile
      if (now.guard) own.finalAfter = now.revision;
      else if (now.removed) this.#members.delete(id);
      else {
        own.finalAfter = await writes.register(id, own.definition, own.ttlMs, own.health);
        again.push(id);
      }
    }
    return again;
  }
}
