/**
 * The failure detector's state machine (SWIM with Lifeguard's ideas; docs/protocols/mesh.md).
 * Pure: no I/O and no timers, the clock is injected; the mesh feeds it observations (a report
 * heard, a connection lost, a check's outcome, gossip) and carries out what it returns.
 */
import type { NodeRecord, NodeState, ProbeOutcome } from './messages.js';

export interface DetectorOptions {
  readonly selfId: string;
  readonly intervalMs: number;
  readonly missedReports: number;
  readonly indirectChecks: number;
  readonly suspicionMinMs: number;
  readonly suspicionMaxMs: number;
  readonly now?: () => number;
}

/** A change of a node's state. `previous` is undefined for a node first learnt of. */
export interface NodeTransition {
  readonly id: string;
  readonly state: NodeState;
  readonly previous: NodeState | undefined;
  readonly incarnation: number;
  readonly reason: string;
  /** For `suspect`: who suspected it, and whether its port still accepted connections. */
  readonly from?: string;
  readonly open?: boolean;
}

export interface TrackedNode {
  readonly id: string;
  readonly state: NodeState;
  readonly incarnation: number;
  readonly lastHeardAt: number;
  /** For a suspect: when it will be declared dead unless it refutes. */
  readonly deadline?: number;
}

interface Suspicion {
  startedAt: number;
  /** Distinct nodes that suspected it; the first one is not a confirmation. */
  readonly from: Set<string>;
  open: boolean;
}

interface Node {
  readonly id: string;
  state: NodeState;
  inc: number;
  lastHeardAt: number;
  lastCheckAt: number;
  lost: boolean;
  checkStartedAt: number | undefined;
  suspicion: Suspicion | undefined;
}

/**
 * Lifeguard's suspicion timeout: `max(min, max − (max − min)·log(C+1)/log(K+1))` for C
 * independent confirmations out of K expected.
 */
export function suspicionTimeout(confirmations: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const fraction = Math.log(Math.max(0, confirmations) + 1) / Math.log(k + 1);
  return Math.max(minMs, Math.floor(maxMs - (maxMs - minMs) * fraction));
}

export class FailureDetector {
  readonly #options: DetectorOptions;
  readonly #now: () => number;
  readonly #nodes = new Map<string, Node>();
  #incarnation = 0;
  #news: Array<Omit<NodeRecord, 'addr'>> = [];

  constructor(options: DetectorOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** This node's own incarnation (bumped to refute a suspicion). */
  get incarnation(): number {
    return this.#incarnation;
  }

  has(id: string): boolean {
    return this.#nodes.has(id);
  }

  node(id: string): TrackedNode | undefined {
    const n = this.#nodes.get(id);
    return n && this.#public(n);
  }

  nodes(): TrackedNode[] {
    return [...this.#nodes.values()].map((n) => this.#public(n));
  }

  #public(n: Node): TrackedNode {
    const base = { id: n.id, state: n.state, incarnation: n.inc, lastHeardAt: n.lastHeardAt };
    return n.suspicion ? { ...base, deadline: this.#deadline(n.suspicion) } : base;
  }

  #ensure(id: string, state: NodeState, inc: number): { node: Node; added: boolean } {
    const existing = this.#nodes.get(id);
    if (existing) return { node: existing, added: false };
    const now = this.#now();
    const node: Node = {
      id,
      state,
      inc,
      lastHeardAt: now,
      lastCheckAt: now,
      lost: false,
      checkStartedAt: undefined,
      suspicion: undefined,
    };
    this.#nodes.set(id, node);
    return { node, added: true };
  }

  #move(n: Node, state: NodeState, reason: string, extra: Partial<NodeTransition> = {}): NodeTransition {
    const previous = n.state;
    n.state = state;
    if (state !== 'suspect') n.suspicion = undefined;
    return { id: n.id, state, previous, incarnation: n.inc, reason, ...extra };
  }

