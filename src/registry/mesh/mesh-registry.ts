/**
 * The `mesh` registry: every node holds the whole state and replicates its writes to its
 * peers over TCP (seed 003, L3.1/L3.2). Writes are versioned and merged last-writer-wins per
 * field (replica.ts); peers' liveness comes from heartbeats and a SWIM/Lifeguard failure
 * detector (membership.ts, detector.ts) and is mapped onto the health of the members they own.
 */
import type { HealthState, LoadReport, Member, MemberView } from '../../core/model.js';
import { NotFoundError, RegistryError } from '../../errors.js';
import { EventQueue } from '../event-queue.js';
import type { RegisterOptions, Registry, RegistryListener, RegistrySnapshot } from '../registry.js';
import type { NodeTransition } from './detector.js';
import { healthInput, loadInput, memberInput, ttlInput, valueInput } from './local-input.js';
import { Membership, type MeshNodeChange, type MeshNodeView } from './membership.js';
import type { AssignmentRecord, MemberRecord } from './messages.js';
import { type MeshOptions, type ResolvedMeshOptions, resolveMeshOptions } from './options.js';
import { Replica } from './replica.js';
import { type MeshStats, StatsCounter } from './stats.js';
import type { Link } from './transport.js';

export type MeshNodeListener = (change: MeshNodeChange) => void;

export class MeshRegistry implements Registry {
  readonly kind = 'mesh';
  readonly #options: ResolvedMeshOptions;
  readonly #self: string;
  readonly #replica: Replica;
  readonly #events: EventQueue;
  readonly #stats = new StatsCounter();
  readonly #membership: Membership;
  readonly #leases = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #reapers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #nodeListeners = new Set<MeshNodeListener>();
  #closed = false;

