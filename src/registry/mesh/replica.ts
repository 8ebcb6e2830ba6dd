/**
 * The replicated state one node holds: members and assignments as versioned records.
 * Each member field (definition, health, load, tombstone) is a last-writer-wins register on
 * its own version, so concurrent writes of different fields never clobber each other; merging
 * is idempotent and commutative, so full-state exchange and deltas use the same path.
 * Merging returns the registry events the change is visible as (none when nothing visible changed).
 */
import type { HealthState, LoadReport, Member, MemberView } from '../../core/model.js';
import type { EventBody } from '../event-queue.js';
import type { Assignment } from '../registry.js';
import type { AssignmentRecord, MemberRecord, Version } from './messages.js';

export type { EventBody } from '../event-queue.js';

/** Orders versions: by clock, then by node id. */
export function compareVersions(a: Version, b: Version): number {
  if (a.c !== b.c) return a.c < b.c ? -1 : 1;
  return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
}

function newer(candidate: Version | undefined, current: Version | undefined): boolean {
  return candidate !== undefined && (current === undefined || compareVersions(candidate, current) > 0);
}

interface StoredMember {
  record: MemberRecord;
  /** Local time the tombstone was stored, for garbage collection. */
  goneAt?: number;
}

interface StoredAssignment {
  record: AssignmentRecord;
  visible?: Assignment;
  goneAt?: number;
}

/** What a member record shows to readers. */
interface Visible {
  member: Member;
  defVer: Version;
  health: HealthState;
  load: LoadReport | undefined;
  loadVer: Version | undefined;
}

function visible(record: MemberRecord | undefined): Visible | undefined {
  const def = record?.def;
  if (!record || !def) return undefined;
  if (record.gone && compareVersions(record.gone.ver, def.ver) > 0) return undefined;
  return {
    member: def.m,
    defVer: def.ver,
    health: record.health?.s ?? 'up',
    load: record.load?.l ?? undefined,
    loadVer: record.load?.ver,
  };
}

