/**
 * Who is in the mesh and whether they are alive: dials seeds and learnt nodes (with backoff and
 * full jitter) so the mesh becomes a full mesh, sends heartbeats, runs the failure detector's
 * checks (direct and indirect pings, a bare connect to tell "refused" from "port open"), and
 * gossips node states. Replicated data travels over the same links but is the registry's business.
 */
import type { DetectorOptions, NodeTransition } from './detector.js';
import { FailureDetector } from './detector.js';
import type { Message, NodeRecord, NodeState } from './messages.js';
import { formatHostPort, type ResolvedMeshOptions } from './options.js';
import { Prober } from './prober.js';
import type { StatsCounter } from './stats.js';
import { type Link, Transport } from './transport.js';

/** One node as this node sees it. */
export interface MeshNodeView {
  readonly id: string;
  /** `host:port` it advertises. */
  readonly address: string;
  readonly state: NodeState;
  readonly incarnation: number;
  /** Milliseconds since the epoch when it was last heard from (now, for this node itself). */
  readonly lastHeardAt: number;
  /** A link to it is established. */
  readonly connected: boolean;
  /** It is this node. */
  readonly self: boolean;
}

/** A node changed state in this node's view. */
export interface MeshNodeChange {
  readonly id: string;
  readonly state: NodeState;
  readonly previous: NodeState | undefined;
  readonly incarnation: number;
  readonly reason: string;
}

export interface MembershipHooks {
  onTransition(change: NodeTransition): void;
  /** A link was established: send it the replicated state. */
  onLinkReady(link: Link): void;
  /** `update` and `renew` messages. */
  onData(link: Link, message: Message): void;
  /** Once per heartbeat period, when this node was not itself stalled. */
  onTick(): void;
}

interface Dialable {
  addr: string;
  attempts: number;
  nextDialAt: number;
  dialing: boolean;
}

export class Membership {
  readonly #options: ResolvedMeshOptions;
  readonly #hooks: MembershipHooks;
  readonly #detector: FailureDetector;
  readonly #transport: Transport;
  readonly #peers = new Map<string, Dialable>();
  readonly #seeds = new Map<string, Dialable & { id?: string; self?: boolean }>();
  readonly #prober: Prober;
  #advertise = '';
  #bound = { host: '', port: 0 };
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastTick = Date.now();
  #closed = false;

