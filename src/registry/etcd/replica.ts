/**
 * This instance's copy of the registry state under the prefix, fed by the initial range read
 * and then by the watch, one etcd revision at a time. Applying a revision returns the registry
 * events it is visible as: the keys of one transaction (a deregister deletes three keys and
 * writes a removal record) become one event, never one per key.
 */
import type { HealthState, LoadReport, Member, MemberView } from '../../core/model.js';
import { deepFreeze, type EventBody } from '../mesh/replica.js';
import type { Assignment } from '../registry.js';
import {
  decodeAssignment,
  decodeHealth,
  decodeLoad,
  decodeMember,
  decodeRemoved,
  type KeyLayout,
} from './keys.js';

/** The fields of an etcd key-value this replica uses (as the etcd3 client returns them). */
export interface Kv {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly create_revision: string;
  readonly mod_revision: string;
  readonly lease: string;
}

/** One change seen by the watch: a put, or a delete (`deleted`). */
export interface KvChange {
  readonly kv: Kv;
  readonly deleted: boolean;
}

/** What the registry needs to guard a write on a member: the life of its key and its lease. */
export interface MemberEntry {
  member: Member;
  /** create_revision / mod_revision of `members/<id>`. */
  create: number;
  mod: number;
  /** etcd lease id of `members/<id>` ('0': none). */
  lease: string;
  health: HealthState;
  healthReason: string;
  /** mod_revision of `health/<id>`, 0 when the key does not exist. */
  healthMod: number;
  load: LoadReport | undefined;
  loadBytes: string | undefined;
  loadMod: number;
}

interface StoredAssignment {
  assignment: Assignment;
  mod: number;
}

interface Removal {
  reason: string;
  mod: number;
}

interface MemberKeys {
  member?: KvChange;
  health?: KvChange;
  load?: KvChange;
  removed?: KvChange;
}

function rev(text: string): number {
  return Number(text);
}

export class EtcdReplica {
  readonly #layout: KeyLayout;
  #members = new Map<string, MemberEntry>();
  #assignments = new Map<string, StoredAssignment>();
  #removals = new Map<string, Removal>();
  /** Values under the prefix that could not be decoded (written by something else). */
  malformed = 0;

  constructor(layout: KeyLayout) {
    this.#layout = layout;
  }

  get(id: string): MemberEntry | undefined {
    return this.#members.get(id);
  }

  view(id: string): MemberView | undefined {
    const e = this.#members.get(id);
    return e ? view(e) : undefined;
  }

