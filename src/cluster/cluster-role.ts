/**
 * The cluster role of `usher run` (seed 002, peer mode C2.5a): this process speaks for one
 * member of a self-selecting cluster. Every `intervalMs` it measures the member's availability
 * (C2.4) and publishes it through the registry (the mesh, so every peer hears it, C2.5); on every
 * change of the pool's members, health or availability it computes the whole range plan from
 * the same view every peer has (C2.3: deterministic, so peers agree without talking) and, when
 * its own share changed, replaces its nftables filter atomically (established flows keep their
 * ct mark, so a range change never breaks a live connection).
 *
 * Coordinator mode (C2.5b): one member, elected through etcd (`leadership`), computes the plan
 * and hands it out as the registry assignment `cluster/<pool>/plan`; every member applies the
 * plan with the highest epoch it has seen, so a stale coordinator's plan is ignored.
 */
import { capacity, type MemberView, makeMember } from '../core/model.js';
import type { Registry } from '../registry/registry.js';
import type { Logger } from '../util/logger.js';
import { AvailabilityAgent } from './availability.js';
import { applyClusterTable, removeClusterTable, renderClusterTable } from './nft-filter.js';
import { planRanges, type RangePlan } from './plan.js';

/** Who leads the coordinator role (a CoordinatorElection). */
export interface Leadership {
  readonly isLeader: boolean;
  readonly leader: string | undefined;
  on(event: 'elected', listener: () => void): unknown;
}

/** The plan as the coordinator hands it out (the assignment's value). */
interface PublishedPlan {
  readonly epoch: number;
  readonly space: RangePlan['space'];
  readonly ranges: RangePlan['ranges'];
  readonly shares: RangePlan['shares'];
  readonly coordinator: string;
}

function isPublishedPlan(v: unknown): v is PublishedPlan {
  const p = v as PublishedPlan;
  return (
    typeof p === 'object' &&
    p !== null &&
    Number.isSafeInteger(p.epoch) &&
    typeof p.space?.lo === 'number' &&
    typeof p.space?.hi === 'number' &&
    typeof p.ranges === 'object' &&
    p.ranges !== null &&
    typeof p.shares === 'object' &&
    typeof p.coordinator === 'string' &&
    Object.values(p.ranges).every(
      (r) =>
        Array.isArray(r) &&
        r.every((x) => Array.isArray(x) && typeof x[0] === 'number' && typeof x[1] === 'number'),
    )
  );
}

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
  /** Coordinator mode: the election this member takes part in; unset: peer mode. */
  readonly leadership?: Leadership;
}

export interface ClusterSummary {
  readonly self: string;
  readonly mode: 'peer' | 'coordinator';
  /** Coordinator mode: who computes the plan now. */
  readonly coordinator?: string | undefined;
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
  #plan: Pick<RangePlan, 'epoch' | 'space' | 'ranges' | 'shares'> | undefined;
  /** Coordinator mode: the ranges last handed out, to publish only changes. */
  #published = '';
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
      if (event.type === 'assignment-set') {
        if (o.leadership && event.assignment.key === this.#planKey) this.#adopt(event.assignment.value);
        return;
      }
      if (event.type === 'assignment-deleted') return;
      this.#schedule();
    });
    o.leadership?.on('elected', () => {
      o.logger.info({ pool: o.pool }, 'cluster: this member coordinates the ranges');
      this.#schedule();
    });
    await this.#report();
    this.#timer = setInterval(() => void this.#report(), o.intervalMs);
    this.#timer.unref();
    if (o.leadership) {
      const current = (await o.registry.snapshot()).assignments.find((a) => a.key === this.#planKey);
      if (current) this.#adopt(current.value);
    }
    await this.#recompute();
  }

  get #planKey(): string {
    return `cluster/${this.#o.pool}/plan`;
  }

  /** Coordinator mode: a plan handed out; applied when newer than the one in force. */
  #adopt(value: unknown): void {
    if (this.#closed) return;
    if (!isPublishedPlan(value)) {
      this.#o.logger.warn({ key: this.#planKey }, 'cluster: ignoring a malformed plan');
      return;
    }
    if (this.#plan && value.epoch <= this.#plan.epoch) return; // stale or already in force
    this.#use(value, Object.keys(value.ranges).length);
  }

  /** Makes `plan` the one in force; applies this member's ranges when they changed. */
  #use(plan: Pick<RangePlan, 'epoch' | 'space' | 'ranges' | 'shares'>, members: number): void {
    this.#plan = plan;
    const mine = JSON.stringify(plan.ranges[this.#o.member.id] ?? []);
    if (mine === this.#mine) return;
    this.#mine = mine;
    this.#o.logger.info(
      { epoch: plan.epoch, share: plan.shares[this.#o.member.id] ?? 0, members },
      'cluster: new share of the value space',
    );
    if (this.#o.filter === 'nftables') this.#apply();
  }

  summary(): ClusterSummary | undefined {
    const p = this.#plan;
    if (!p) return undefined;
    return {
      self: this.#o.member.id,
      mode: this.#o.leadership ? 'coordinator' : 'peer',
      ...(this.#o.leadership ? { coordinator: this.#o.leadership.leader } : {}),
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
    const members = live.map((v) => ({ id: v.member.id, availability: availabilityOf(v) }));
    const leadership = this.#o.leadership;
    if (!leadership) {
      // Peer mode: every member computes the same plan from the same view.
      const plan = planRanges(members, { epoch: snapshot.revision, buckets: this.#o.buckets });
      if (this.#plan && plan.epoch < this.#plan.epoch) return; // a stale view
      this.#use(plan, live.length);
      return;
    }
    if (!leadership.isLeader) return;
    // Coordinator: hand the plan out when the ranges changed; epochs continue from the last one.
    const handed = snapshot.assignments.find((a) => a.key === this.#planKey)?.value;
    const last = isPublishedPlan(handed) ? handed.epoch : 0;
    const plan = planRanges(members, {
      epoch: Math.max(last, this.#plan?.epoch ?? 0) + 1,
      buckets: this.#o.buckets,
    });
    const ranges = JSON.stringify(plan.ranges);
    if (ranges === this.#published && isPublishedPlan(handed) && JSON.stringify(handed.ranges) === ranges)
      return;
    this.#published = ranges;
    const published: PublishedPlan = {
      epoch: plan.epoch,
      space: plan.space,
      ranges: plan.ranges,
      shares: plan.shares,
      coordinator: this.#o.member.id,
    };
    await this.#o.registry
      .assign(this.#planKey, published)
      .catch((err: unknown) => this.#o.logger.warn({ err }, 'cluster: cannot hand out the plan'));
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
