/**
 * Demo game worlds and players for `npm start` (seed 000). A world is a UDP game server on the
 * probe member library: it joins the registry as a member of a pool, answers the assigner's
 * FORWARD/NOTIFY, and broadcasts every player's moves to the others in the same incarnation.
 * Players are real SDK clients: they probe the assigner once, then move by talking to their
 * world directly. Not for production.
 */
import { connect } from '../client/node.js';
import type { ProbeClient } from '../client/probe.js';
import { makeMember } from '../core/model.js';
import { type MemberSession, ProbeMember } from '../probe/member.js';
import type { Registry } from '../registry/registry.js';

export interface DemoWorldOptions {
  id: string;
  pool: string;
  app: string;
  port: number;
  site: string;
  incarnations: readonly string[];
  registry: Registry;
  reportIntervalMs?: number;
}

/** One world: a ProbeMember that relays positions to everyone in the same incarnation. */
export class DemoWorld {
  readonly id: string;
  #member: ProbeMember;
  #options: DemoWorldOptions;
  #moves = 0;

  constructor(options: DemoWorldOptions) {
    this.#options = options;
    this.id = options.id;
    this.#member = new ProbeMember({
      id: options.id,
      app: options.app,
      site: options.site,
      incarnations: [...options.incarnations],
      port: options.port,
      registry: options.registry,
      reportIntervalMs: options.reportIntervalMs ?? 1000,
    });
    const name = (s: MemberSession) => s.user ?? s.id.slice(0, 8);
    this.#member.on('message', (s, data) => {
      let move: { x?: unknown; y?: unknown };
      try {
        move = JSON.parse(new TextDecoder().decode(data));
      } catch {
        return; // not JSON: a game server ignores garbage
      }
      if (typeof move?.x !== 'number' || typeof move.y !== 'number') return;
      this.#moves += 1;
      this.#member.broadcast(
        s.incarnation,
        JSON.stringify({ type: 'pos', player: name(s), x: move.x, y: move.y }),
      );
    });
  }

  async start(): Promise<void> {
    const bound = await this.#member.start();
    const o = this.#options;
    await o.registry.register(
      makeMember({
        id: o.id,
        pool: o.pool,
        addresses: [bound.address],
        ports: { main: bound.port },
        site: o.site,
        labels: { demo: 'true', incarnations: o.incarnations.join(',') },
      }),
    );
  }

  stats(): { sessions: number; moves: number } {
    return { sessions: this.#member.sessions().length, moves: this.#moves };
  }

  close(): Promise<void> {
    return this.#member.close();
  }
}

export interface DemoPlayersOptions {
  /** The assigner's endpoint, `host:port`. */
  balancer: string;
  app: string;
  count: number;
  movesPerSec: number;
  /** Each player leaves after about this long and another joins (0: players stay). */
  stayMs?: number;
}

/** SDK clients that join through the assigner and then move, straight to their world. */
export class DemoPlayers {
  #o: DemoPlayersOptions;
  #clients = new Set<ProbeClient>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #closed = false;
  #joined = 0;
  #failed = 0;
  #next = 1;

  constructor(options: DemoPlayersOptions) {
    this.#o = options;
  }

  start(): void {
    for (let i = 0; i < this.#o.count; i++) this.#later(() => this.#join(), i * 300);
  }

  #later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#closed) fn();
    }, ms);
    t.unref();
    this.#timers.add(t);
  }

  async #join(): Promise<void> {
    const user = `player-${this.#next++}`;
    let client: ProbeClient;
    try {
      client = await connect({ balancer: this.#o.balancer, app: this.#o.app, user, heartbeatMs: 1000 });
    } catch {
      this.#failed += 1;
      this.#later(() => this.#join(), 2000);
      return;
    }
    if (this.#closed) {
      await client.close();
      return;
    }
    this.#joined += 1;
    this.#clients.add(client);
    let x = Math.floor(Math.random() * 100);
    let y = Math.floor(Math.random() * 100);
    const move = setInterval(
      () => {
        x = Math.max(0, Math.min(99, x + Math.round(Math.random() * 2 - 1)));
        y = Math.max(0, Math.min(99, y + Math.round(Math.random() * 2 - 1)));
        client.send(JSON.stringify({ x, y }));
      },
      Math.max(10, Math.round(1000 / this.#o.movesPerSec)),
    );
    move.unref();
    const stay = this.#o.stayMs ?? 0;
    if (stay > 0) {
      this.#later(
        () => {
          clearInterval(move);
          this.#clients.delete(client);
          void client.close();
          this.#join();
        },
        stay / 2 + Math.random() * stay,
      );
    }
    client.on('closed', () => clearInterval(move));
  }

  summary(): { playing: number; joined: number; failed: number } {
    return { playing: this.#clients.size, joined: this.#joined, failed: this.#failed };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    await Promise.all([...this.#clients].map((c) => c.close()));
    this.#clients.clear();
  }
}
