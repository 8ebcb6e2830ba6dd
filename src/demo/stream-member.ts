/**
 * A demo live-data member (seed 003) for `npm start`: a WebSocket stream server publishing
 * deterministic price ticks, registered as a member of a pool with its stream port and capacity,
 * reporting its users (open streams) to the registry so that lists and the dashboard show them.
 * Not for production; a real app server embeds `StreamServer` the same way.
 */
import { makeMember } from '../core/model.js';
import { StreamServer } from '../list/stream-server.js';
import { TickerFeed } from '../list/ticker.js';
import type { Registry } from '../registry/registry.js';

export interface DemoStreamMemberOptions {
  readonly id: string;
  readonly pool: string;
  readonly host: string;
  readonly port: number;
  readonly site: string;
  readonly group: number;
  readonly capacity: number;
  readonly tickMs: number;
  readonly registry: Registry;
  readonly reportIntervalMs?: number;
}

export class DemoStreamMember {
  readonly id: string;
  #options: DemoStreamMemberOptions;
  #server: StreamServer | undefined;
  #ticker: TickerFeed | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: DemoStreamMemberOptions) {
    this.#options = options;
    this.id = options.id;
  }

  get server(): StreamServer | undefined {
    return this.#server;
  }

  async start(): Promise<void> {
    const o = this.#options;
    this.#server = await StreamServer.listen({ serverId: o.id, host: o.host, port: o.port });
    this.#ticker = new TickerFeed({ server: this.#server, intervalMs: o.tickMs }).start();
    const bound = this.#server.address!;
    await o.registry.register(
      makeMember({
        id: o.id,
        pool: o.pool,
        addresses: [bound.address],
        ports: { main: bound.port, stream: bound.port },
        site: o.site,
        group: o.group,
        labels: { demo: 'true', capacity: String(o.capacity) },
      }),
    );
    const report = () =>
      o.registry
        .report(o.id, {
          users: this.#server?.connections ?? 0,
          connections: this.#server?.connections ?? 0,
          inFlight: 0,
          cpu: 0,
          custom: {},
          timestamp: Date.now(),
        })
        .catch(() => {});
    await report();
    this.#timer = setInterval(report, o.reportIntervalMs ?? 1000);
    this.#timer.unref();
  }

  stats(): { users: number; published: number } {
    const s = this.#server?.stats();
    return { users: s?.connections ?? 0, published: s?.published ?? 0 };
  }

  /** Tells clients to move (goaway), then stops. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#ticker?.stop();
    this.#server?.drain('shutting down');
    await this.#server?.close();
  }
}