  private constructor(options: ResolvedMeshOptions) {
    this.#options = options;
    this.#self = options.nodeId;
    this.#replica = new Replica(options.nodeId);
    this.#events = new EventQueue(options.onListenerError);
    this.#membership = new Membership(options, this.#stats, {
      onTransition: (t) => this.#onTransition(t),
      onLinkReady: (link) => this.#sendState(link),
      onData: (link, message) => {
        if (message.t === 'update') {
          for (const record of message.members ?? []) this.#applyMember(record);
          for (const record of message.assignments ?? []) this.#applyAssignment(record);
        } else if (message.t === 'renew') {
          this.#renewFromPeer(message.id, link.peerId);
        }
      },
      onTick: () => this.#onTick(),
    });
  }

  /** Starts a node: validates the options (InvalidArgumentError), listens, dials the seeds. */
  static async start(options: MeshOptions): Promise<MeshRegistry> {
    const registry = new MeshRegistry(resolveMeshOptions(options));
    await registry.#membership.start();
    return registry;
  }

  get nodeId(): string {
    return this.#self;
  }

  /** Where the listener is bound. */
  get address(): { host: string; port: number } {
    return this.#membership.address;
  }

  /** The `host:port` peers dial to reach this node. */
  get advertise(): string {
    return this.#membership.advertise;
  }

  /** Every known node (this one included) as this node sees it. */
  nodes(): MeshNodeView[] {
    return this.#membership.nodes();
  }

  stats(): MeshStats {
    return this.#stats.snapshot();
  }

  /** Subscribes to node state changes in this node's view; returns an unsubscribe function. */
  onNode(listener: MeshNodeListener): () => void {
    this.#nodeListeners.add(listener);
    return () => {
      this.#nodeListeners.delete(listener);
    };
  }

  #check(): void {
    if (this.#closed) throw new RegistryError('registry is closed');
  }

  #existing(id: string): MemberRecord & { def: NonNullable<MemberRecord['def']> } {
    const record = this.#replica.record(id);
    if (!record?.def) throw new NotFoundError('member', id);
    return record as MemberRecord & { def: NonNullable<MemberRecord['def']> };
  }

  /** A local write: merge, send to every peer, then deliver its events. */
  #commitMember(record: MemberRecord): void {
    const events = this.#replica.mergeMember(record);
    this.#membership.broadcast({ t: 'update', members: [record] });
    this.#events.emit(events);
  }

  #commitAssignment(record: AssignmentRecord): void {
    const events = this.#replica.mergeAssignment(record);
    this.#membership.broadcast({ t: 'update', assignments: [record] });
    this.#events.emit(events);
  }

  #applyMember(record: MemberRecord): void {
    this.#events.emit(this.#replica.mergeMember(record));
    const owner = this.#replica.record(record.id)?.def?.owner;
    if (owner !== this.#self) this.#disarm(record.id);
  }

  #applyAssignment(record: AssignmentRecord): void {
    this.#events.emit(this.#replica.mergeAssignment(record));
  }

  /** Sends the whole replica to a new peer, in frames well under the size limit. */
  #sendState(link: Link): void {
    const budget = Math.floor(this.#options.maxFrameBytes / 2);
    let members: MemberRecord[] = [];
    let assignments: AssignmentRecord[] = [];
    let size = 0;
    const flush = () => {
      if (members.length + assignments.length > 0) link.send({ t: 'update', members, assignments });
      members = [];
      assignments = [];
      size = 0;
    };
    const add = (bytes: number) => {
      if (size + bytes > budget) flush();
      size += bytes;
    };
    for (const record of this.#replica.memberRecords()) {
      add(Buffer.byteLength(JSON.stringify(record)));
      members.push(record);
    }
    for (const record of this.#replica.assignmentRecords()) {
      add(Buffer.byteLength(JSON.stringify(record)));
      assignments.push(record);
    }
    flush();
  }

  #arm(id: string, ttlMs: number | null): void {
    this.#disarm(id);
    if (ttlMs === null) return;
    const timer = setTimeout(() => {
      this.#leases.delete(id);
      const record = this.#replica.record(id);
      if (this.#closed || record?.def?.owner !== this.#self) return;
      this.#commitMember({ id, gone: { r: 'lease-expired', ver: this.#replica.nextVersion() } });
    }, ttlMs);
    timer.unref?.();
    this.#leases.set(id, timer);
  }

  #disarm(id: string): void {
    const timer = this.#leases.get(id);
    if (timer) clearTimeout(timer);
    this.#leases.delete(id);
  }

  #renewFromPeer(id: string, from: string): void {
    const record = this.#replica.record(id);
    if (record?.def?.owner === this.#self) this.#arm(id, record.def.ttl);
    else this.#options.logger.debug?.({ id, from }, 'mesh: renewal for a member this node does not own');
  }

  /** A health write made by the failure detector (marked so it can be undone, never an operator's). */
  #meshHealth(id: string, health: HealthState, reason: string): void {
    this.#commitMember({
      id,
      health: { s: health, r: reason, mesh: true, ver: this.#replica.nextVersion() },
    });
  }

  #onTransition(t: NodeTransition): void {
    const change: MeshNodeChange = {
      id: t.id,
      state: t.state,
      previous: t.previous,
      incarnation: t.incarnation,
      reason: t.reason,
    };
    for (const listener of [...this.#nodeListeners]) {
      try {
        listener(change);
      } catch (error) {
        this.#options.onListenerError(error);
      }
    }
    if (this.#closed) return;
    if (t.state !== 'dead') this.#cancelReap(t.id);
    for (const record of this.#replica.ownedBy(t.id)) {
      const health = record.health?.s ?? 'up';
      const byMesh = record.health?.mesh === true;
      if (t.state === 'suspect' && health === 'up') {
        this.#meshHealth(record.id, 'suspect', `mesh: node ${t.id} suspect`);
      } else if (t.state === 'dead' && (health === 'up' || (health === 'suspect' && byMesh))) {
        this.#meshHealth(record.id, 'down', `mesh: node ${t.id} dead`);
      } else if (t.state === 'alive' && byMesh && (health === 'suspect' || health === 'down')) {
        this.#meshHealth(record.id, 'up', `mesh: node ${t.id} alive`);
      } else if (t.state === 'left') {
        this.#commitMember({ id: record.id, gone: { r: 'node-left', ver: this.#replica.nextVersion() } });
      }
    }
    if (t.state === 'dead' && !this.#reapers.has(t.id)) {
      const timer = setTimeout(() => this.#reap(t.id), this.#options.reapAfterMs);
      timer.unref?.();
      this.#reapers.set(t.id, timer);
    }
  }

  #reap(nodeId: string): void {
    this.#reapers.delete(nodeId);
    if (this.#closed || this.#membership.state(nodeId) !== 'dead') return;
    for (const record of this.#replica.ownedBy(nodeId)) {
      this.#commitMember({ id: record.id, gone: { r: 'node-dead', ver: this.#replica.nextVersion() } });
    }
  }

  #cancelReap(nodeId: string): void {
    const timer = this.#reapers.get(nodeId);
    if (timer) clearTimeout(timer);
    this.#reapers.delete(nodeId);
  }

  #onTick(): void {
    if (this.#closed) return;
    // This node is running: undo what the mesh did to its own members while others doubted it.
    for (const record of this.#replica.ownedBy(this.#self)) {
      const health = record.health?.s;
      if (record.health?.mesh && (health === 'suspect' || health === 'down')) {
        this.#meshHealth(record.id, 'up', `mesh: node ${this.#self} alive`);
      }
    }
    this.#replica.collectGarbage(Date.now() - this.#options.tombstoneTtlMs);
  }

  async register(member: Member, options: RegisterOptions = {}): Promise<void> {
    this.#check();
    const m = memberInput(member);
    const ttlMs = ttlInput(options.ttlMs);
    const health = healthInput(options.health ?? 'up', 'options.health');
    const existing = this.#replica.record(m.id);
    const ver = this.#replica.nextVersion();
    const ttl = ttlMs ?? existing?.def?.ttl ?? null;
    const def = { m, owner: this.#self, ttl, ver };
    this.#commitMember(
      existing
        ? { id: m.id, def }
        : { id: m.id, def, health: { s: health, r: 'registered', mesh: false, ver }, load: { l: null, ver } },
    );
    this.#arm(m.id, ttl);
  }

  async keepAlive(id: string): Promise<void> {
    this.#check();
    const record = this.#existing(id);
    if (record.def.owner === this.#self) {
      this.#arm(id, record.def.ttl);
      return;
    }
    if (record.def.ttl === null) return; // no lease to renew
    const link = this.#membership.link(record.def.owner);
    if (!link?.send({ t: 'renew', id })) {
      throw new RegistryError(
        `cannot renew the lease of ${id}: its owner ${record.def.owner} is not connected`,
      );
    }
  }

  async deregister(id: string, reason = 'deregistered'): Promise<void> {
    this.#check();
    if (!this.#replica.record(id)) return;
    this.#disarm(id);
    this.#commitMember({ id, gone: { r: reason, ver: this.#replica.nextVersion() } });
  }

  async report(id: string, load: LoadReport): Promise<void> {
    this.#check();
    this.#existing(id);
    const l = loadInput(load);
    this.#commitMember({ id, load: { l, ver: this.#replica.nextVersion() } });
  }

  async setHealth(id: string, health: HealthState, reason: string): Promise<void> {
    this.#check();
    const record = this.#existing(id);
    const s = healthInput(health);
    if ((record.health?.s ?? 'up') === s) return;
    this.#commitMember({
      id,
      health: { s, r: String(reason), mesh: false, ver: this.#replica.nextVersion() },
    });
  }

  async assign(key: string, value: unknown): Promise<void> {
    this.#check();
    const copy = valueInput(key, value, this.#options.maxFrameBytes);
    this.#commitAssignment({ key, ver: this.#replica.nextVersion(), set: { value: copy, at: Date.now() } });
  }

  async unassign(key: string): Promise<void> {
    this.#check();
    if (!this.#replica.hasAssignment(key)) return;
    this.#commitAssignment({ key, ver: this.#replica.nextVersion() });
  }

  async get(id: string): Promise<MemberView | undefined> {
    this.#check();
    return this.#replica.view(id);
  }

  async snapshot(): Promise<RegistrySnapshot> {
    this.#check();
    return {
      revision: this.#events.revision,
      members: this.#replica.views(),
      assignments: this.#replica.assignments(),
    };
  }

  watch(listener: RegistryListener): () => void {
    this.#check();
    return this.#events.watch(listener);
  }

  /**
   * Leaves the mesh gracefully: removes the members this node owns (reason `node-left`), tells
   * every peer it leaves (they mark it `left`), then closes every connection.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.clear();
    this.#nodeListeners.clear();
    for (const timer of this.#leases.values()) clearTimeout(timer);
    for (const timer of this.#reapers.values()) clearTimeout(timer);
    this.#leases.clear();
    this.#reapers.clear();
    for (const record of this.#replica.ownedBy(this.#self)) {
      this.#commitMember({ id: record.id, gone: { r: 'node-left', ver: this.#replica.nextVersion() } });
    }
    await this.#membership.leave();
  }
}
