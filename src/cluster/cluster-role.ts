/**
 * The cluster role of `usher run` (seed 002, peer mode C2.5a): this process speaks for one
 * member of a self-selecting cluster. Every `intervalMs` it measures the member's availability
 * (C2.4) and publishes it through the registry (the mesh, so every peer hears it, C2.5); on every
 * change of the pool's members, health or availability it computes the whole range plan from
 * the same view every peer has (C2.3: deterministic, so peers agree without talking) and, when
 * its own share changed, replaces its nftables filter atomically (established flows keep their
 * ct mark, so a range change never breaks a live connection).
 */
import { capacity, type MemberView, makeMember } from '../core/model.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/logger.js';
import { AvailabilityAgent } from './availability.js';
import { applyClusterTable, removeClusterTable, renderClusterTable } from './nft-filter.js';
import { planRanges, type RangePlan } from './plan.js';

export interface ClusterRoleOptions {
  readonly registry: Registry;
  readonly logger: Logger;
  /** The pool whose members share the value space. */
  readonly pool: string;
  /** This member: registered by the role (owned by this process, so it goes down with it). */
  readonly member: {
    readonly id: string;
    readonly address: string;
    readonly port: number;
    readonly site: string;
  };
  readonly vip: string;
  readonly ports: readonly number[];
  readonly udpPorts: readonly number[];
  /** `nftables`: the kernel filter on this host; `none`: compute and publish only. */
  readonly filter: 'nftables' | 'none';
  /** A fixed availability (tests, static capacities); unset: measured by the agent. */
  readonly availability?: number;
  readonly intervalMs: number;
  readonly table: string;
  readonly seed: number;
  /** Buckets of the plan (more: shares closer to proportional, more nftables intervals). */
  readonly buckets: number;
}

export interface ClusterSummary {
  readonly self: string;
  readonly epoch: number;
  readonly space: RangePlan['space'];
  readonly ranges: RangePlan['ranges'];
  readonly shares: RangePlan['shares'];
  readonly availability: number | undefined;
  readonly applied: { readonly epoch: number; readonly at: number } | undefined;
  readonly applyErrors: number;
}

/** The availability a peer published (load.custom.availability), else its capacity. */
function availabilityOf(view: MemberView): number {
  const published = view.load?.custom.availability;
  return typeof published === 'number' && Number.isFinite(published) ? published : capacity(view.member);
}