  /** A report (hello or heartbeat) from the node itself, carrying its incarnation. */
  heard(id: string, incarnation: number): NodeTransition | undefined {
    const { node: n, added } = this.#ensure(id, 'alive', incarnation);
    n.lastHeardAt = this.#now();
    n.lost = false;
    if (added) return { id, state: 'alive', previous: undefined, incarnation, reason: 'joined' };
    if (incarnation <= n.inc) return undefined;
    n.inc = incarnation;
    return n.state === 'alive'
      ? undefined
      : this.#move(n, 'alive', `refuted with incarnation ${incarnation}`);
  }

  /** Any other frame from the node: it is not silent. */
  touch(id: string): void {
    const n = this.#nodes.get(id);
    if (n) n.lastHeardAt = this.#now();
  }

  /** Its connection closed or failed: check it now. */
  lost(id: string): void {
    const n = this.#nodes.get(id);
    if (n) n.lost = true;
  }

  /** Nodes to check now (silent too long, or connection lost); each is marked as being checked. */
  dueChecks(): string[] {
    const now = this.#now();
    const silence = this.#options.missedReports * this.#options.intervalMs;
    const due: string[] = [];
    for (const n of this.#nodes.values()) {
      if ((n.state !== 'alive' && n.state !== 'suspect') || n.checkStartedAt !== undefined) continue;
      if (n.lost || now - Math.max(n.lastHeardAt, n.lastCheckAt) >= silence) {
        n.checkStartedAt = now;
        n.lastCheckAt = now;
        n.lost = false;
        due.push(n.id);
      }
    }
    return due;
  }

  /**
   * A check's outcome: the direct probe, and what each helper asked to probe it reported.
   * Any answer (or any report heard since the check began) keeps the node alive; a refused
   * connection both directly and from a helper (or with no helper to ask) means the process
   * is gone; anything else makes it a suspect.
   */
  checked(id: string, direct: ProbeOutcome, indirect: readonly ProbeOutcome[]): NodeTransition | undefined {
    const n = this.#nodes.get(id);
    if (!n || n.checkStartedAt === undefined) return undefined;
    const startedAt = n.checkStartedAt;
    n.checkStartedAt = undefined;
    if (n.state !== 'alive' && n.state !== 'suspect') return undefined;
    // Heard from it since the check began, or an answer: alive.
    if (n.lastHeardAt > startedAt || direct === 'ack' || indirect.includes('ack')) {
      n.lastHeardAt = Math.max(n.lastHeardAt, this.#now());
      return undefined;
    }
    if (direct === 'refused' && (indirect.length === 0 || indirect.includes('refused'))) {
      return this.#move(n, 'dead', 'connection refused');
    }
    const open = direct === 'open' || indirect.includes('open');
    return this.#suspect(n, this.#options.selfId, open, 'no answer to direct or indirect pings');
  }

  #suspect(n: Node, from: string, open: boolean, reason: string): NodeTransition | undefined {
    if (n.state === 'suspect' && n.suspicion) {
      if (!n.suspicion.from.has(from) || (open && !n.suspicion.open)) {
        // A new independent confirmation: news for the other nodes too (Lifeguard forwards them).
        this.#news.push({ id: n.id, state: 'suspect', inc: n.inc, from, open });
      }
      n.suspicion.from.add(from);
      n.suspicion.open ||= open;
      return undefined;
    }
    n.suspicion = { startedAt: this.#now(), from: new Set([from]), open };
    return this.#move(n, 'suspect', reason, { from, open });
  }

  #deadline(s: Suspicion): number {
    const { indirectChecks, suspicionMinMs, suspicionMaxMs } = this.#options;
    // A port that still accepts connections proves the process exists (e.g. a blocked event
    // loop): confirmations from other nodes do not shorten the wait then.
    const timeout = s.open
      ? suspicionMaxMs
      : suspicionTimeout(s.from.size - 1, indirectChecks, suspicionMinMs, suspicionMaxMs);
    return s.startedAt + timeout;
  }