/** Freezes a JSON value in place (values here are fresh copies owned by the replica). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export class Replica {
  readonly #nodeId: string;
  readonly #now: () => number;
  readonly #members = new Map<string, StoredMember>();
  readonly #assignments = new Map<string, StoredAssignment>();
  #clock = 0;

  constructor(nodeId: string, now: () => number = Date.now) {
    this.#nodeId = nodeId;
    this.#now = now;
  }

  /**
   * The version of a new local write: a Lamport clock that never runs behind the wall clock
   * (in ms), so a restarted node's writes still win over what it wrote in an earlier life.
   */
  nextVersion(): Version {
    this.#clock = Math.max(this.#clock + 1, Math.floor(this.#now()));
    return { c: this.#clock, n: this.#nodeId };
  }

  #observe(version: Version | undefined): void {
    if (version && version.c > this.#clock) this.#clock = version.c;
  }

  /** Merges a (partial) member record; returns the events it is visible as. */
  mergeMember(incoming: MemberRecord): EventBody[] {
    for (const v of [incoming.def?.ver, incoming.health?.ver, incoming.load?.ver, incoming.gone?.ver]) {
      this.#observe(v);
    }
    const stored = this.#members.get(incoming.id);
    const current: MemberRecord = stored?.record ?? { id: incoming.id };
    const next = {
      id: incoming.id,
      def: newer(incoming.def?.ver, current.def?.ver) ? deepFreeze(incoming.def) : current.def,
      health: newer(incoming.health?.ver, current.health?.ver) ? deepFreeze(incoming.health) : current.health,
      load: newer(incoming.load?.ver, current.load?.ver) ? deepFreeze(incoming.load) : current.load,
      gone: newer(incoming.gone?.ver, current.gone?.ver) ? deepFreeze(incoming.gone) : current.gone,
    } satisfies MemberRecord;
    if (
      next.def === current.def &&
      next.health === current.health &&
      next.load === current.load &&
      next.gone === current.gone
    ) {
      return [];
    }
    const before = visible(current);
    const after = visible(next);
    const goneAt = after ? undefined : (stored?.goneAt ?? this.#now());
    this.#members.set(incoming.id, { record: next, goneAt });
    const id = incoming.id;
    if (!before && !after) return [];
    if (!before && after) return [{ type: 'member-added', member: after.member }];
    if (before && !after) return [{ type: 'member-removed', id, reason: next.gone?.r ?? 'removed' }];
    const events: EventBody[] = [];
    if (before && after) {
      if (compareVersions(before.defVer, after.defVer) !== 0) {
        events.push({ type: 'member-updated', member: after.member });
      }
      if (
        after.load &&
        after.loadVer &&
        (!before.loadVer || compareVersions(before.loadVer, after.loadVer))
      ) {
        events.push({ type: 'load', id, load: after.load });
      }
      if (before.health !== after.health) {
        const reason = next.health?.r ?? '';
        events.push({ type: 'health', id, health: after.health, previous: before.health, reason });
      }
    }
    return events;
  }

  /** Merges an assignment record (a value or a tombstone); returns the events it is visible as. */
  mergeAssignment(incoming: AssignmentRecord): EventBody[] {
    this.#observe(incoming.ver);
    const stored = this.#assignments.get(incoming.key);
    if (stored && !newer(incoming.ver, stored.record.ver)) return [];
    const record = deepFreeze(incoming);
    const key = incoming.key;
    if (record.set) {
      const assignment: Assignment = Object.freeze({
        key,
        value: record.set.value,
        updatedAt: record.set.at,
      });
      this.#assignments.set(key, { record, visible: assignment });
      return [{ type: 'assignment-set', assignment }];
    }
    this.#assignments.set(key, { record, goneAt: stored?.goneAt ?? this.#now() });
    return stored?.visible ? [{ type: 'assignment-deleted', key }] : [];
  }

  /** The member's view, or undefined when it does not exist. */
  view(id: string): MemberView | undefined {
    const v = visible(this.#members.get(id)?.record);
    if (!v) return undefined;
    return v.load
      ? { member: v.member, health: v.health, load: v.load }
      : { member: v.member, health: v.health };
  }

  /** The record of a member that exists (tombstoned ones are not returned). */
  record(id: string): MemberRecord | undefined {
    const stored = this.#members.get(id);
    return stored && visible(stored.record) ? stored.record : undefined;
  }

  views(): MemberView[] {
    const out: MemberView[] = [];
    for (const id of this.#members.keys()) {
      const v = this.view(id);
      if (v) out.push(v);
    }
    return out;
  }

  /** Records of existing members owned by `nodeId`. */
  ownedBy(nodeId: string): MemberRecord[] {
    const out: MemberRecord[] = [];
    for (const { record } of this.#members.values()) {
      if (record.def?.owner === nodeId && visible(record)) out.push(record);
    }
    return out;
  }

  hasAssignment(key: string): boolean {
    return this.#assignments.get(key)?.visible !== undefined;
  }

  assignments(): Assignment[] {
    const out: Assignment[] = [];
    for (const s of this.#assignments.values()) if (s.visible) out.push(s.visible);
    return out;
  }

  /** Every record, tombstones included: the full state sent to a new peer. */
  memberRecords(): MemberRecord[] {
    return [...this.#members.values()].map((s) => s.record);
  }

  assignmentRecords(): AssignmentRecord[] {
    return [...this.#assignments.values()].map((s) => s.record);
  }

  /** Forgets tombstones stored before `before` (local time). */
  collectGarbage(before: number): void {
    for (const [id, s] of this.#members)
      if (s.goneAt !== undefined && s.goneAt < before) this.#members.delete(id);
    for (const [key, s] of this.#assignments) {
      if (s.goneAt !== undefined && s.goneAt < before) this.#assignments.delete(key);
    }
  }
}