export class ClusterRole {
  readonly #o: ClusterRoleOptions;
  readonly #agent = new AvailabilityAgent({ cpuSampleMs: 200 });
  #plan: RangePlan | undefined;
  #mine = '';
  /** The ranges (as `#mine` text) the kernel filter has now. */
  #inForce: string | undefined;
  #applied: { epoch: number; at: number } | undefined;
  #applyErrors = 0;
  #availability: number | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #unwatch: (() => void) | undefined;
  #replan: ReturnType<typeof setTimeout> | undefined;
  #applying: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: ClusterRoleOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const o = this.#o;
    await o.registry.register(
      makeMember({
        id: o.member.id,
        pool: o.pool,
        addresses: [o.member.address],
        ports: { main: o.member.port },
        site: o.member.site,
        labels: { role: 'cluster', vip: o.vip },
      }),
    );
    this.#unwatch = o.registry.watch((event) => {
      if (event.type.startsWith('assignment')) return;
      this.#schedule();
    });
    await this.#report();
    this.#timer = setInterval(() => void this.#report(), o.intervalMs);
    this.#timer.unref();
    await this.#recompute();
  }

  summary(): ClusterSummary | undefined {
    const p = this.#plan;
    if (!p) return undefined;
    return {
      self: this.#o.member.id,
      epoch: p.epoch,
      space: p.space,
      ranges: p.ranges,
      shares: p.shares,
      availability: this.#availability,
      applied: this.#applied,
      applyErrors: this.#applyErrors,
    };
  }

  async #report(): Promise<void> {
    if (this.#closed) return;
    let availability = this.#o.availability;
    let connections = 0;
    if (availability === undefined) {
      const s = await this.#agent.sample();
      availability = s.availability;
      connections = s.connections ?? 0;
    }
    this.#availability = availability;
    await this.#o.registry
      .report(this.#o.member.id, {
        users: connections,
        connections,
        inFlight: 0,
        cpu: 0,
        custom: { availability },
        timestamp: Date.now(),
      })
      .catch((err: unknown) => this.#o.logger.warn({ err }, 'cluster: cannot publish availability'));
  }

  /** Coalesces bursts of registry events into one recomputation. */
  #schedule(): void {
    if (this.#closed || this.#replan) return;
    this.#replan = setTimeout(() => {
      this.#replan = undefined;
      void this.#recompute();
    }, 20);
  }

  async #recompute(): Promise<void> {
    if (this.#closed) return;
    const snapshot = await this.#o.registry.snapshot().catch(() => undefined);
    if (!snapshot) return;
    const live = snapshot.members.filter(
      (v) => v.member.pool === this.#o.pool && (v.health === 'up' || v.health === 'suspect'),
    );
    const plan = planRanges(
      live.map((v) => ({ id: v.member.id, availability: availabilityOf(v) })),
      { epoch: snapshot.revision, buckets: this.#o.buckets },
    );
    if (this.#plan && plan.epoch < this.#plan.epoch) return; // a stale view
    this.#plan = plan;
    const mine = JSON.stringify(plan.ranges[this.#o.member.id] ?? []);
    if (mine === this.#mine) return;
    this.#mine = mine;
    this.#o.logger.info(
      { epoch: plan.epoch, share: plan.shares[this.#o.member.id] ?? 0, members: live.length },
      'cluster: new share of the value space',
    );
    if (this.#o.filter === 'nftables') this.#apply();
  }

  /**
   * Applies this member's ranges of the latest plan. Applications are serialised; each one
   * takes the ranges wanted when it runs, and does nothing when they are already in force.
   */
  #apply(): void {
    const o = this.#o;
    this.#applying = this.#applying.then(async () => {
      const plan = this.#plan;
      if (this.#closed || !plan || this.#mine === this.#inForce) return;
      const wanted = this.#mine;
      const script = renderClusterTable({
        table: o.table,
        vip: o.vip,
        ports: o.ports,
        udpPorts: o.udpPorts,
        seed: o.seed,
        ranges: (plan.ranges[o.member.id] ?? []).map(([lo, hi]) => [lo, hi] as const),
      });
      try {
        await applyClusterTable(script);
        this.#inForce = wanted;
        this.#applied = { epoch: plan.epoch, at: Date.now() };
      } catch (err) {
        this.#applyErrors += 1;
        o.logger.error({ err }, 'cluster: cannot apply the nftables filter');
      }
    });
  }

  /**
   * Stops reporting. The filter stays, with no range: this host keeps its live flows and takes
   * no new one (removing it would let every SYN for the virtual IP reach the local stack).
   * `removeFilter` takes it away entirely.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#replan) clearTimeout(this.#replan);
    this.#unwatch?.();
    await this.#applying;
    if (this.#o.filter !== 'nftables') return;
    const o = this.#o;
    const script = renderClusterTable({
      table: o.table,
      vip: o.vip,
      ports: o.ports,
      udpPorts: o.udpPorts,
      seed: o.seed,
      ranges: [],
    });
    await applyClusterTable(script).catch((err: unknown) =>
      o.logger.error({ err }, 'cluster: cannot empty the nftables filter'),
    );
  }

  /** Removes the nftables table of this role (operator clean-up; the host then filters nothing). */
  removeFilter(): Promise<void> {
    return removeClusterTable({ table: this.#o.table, family: this.#o.vip.includes(':') ? 'ip6' : 'ip' });
  }
}