  /** Suspects whose suspicion ran out without refutation become dead. */
  expire(): NodeTransition[] {
    const now = this.#now();
    const out: NodeTransition[] = [];
    for (const n of this.#nodes.values()) {
      if (n.state === 'suspect' && n.suspicion && now >= this.#deadline(n.suspicion)) {
        out.push(this.#move(n, 'dead', 'suspicion timed out'));
      }
    }
    return out;
  }

  /**
   * Gossip about a node from `sender`. About this node itself, a suspicion or death at our
   * incarnation or above is refuted (`refute`: the incarnation was bumped; announce it).
   */
  gossip(record: NodeRecord, sender: string): { transition?: NodeTransition; refute?: boolean } {
    if (record.id === this.#options.selfId) {
      if (record.state !== 'alive' && record.inc >= this.#incarnation) {
        this.#incarnation = record.inc + 1;
        return { refute: true };
      }
      return {};
    }
    const { node: n, added } = this.#ensure(record.id, record.state, record.inc);
    if (added) {
      if (record.state === 'suspect') {
        n.suspicion = { startedAt: this.#now(), from: new Set([record.from ?? sender]), open: !!record.open };
      }
      const reason = `learnt from ${sender}`;
      return { transition: { id: n.id, state: n.state, previous: undefined, incarnation: n.inc, reason } };
    }
    if (record.inc < n.inc) return {};
    switch (record.state) {
      case 'alive':
        if (record.inc === n.inc) return {};
        n.inc = record.inc;
        n.lastHeardAt = Math.max(n.lastHeardAt, this.#now());
        return n.state === 'alive'
          ? {}
          : { transition: this.#move(n, 'alive', `refuted with incarnation ${record.inc}`) };
      case 'suspect': {
        if (n.state === 'dead' || n.state === 'left') return {};
        n.inc = record.inc;
        const from = record.from ?? sender;
        const transition = this.#suspect(n, from, !!record.open, `suspected by ${from}`);
        return transition ? { transition } : {};
      }
      case 'dead':
      case 'left':
        if (n.state === record.state || (n.state === 'left' && record.inc === n.inc)) {
          n.inc = record.inc;
          return {};
        }
        n.inc = record.inc;
        return { transition: this.#move(n, record.state, `${record.state} according to ${sender}`) };
    }
  }

  /**
   * Lifeguard's local health awareness, simplified: this node was itself unable to run for
   * `lagMs` (its timers fired late), so silence it observed proves nothing about others.
   * Restarts every silence clock and pushes suspicion deadlines back by the lag.
   */
  grace(lagMs: number): void {
    const now = this.#now();
    for (const n of this.#nodes.values()) {
      n.lastHeardAt = Math.max(n.lastHeardAt, now);
      if (n.suspicion) n.suspicion.startedAt += lagMs;
    }
  }

  /** The node said it leaves. */
  left(id: string, incarnation: number): NodeTransition | undefined {
    const n = this.#nodes.get(id);
    if (!n || n.state === 'left' || incarnation < n.inc) return undefined;
    n.inc = incarnation;
    return this.#move(n, 'left', 'left the mesh');
  }

  /**
   * Gossip to pass on that is not a state change: new confirmations of a suspicion (this
   * node's own failed check of a suspect, or one first heard from a peer). Empties the queue.
   */
  takeNews(): Array<Omit<NodeRecord, 'addr'>> {
    const news = this.#news;
    this.#news = [];
    return news;
  }

  /** This node's view of every node, as gossip records (addresses filled in by the caller). */
  records(): Array<Omit<NodeRecord, 'addr'>> {
    return [...this.#nodes.values()].map((n) =>
      n.suspicion
        ? { id: n.id, state: n.state, inc: n.inc, from: [...n.suspicion.from][0]!, open: n.suspicion.open }
        : { id: n.id, state: n.state, inc: n.inc },
    );
  }
}
