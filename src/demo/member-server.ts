/**
 * A demo member: a small HTTP server that says who it is, answers health checks, and reports
 * a simulated, slowly wandering load (users, connections, cpu) to the registry, so that the
 * dashboard has something alive to show. Used by `npm start`; not for production.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Member, makeMember } from '../core/model.js';
import type { Registry } from '../registry/registry.js';

export interface DemoMemberOptions {
  id: string;
  pool: string;
  port: number;
  host?: string;
  site?: string;
  group?: number;
  weight?: number;
  reportIntervalMs?: number;
  registry: Registry;
  random?: () => number;
}

export class DemoMemberServer {
  readonly id: string;
  #server: Server | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #users = 0;
  #connections = 0;
  #inFlight = 0;
  #served = 0;
  #options: DemoMemberOptions;
  #random: () => number;
  member: Member | undefined;

  constructor(options: DemoMemberOptions) {
    this.#options = options;
    this.id = options.id;
    this.#random = options.random ?? Math.random;
    this.#users = Math.floor(this.#random() * 40) + 5;
  }

  async start(): Promise<Member> {
    const host = this.#options.host ?? '127.0.0.1';
    const server = createServer((req, res) => {
      this.#inFlight += 1;
      res.on('close', () => {
        this.#inFlight -= 1;
      });
      this.#served += 1;
      if (req.url === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      // Read the whole body (if any) before answering, so a request counts as in flight until then.
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      req.on('end', () => {
        const body: Record<string, unknown> = {
          member: this.id,
          pool: this.#options.pool,
          served: this.#served,
        };
        if (received > 0) body.received = received;
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
      });
    });
    server.on('connection', (socket) => {
      this.#connections += 1;
      socket.on('close', () => {
        this.#connections -= 1;
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    const port = (server.address() as AddressInfo).port;
    this.member = makeMember({
      id: this.id,
      pool: this.#options.pool,
      addresses: [host],
      ports: { main: port },
      site: this.#options.site ?? 'local',
      group: this.#options.group ?? 0,
      weight: this.#options.weight ?? 1,
      labels: { demo: 'true' },
    });
    await this.#options.registry.register(this.member);
    await this.#report();
    this.#timer = setInterval(() => {
      this.#report().catch(() => {});
    }, this.#options.reportIntervalMs ?? 1000);
    this.#timer.unref();
    return this.member;
  }

  /** Current counters (what the next load report will say). */
  stats(): { users: number; connections: number; inFlight: number; served: number } {
    return {
      users: this.#users,
      connections: this.#connections,
      inFlight: this.#inFlight,
      served: this.#served,
    };
  }

  async #report(): Promise<void> {
    // A bounded random walk: users drift by -3..+3 within 0..120.
    this.#users = Math.max(0, Math.min(120, this.#users + Math.round((this.#random() - 0.5) * 6)));
    await this.#options.registry.report(this.id, {
      users: this.#users,
      connections: this.#connections,
      inFlight: this.#inFlight,
      cpu: Math.min(1, this.#users / 150 + this.#random() * 0.05),
      custom: { served: this.#served },
      timestamp: Date.now(),
    });
  }

  /**
   * Stops accepting connections, lets requests in flight finish (up to `drainMs`), then
   * closes whatever is left.
   */
  async close(drainMs = 5000): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => server.closeAllConnections(), drainMs);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
      server.closeIdleConnections();
    });
  }
}
