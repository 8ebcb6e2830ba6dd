/**
 * Demo traffic: a client loop that asks a pool's policy where each request belongs, then
 * sends the request straight to that member — the balancer decides and steps out of the way.
 * It keeps a few requests open for a while so connections and in-flight counts move.
 * Used by `npm start`; not for production.
 */
import { request } from 'node:http';
import type { Policy } from '../core/policy/policy.js';
import type { Registry } from '../registry/registry.js';

export interface DemoTrafficOptions {
  pool: string;
  policy: Policy;
  registry: Registry;
  /** Requests started per second. */
  ratePerSec: number;
  /** Each request holds its connection open this long (ms), so load is visible. */
  holdMs?: number;
}

export interface DemoTrafficSummary {
  pool: string;
  policy: string;
  sent: number;
  failed: number;
  noMember: number;
  picks: Record<string, number>;
}

export class DemoTraffic {
  #o: DemoTrafficOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #open = new Set<ReturnType<typeof request>>();
  #summary: DemoTrafficSummary;

  constructor(options: DemoTrafficOptions) {
    this.#o = options;
    this.#summary = {
      pool: options.pool,
      policy: options.policy.name,
      sent: 0,
      failed: 0,
      noMember: 0,
      picks: {},
    };
  }

  start(): void {
    const every = Math.max(5, Math.round(1000 / this.#o.ratePerSec));
    this.#timer = setInterval(() => {
      this.#one().catch(() => {
        this.#summary.failed += 1;
      });
    }, every);
    this.#timer.unref();
  }

  summary(): DemoTrafficSummary {
    return { ...this.#summary, policy: this.#o.policy.name, picks: { ...this.#summary.picks } };
  }

  async #one(): Promise<void> {
    const snap = await this.#o.registry.snapshot();
    const members = snap.members.filter((v) => v.member.pool === this.#o.pool);
    const chosen = this.#o.policy.pick({ members, key: Math.floor(Math.random() * 0xffffffff) });
    if (!chosen) {
      this.#summary.noMember += 1;
      return;
    }
    const port = chosen.ports.main;
    if (port === undefined) return;
    this.#summary.picks[chosen.id] = (this.#summary.picks[chosen.id] ?? 0) + 1;
    this.#summary.sent += 1;
    const req = request({
      host: chosen.addresses[0],
      port,
      method: 'POST',
      path: '/',
      agent: false,
      timeout: 5000,
    });
    this.#open.add(req);
    req.on('response', (res) => res.resume());
    req.on('error', () => {
      this.#summary.failed += 1;
    });
    req.on('close', () => this.#open.delete(req));
    req.on('timeout', () => req.destroy());
    req.write('demo');
    // The body ends after holdMs: until then the member counts a connection and a request in flight.
    const t = setTimeout(() => req.end(), this.#o.holdMs ?? 1500);
    t.unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    for (const r of this.#open) r.destroy();
    this.#open.clear();
  }
}