  constructor(options: ResolvedMeshOptions, stats: StatsCounter, hooks: MembershipHooks) {
    this.#options = options;
    this.#hooks = hooks;
    const detectorOptions: DetectorOptions = { ...options, selfId: options.nodeId };
    this.#detector = new FailureDetector(detectorOptions);
    this.#transport = new Transport(
      {
        nodeId: options.nodeId,
        secret: options.secret,
        maxFrameBytes: options.maxFrameBytes,
        handshakeTimeoutMs: Math.max(2_000, 5 * options.pingTimeoutMs),
        logger: options.logger,
        stats,
        incarnation: () => this.#detector.incarnation,
        advertise: () => this.#advertise,
      },
      {
        onReady: (link) => this.#onReady(link),
        onMessage: (link, message) => this.#onMessage(link, message),
        onClosed: (link) => this.#onClosed(link),
      },
    );
    this.#prober = new Prober(
      {
        selfId: options.nodeId,
        pingTimeoutMs: options.pingTimeoutMs,
        indirectChecks: options.indirectChecks,
        addressOf: (id) => this.#peers.get(id)?.addr,
        canHelp: (id) => this.#detector.node(id)?.state === 'alive',
      },
      this.#transport,
    );
    for (const seed of options.seeds) {
      this.#seeds.set(seed, { addr: seed, attempts: 0, nextDialAt: 0, dialing: false });
    }
  }

  async start(): Promise<void> {
    this.#bound = await this.#transport.listen(this.#options.host, this.#options.port);
    this.#advertise = this.#options.advertise ?? formatHostPort(this.#bound.host, this.#bound.port);
    this.#lastTick = Date.now();
    this.#timer = setInterval(() => setImmediate(() => this.#tick()), this.#options.intervalMs);
    this.#timer.unref?.();
    this.#dialDue();
  }

  get address(): { host: string; port: number } {
    return { ...this.#bound };
  }

  get advertise(): string {
    return this.#advertise;
  }

  state(id: string): NodeState | undefined {
    return id === this.#options.nodeId ? 'alive' : this.#detector.node(id)?.state;
  }

  link(id: string): Link | undefined {
    return this.#transport.link(id);
  }

  broadcast(message: Message): void {
    this.#transport.broadcast(message);
  }

  nodes(): MeshNodeView[] {
    const self: MeshNodeView = {
      id: this.#options.nodeId,
      address: this.#advertise,
      state: 'alive',
      incarnation: this.#detector.incarnation,
      lastHeardAt: Date.now(),
      connected: false,
      self: true,
    };
    return [
      self,
      ...this.#detector.nodes().map((n) => ({
        id: n.id,
        address: this.#peers.get(n.id)?.addr ?? '',
        state: n.state,
        incarnation: n.incarnation,
        lastHeardAt: n.lastHeardAt,
        connected: this.#transport.link(n.id) !== undefined,
        self: false,
      })),
    ];
  }

  /** Says goodbye to every peer (they mark this node `left`), then closes every connection. */
  async leave(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#transport.broadcast({ t: 'leave', inc: this.#detector.incarnation });
    this.#prober.close();
    await this.#transport.close();
  }

  #tick(): void {
    if (this.#closed) return;
    const now = Date.now();
    const lag = now - this.#lastTick - this.#options.intervalMs;
    this.#lastTick = now;
    this.#transport.broadcast({ t: 'hb', inc: this.#detector.incarnation });
    this.#dialDue();
    if (lag > this.#options.missedReports * this.#options.intervalMs) {
      // This node itself could not run for longer than the silence window: the silence it saw
      // is its own, not its peers' (Lifeguard's local health awareness, simplified).
      this.#detector.grace(lag);
      this.#options.logger.info?.({ lagMs: lag }, 'mesh: this node was stalled; not blaming its peers');
      return;
    }
    this.#runChecks();
    for (const t of this.#detector.expire()) this.#transition(t);
    this.#hooks.onTick();
  }

  /** Passes on the detector's news (suspicion confirmations) to every peer. */
  #forwardNews(): void {
    const news = this.#detector.takeNews();
    if (news.length === 0) return;
    const nodes = news.map((r) => ({ ...r, addr: this.#peers.get(r.id)?.addr ?? '' }));
    this.#transport.broadcast({ t: 'nodes', nodes });
  }

  #transition(t: NodeTransition): void {
    const addr = this.#peers.get(t.id)?.addr ?? '';
    const record: NodeRecord =
      t.state === 'suspect'
        ? { id: t.id, addr, state: t.state, inc: t.incarnation, from: t.from, open: t.open }
        : { id: t.id, addr, state: t.state, inc: t.incarnation };
    this.#options.logger.info?.(
      { node: t.id, state: t.state, previous: t.previous, incarnation: t.incarnation, reason: t.reason },
      `mesh: node ${t.id} is ${t.state}`,
    );
    // Gossip: a change in our view is news for every peer (the suspect too: it can refute).
    this.#transport.broadcast({ t: 'nodes', nodes: [record] });
    this.#hooks.onTransition(t);
  }

  #selfRecord(): NodeRecord {
    return {
      id: this.#options.nodeId,
      addr: this.#advertise,
      state: 'alive',
      inc: this.#detector.incarnation,
    };
  }

  #learn(id: string, addr: string, overwrite: boolean): void {
    if (id === this.#options.nodeId || !addr) return;
    const peer = this.#peers.get(id);
    if (!peer) this.#peers.set(id, { addr, attempts: 0, nextDialAt: Date.now(), dialing: false });
    else if (overwrite) peer.addr = addr;
  }

  #onReady(link: Link): void {
    this.#learn(link.peerId, link.peerAddr, true);
    const peer = this.#peers.get(link.peerId);
    if (peer) peer.attempts = 0;
    const t = this.#detector.heard(link.peerId, link.peerInc);
    const records: NodeRecord[] = [this.#selfRecord()];
    for (const r of this.#detector.records()) records.push({ ...r, addr: this.#peers.get(r.id)?.addr ?? '' });
    link.send({ t: 'nodes', nodes: records });
    this.#hooks.onLinkReady(link);
    if (t) this.#transition(t);
  }

  #onClosed(link: Link): void {
    if (this.#closed) return;
    this.#detector.lost(link.peerId);
    const peer = this.#peers.get(link.peerId);
    if (peer) peer.nextDialAt = Date.now();
    setImmediate(() => {
      if (this.#closed) return;
      this.#runChecks();
      this.#dialDue();
    });
  }

  #onMessage(link: Link, message: Message): void {
    const from = link.peerId;
    this.#detector.touch(from);
    switch (message.t) {
      case 'hb': {
        const t = this.#detector.heard(from, message.inc);
        if (t) this.#transition(t);
        return;
      }
      case 'ping':
        link.send({ t: 'ack', seq: message.seq });
        return;
      case 'ack':
      case 'ping-res':
        this.#prober.answer(from, message.seq, message.t === 'ack' ? 'ack' : message.result);
        return;
      case 'ping-req':
        this.#prober.help(link, message.seq, message.target);
        return;
      case 'nodes':
        for (const record of message.nodes) this.#onGossip(record, from);
        this.#forwardNews();
        return;
      case 'leave': {
        const t = this.#detector.left(from, message.inc);
        if (t) this.#transition(t);
        return;
      }
      case 'update':
      case 'renew':
        this.#hooks.onData(link, message);
        return;
      default:
        return; // hello and auth never get here (transport)
    }
  }

  #onGossip(record: NodeRecord, sender: string): void {
    this.#learn(record.id, record.addr, false);
    const { transition, refute } = this.#detector.gossip(record, sender);
    if (refute) {
      this.#options.logger.info?.(
        { incarnation: this.#detector.incarnation, by: sender, state: record.state },
        'mesh: refuting a suspicion about this node',
      );
      this.#transport.broadcast({ t: 'nodes', nodes: [this.#selfRecord()] });
      this.#transport.broadcast({ t: 'hb', inc: this.#detector.incarnation });
    }
    if (transition) {
      if (transition.state === 'alive') this.#learn(record.id, record.addr, true);
      this.#transition(transition);
    }
  }

  #dialDue(): void {
    if (this.#closed) return;
    const now = Date.now();
    for (const [addr, seed] of this.#seeds) {
      if (seed.self || seed.dialing || now < seed.nextDialAt) continue;
      if (seed.id && (this.#transport.link(seed.id) || this.#peers.has(seed.id))) continue;
      this.#dial(seed, addr, (id) => {
        seed.id = id;
      });
    }
    for (const [id, peer] of this.#peers) {
      if (peer.dialing || now < peer.nextDialAt || this.#transport.link(id)) continue;
      if (this.#detector.node(id)?.state === 'left') continue;
      this.#dial(peer, peer.addr);
    }
  }

  #dial(target: Dialable & { self?: boolean }, addr: string, onLinked?: (id: string) => void): void {
    target.dialing = true;
    void this.#transport.dial(addr).then((result) => {
      target.dialing = false;
      if (result.ok) {
        target.attempts = 0;
        onLinked?.(result.link.peerId);
        return;
      }
      if (result.error === 'self') {
        target.self = true;
        return;
      }
      target.attempts += 1;
      // Exponential backoff with full jitter: a random wait up to min(cap, base · 2^attempts).
      const ceiling = Math.min(
        30 * this.#options.intervalMs,
        this.#options.intervalMs * 2 ** target.attempts,
      );
      target.nextDialAt = Date.now() + Math.random() * ceiling;
    });
  }

  #runChecks(): void {
    for (const id of this.#detector.dueChecks()) {
      this.#prober.check(id, (direct, indirect) => {
        if (this.#closed) return;
        const t = this.#detector.checked(id, direct, indirect);
        if (t) this.#transition(t);
        this.#forwardNews();
      });
    }
  }
}