  views(): MemberView[] {
    return [...this.#members.values()].map(view);
  }

  assignments(): Assignment[] {
    return [...this.#assignments.values()].map((s) => s.assignment);
  }

  /** Replaces the whole state (the range read at start); no events. */
  reset(kvs: readonly Kv[]): void {
    const next = new EtcdReplica(this.#layout);
    next.#apply(kvs.map((kv) => ({ kv, deleted: false })));
    this.#members = next.#members;
    this.#assignments = next.#assignments;
    this.#removals = next.#removals;
    this.malformed += next.malformed;
  }

  /**
   * Replaces the whole state with a fresh range read (after the watch fell behind a
   * compaction) and returns the differences as events. `since` is the last etcd revision
   * this replica had seen: a removal record newer than it names a removal's reason.
   */
  resync(kvs: readonly Kv[], since: number): EventBody[] {
    const next = new EtcdReplica(this.#layout);
    next.#apply(kvs.map((kv) => ({ kv, deleted: false })));
    const events: EventBody[] = [];
    for (const [id, old] of this.#members) {
      const now = next.#members.get(id);
      if (now && now.create === old.create) continue;
      const removal = next.#removals.get(id);
      const reason = removal && removal.mod > since ? removal.reason : 'lease-expired';
      events.push({ type: 'member-removed', id, reason });
    }
    for (const [id, now] of next.#members) {
      const old = this.#members.get(id);
      if (!old || old.create !== now.create) {
        events.push({ type: 'member-added', member: now.member });
        continue;
      }
      if (old.mod !== now.mod) events.push({ type: 'member-updated', member: now.member });
      if (now.load && now.loadMod !== old.loadMod) events.push({ type: 'load', id, load: now.load });
      if (old.health !== now.health) {
        const { health, healthReason: reason } = now;
        events.push({ type: 'health', id, health, previous: old.health, reason });
      }
    }
    for (const key of this.#assignments.keys()) {
      if (!next.#assignments.has(key)) events.push({ type: 'assignment-deleted', key });
    }
    for (const [key, now] of next.#assignments) {
      if (this.#assignments.get(key)?.mod !== now.mod) {
        events.push({ type: 'assignment-set', assignment: now.assignment });
      }
    }
    this.#members = next.#members;
    this.#assignments = next.#assignments;
    this.#removals = next.#removals;
    this.malformed += next.malformed;
    return events;
  }

  /** Applies the changes of one etcd revision; returns the events they are visible as. */
  applyRevision(changes: readonly KvChange[]): EventBody[] {
    return this.#apply(changes);
  }

  #apply(changes: readonly KvChange[]): EventBody[] {
    const events: EventBody[] = [];
    const byMember = new Map<string, MemberKeys>();
    for (const change of changes) {
      const parsed = this.#layout.parse(change.kv.key.toString('utf8'));
      if (!parsed) continue;
      if (parsed.kind === 'assignments') {
        const event = this.#assignment(parsed.name, change);
        if (event) events.push(event);
        continue;
      }
      const keys = byMember.get(parsed.name) ?? {};
      if (parsed.kind === 'members') keys.member = change;
      else if (parsed.kind === 'removed') keys.removed = change;
      else keys[parsed.kind] = change;
      byMember.set(parsed.name, keys);
    }
    for (const [id, keys] of byMember) events.push(...this.#member(id, keys));
    return events;
  }

  #assignment(key: string, { kv, deleted }: KvChange): EventBody | undefined {
    if (deleted) return this.#assignments.delete(key) ? { type: 'assignment-deleted', key } : undefined;
    const decoded = decodeAssignment(kv.value);
    if (!decoded) {
      this.malformed += 1;
      return undefined;
    }
    const assignment: Assignment = Object.freeze({
      key,
      value: deepFreeze(decoded.value),
      updatedAt: decoded.updatedAt,
    });
    this.#assignments.set(key, { assignment, mod: rev(kv.mod_revision) });
    return { type: 'assignment-set', assignment };
  }

  #member(id: string, keys: MemberKeys): EventBody[] {
    let removal: Removal | undefined;
    if (keys.removed) {
      const decoded = keys.removed.deleted ? undefined : decodeRemoved(keys.removed.kv.value);
      if (decoded) {
        removal = { reason: decoded.reason, mod: rev(keys.removed.kv.mod_revision) };
        this.#removals.set(id, removal);
      } else this.#removals.delete(id);
    }
    const before = this.#members.get(id);
    if (keys.member?.deleted) {
      if (!before) return [];
      this.#members.delete(id);
      return [{ type: 'member-removed', id, reason: removal?.reason ?? 'lease-expired' }];
    }
    const events: EventBody[] = [];
    const entry = before;
    if (keys.member) {
      const kv = keys.member.kv;
      const member = decodeMember(kv.value, id);
      if (!member) {
        this.malformed += 1;
        return [];
      }
      const frozen = deepFreeze(member);
      if (!entry) {
        const health = keys.health && !keys.health.deleted ? decodeHealth(keys.health.kv.value) : undefined;
        const load = keys.load && !keys.load.deleted ? decodeLoad(keys.load.kv.value) : undefined;
        this.#members.set(id, {
          member: frozen,
          create: rev(kv.create_revision),
          mod: rev(kv.mod_revision),
          lease: kv.lease,
          health: health?.health ?? 'up',
          healthReason: health?.reason ?? '',
          healthMod: health ? rev(keys.health!.kv.mod_revision) : 0,
          load: load ? deepFreeze(load) : undefined,
          loadBytes: load ? keys.load!.kv.value.toString('utf8') : undefined,
          loadMod: load ? rev(keys.load!.kv.mod_revision) : 0,
        });
        return [{ type: 'member-added', member: frozen }];
      }
      entry.member = frozen;
      entry.create = rev(kv.create_revision);
      entry.mod = rev(kv.mod_revision);
      entry.lease = kv.lease;
      events.push({ type: 'member-updated', member: frozen });
    }
    if (!entry) return events; // health or load of a member this replica does not know
    if (keys.health) {
      const health = keys.health.deleted ? undefined : decodeHealth(keys.health.kv.value);
      if (keys.health.deleted) entry.healthMod = 0;
      else if (!health) this.malformed += 1;
      else {
        entry.healthMod = rev(keys.health.kv.mod_revision);
        entry.healthReason = health.reason;
        if (health.health !== entry.health) {
          events.push({
            type: 'health',
            id,
            health: health.health,
            previous: entry.health,
            reason: health.reason,
          });
          entry.health = health.health;
        }
      }
    }
    if (keys.load) events.push(...this.#load(id, entry, keys.load, keys.member !== undefined));
    return events;
  }

  /** A load put in the same revision as a definition put with the same bytes is a lease move: no event. */
  #load(id: string, entry: MemberEntry, change: KvChange, withDefinition: boolean): EventBody[] {
    if (change.deleted) {
      entry.load = undefined;
      entry.loadBytes = undefined;
      entry.loadMod = 0;
      return [];
    }
    const bytes = change.kv.value.toString('utf8');
    const load = decodeLoad(change.kv.value);
    if (!load) {
      this.malformed += 1;
      return [];
    }
    const moved = withDefinition && bytes === entry.loadBytes;
    entry.load = deepFreeze(load);
    entry.loadBytes = bytes;
    entry.loadMod = rev(change.kv.mod_revision);
    return moved ? [] : [{ type: 'load', id, load: entry.load }];
  }
}

function view(e: MemberEntry): MemberView {
  return e.load
    ? { member: e.member, health: e.health, load: e.load }
    : { member: e.member, health: e.health };
}
