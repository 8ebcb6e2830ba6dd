/**
 * HealthMonitor: keeps the health of a Registry's members true.
 *
 * For every member (found with `registry.snapshot()` at start, then followed with
 * `registry.watch`) it runs one state machine (state-machine.ts) fed by:
 * - active checks (checks.ts) every `intervalMs`, ± `jitter`, per the member's pool config;
 * - missed reports: with `reportIntervalMs` set, once no load report has arrived for
 *   `missedReports` intervals, a `report-missed` signal every interval until one arrives.
 *   With `kind: 'none'` an on-time report counts as a passed check;
 * - passive signals from traffic (`recordPassive`) and operator `drain` / `undrain`.
 * Each transition is written to the registry with `setHealth(id, state, reason)` (in order,
 * per member) and emitted as a `transition` event.
 *
 * The monitor owns up / suspect / down. It follows drains made by others: a `health` event
 * to `draining` that it did not write drains its machine, and one leaving `draining`
 * undrains it (and writes the state the checks imply when that differs).
 *
 * Per-member overrides: labels `health.kind` (tcp | http | udp | none), `health.port` (a number or
 * the name of one of the member's ports) and `health.path`.
 */
import { EventEmitter } from 'node:events';
import type { HealthState, Member } from '../core/model.js';
import { NotFoundError } from '../errors.js';
import type { Registry, RegistryEvent } from '../registry/registry.js';
import { type CheckResult, httpCheck, tcpCheck, udpProbeCheck } from './checks.js';
import { healthPort, memberHealthConfig, type PoolHealthConfig, resolvePoolHealth } from './pool-config.js';
import {
  type HealthSignal,
  type HealthTransition,
  type ImpliedHealth,
  initialMachine,
  type MachineState,
  penaltyAt,
  publishedState,
  step,
} from './state-machine.js';

/** What a check is run against. */
export interface CheckTarget {
  readonly member: Member;
  readonly kind: 'tcp' | 'http' | 'udp';
  readonly host: string;
  readonly port: number;
  readonly config: PoolHealthConfig;
}

export type CheckRunner = (target: CheckTarget, signal: AbortSignal) => Promise<CheckResult>;

export interface HealthMonitorOptions {
  readonly registry: Registry;
  /** Config for every pool, over `POOL_HEALTH_DEFAULTS`. */
  readonly defaults?: Partial<PoolHealthConfig>;
  /** Per-pool config, over `defaults`. */
  readonly pools?: Readonly<Record<string, Partial<PoolHealthConfig>>>;
  /** Clock (ms) for report ages and the state machines; `Date.now` by default. */
  readonly clock?: () => number;
  /** Random source in [0, 1) for jitter; `Math.random` by default. */
  readonly random?: () => number;
  /** Runs one active check; TCP / HTTP over real sockets by default. */
  readonly check?: CheckRunner;
  /** Errors that have nowhere else to go (a registry write failed, a bad label). */
  readonly onError?: (error: unknown) => void;
}

export interface MonitorTransition extends HealthTransition {
  readonly id: string;
  readonly pool: string;
  /** Clock time of the transition. */
  readonly at: number;
}

export interface MemberHealth {
  readonly id: string;
  readonly pool: string;
  readonly state: HealthState;
  /** What the signals imply, ignoring drain and damping. */
  readonly implied: ImpliedHealth;
  readonly drained: boolean;
  readonly suppressed: boolean;
  readonly penalty: number;
  readonly failures: number;
  readonly successes: number;
  readonly reportsStale: boolean;
  readonly lastCheck?: CheckResult;
  /** Time since the last load report (or since the member was first seen). */
  readonly reportAgeMs: number;
  readonly lastTransition?: MonitorTransition;
}

export interface HealthMonitorEvents {
  transition: [MonitorTransition];
  check: [id: string, result: CheckResult];
}

interface Tracked {
  member: Member;
  config: PoolHealthConfig;
  machine: MachineState;
  lastReportAt: number;
  lastCheck?: CheckResult;
  lastTransition?: MonitorTransition;
  checkTimer?: ReturnType<typeof setTimeout>;
  reportTimer?: ReturnType<typeof setInterval>;
  abort?: AbortController;
  inFlight?: Promise<void>;
  /** Registry writes of this member, chained so they land in order. */
  writes: Promise<void>;
  /** States written but whose `health` event has not come back yet. */
  pending: HealthState[];
}

const defaultCheck: CheckRunner = (target, signal) => {
  const { host, port, config } = target;
  if (target.kind === 'tcp') return tcpCheck({ host, port, timeoutMs: config.timeoutMs, signal });
  if (target.kind === 'udp')
    return udpProbeCheck({
      host,
      port,
      app: config.app ?? target.member.pool,
      timeoutMs: config.timeoutMs,
      signal,
    });
  return httpCheck({
    host,
    port,
    path: config.path,
    timeoutMs: config.timeoutMs,
    expectStatus: config.expectStatus,
    bodyContains: config.bodyContains,
    signal,
  });
};

export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  readonly #registry: Registry;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #check: CheckRunner;
  readonly #onError: (error: unknown) => void;
  #defaults: Partial<PoolHealthConfig>;
  #pools: Record<string, PoolHealthConfig> = {};
  #base: PoolHealthConfig;
  #tracked = new Map<string, Tracked>();
  /** Members added after start whose current health is being read: id → token. */
  #adding = new Map<string, object>();
  #unwatch: (() => void) | undefined;
  #started = false;
  #closed = false;

  constructor(options: HealthMonitorOptions) {
    super();
    this.#registry = options.registry;
    this.#clock = options.clock ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#check = options.check ?? defaultCheck;
    this.#onError = options.onError ?? (() => {});
    this.#defaults = options.defaults ?? {};
    this.#base = resolvePoolHealth(this.#defaults, 'defaults');
    this.setPools(options.pools ?? {});
  }

  /** Reads the registry and starts checking. Resolves once every current member is tracked. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const early: RegistryEvent[] = [];
    let ready = false;
    this.#unwatch = this.#registry.watch((event) => {
      if (ready) this.#onEvent(event);
      else early.push(event);
    });
    try {
      const snap = await this.#registry.snapshot();
      if (this.#closed) return;
      for (const view of snap.members) this.#track(view.member, view.health);
      ready = true;
      for (const event of early) if (event.revision > snap.revision) this.#onEvent(event);
    } catch (error) {
      this.#unwatch();
      this.#started = false;
      throw error;
    }
  }

  /** Replaces the per-pool config (validated first: on error nothing changes). */
  setPools(pools: Readonly<Record<string, Partial<PoolHealthConfig>>>): void {
    const resolved: Record<string, PoolHealthConfig> = {};
    for (const [name, partial] of Object.entries(pools))
      resolved[name] = resolvePoolHealth({ ...this.#defaults, ...partial }, `pools.${name}.health`);
    this.#pools = resolved;
    for (const t of this.#tracked.values()) this.#reconfigure(t, t.member);
  }

  /** Drains a member: published as `draining` until `undrain`, whatever the checks say. */
  async drain(id: string, reason = 'drained by operator'): Promise<void> {
    const t = this.#get(id);
    this.#apply(t, { kind: 'drain', reason });
    await t.writes;
  }

  /** Ends a drain: the member takes the state its checks imply. */
  async undrain(id: string, reason = 'undrained by operator'): Promise<void> {
    const t = this.#get(id);
    this.#apply(t, { kind: 'undrain', reason });
    await t.writes;
  }

  /** A signal from traffic. Unknown ids are ignored (the member may just have left). */
  recordPassive(id: string, ok: boolean, reason: string): HealthTransition | undefined {
    const t = this.#tracked.get(id);
    if (!t || this.#closed) return undefined;
    return this.#apply(t, { kind: 'passive', ok, reason });
  }

  /** What the monitor believes about every member, sorted by id. */
  states(): MemberHealth[] {
    const now = this.#clock();
    return [...this.#tracked.values()]
      .map((t) => ({
        id: t.member.id,
        pool: t.member.pool,
        state: publishedState(t.machine),
        implied: t.machine.implied,
        drained: t.machine.drained,
        suppressed: t.machine.suppressed,
        penalty: penaltyAt(t.machine, now, t.config),
        failures: t.machine.failures,
        successes: t.machine.successes,
        reportsStale: t.machine.reportsStale,
        reportAgeMs: now - t.lastReportAt,
        ...(t.lastCheck ? { lastCheck: t.lastCheck } : {}),
        ...(t.lastTransition ? { lastTransition: t.lastTransition } : {}),
      }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Stops every check and timer, waits for running checks and pending writes. The registry stays open. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch?.();
    this.#adding.clear();
    const waits: Promise<unknown>[] = [];
    for (const t of this.#tracked.values()) {
      this.#stop(t);
      if (t.inFlight) waits.push(t.inFlight);
      waits.push(t.writes);
    }
    this.#tracked.clear();
    await Promise.allSettled(waits);
  }

  #get(id: string): Tracked {
    const t = this.#tracked.get(id);
    if (!t || this.#closed) throw new NotFoundError('member', id);
    return t;
  }

  #configFor(member: Member): PoolHealthConfig {
    return memberHealthConfig(this.#pools[member.pool] ?? this.#base, member, this.#onError);
  }

  #track(member: Member, health: HealthState): void {
    if (this.#closed || this.#tracked.has(member.id)) return;
    const now = this.#clock();
    const t: Tracked = {
      member,
      config: this.#configFor(member),
      machine: initialMachine(health, now),
      lastReportAt: now,
      writes: Promise.resolve(),
      pending: [],
    };
    this.#tracked.set(member.id, t);
    this.#schedule(t, true);
    this.#armReports(t);
  }

  #reconfigure(t: Tracked, member: Member): void {
    const config = this.#configFor(member);
    const changed = config !== t.config;
    t.member = member;
    t.config = config;
    if (!changed) return;
    this.#armReports(t);
    // A running check finishes under the old config and schedules the next under the new one.
    if (t.inFlight) return;
    if (t.checkTimer) clearTimeout(t.checkTimer);
    this.#schedule(t, true);
  }

  #onEvent(event: RegistryEvent): void {
    if (this.#closed) return;
    switch (event.type) {
      case 'member-added':
      case 'member-updated': {
        const t = this.#tracked.get(event.member.id);
        if (t) this.#reconfigure(t, event.member);
        else this.#add(event.member);
        break;
      }
      case 'member-removed': {
        this.#adding.delete(event.id);
        const t = this.#tracked.get(event.id);
        if (t) {
          this.#stop(t);
          this.#tracked.delete(event.id);
        }
        break;
      }
      case 'load': {
        const t = this.#tracked.get(event.id);
        if (!t) break;
        t.lastReportAt = this.#clock();
        if (t.machine.reportsStale) this.#apply(t, { kind: 'report' });
        break;
      }
      case 'health':
        this.#onHealth(event.id, event.health, event.reason);
        break;
      default:
        break;
    }
  }

  /** A member that joined after start: read its current health, then track it. */
  #add(member: Member): void {
    if (this.#adding.has(member.id)) return;
    const token = {};
    this.#adding.set(member.id, token);
    this.#registry.get(member.id).then(
      (view) => {
        if (this.#adding.get(member.id) !== token) return;
        this.#adding.delete(member.id);
        if (view) this.#track(view.member, view.health);
      },
      (error) => {
        if (this.#adding.get(member.id) === token) this.#adding.delete(member.id);
        if (!this.#closed) this.#onError(error);
      },
    );
  }

  /** A `health` event: our own write coming back, or someone else's drain / undrain. */
  #onHealth(id: string, health: HealthState, reason: string): void {
    const t = this.#tracked.get(id);
    if (!t) return;
    const mine = t.pending.indexOf(health);
    if (mine >= 0) {
      t.pending.splice(0, mine + 1);
      return;
    }
    if (health === 'draining' && !t.machine.drained) this.#apply(t, { kind: 'drain', reason }, health);
    else if (health !== 'draining' && t.machine.drained) this.#apply(t, { kind: 'undrain', reason }, health);
  }

  /** Feeds a signal; publishes a transition unless the registry already holds its target state. */
  #apply(t: Tracked, signal: HealthSignal, registryHas?: HealthState): HealthTransition | undefined {
    const { state, transition } = step(t.machine, signal, this.#clock(), t.config);
    t.machine = state;
    if (!transition) return undefined;
    const event: MonitorTransition = {
      id: t.member.id,
      pool: t.member.pool,
      ...transition,
      at: this.#clock(),
    };
    t.lastTransition = event;
    if (transition.to !== registryHas) this.#write(t, transition.to, transition.reason);
    this.emit('transition', event);
    return transition;
  }

  #write(t: Tracked, health: HealthState, reason: string): void {
    const id = t.member.id;
    t.pending.push(health);
    if (t.pending.length > 16) t.pending.shift(); // writes the registry did not echo (no change)
    t.writes = t.writes.then(
      () =>
        this.#registry.setHealth(id, health, reason).catch((error: unknown) => {
          const i = t.pending.indexOf(health);
          if (i >= 0) t.pending.splice(i, 1);
          // A member removed meanwhile, or a registry closed during shutdown, is not news.
          const gone = (error as { code?: string }).code === 'USHER_ERR_NOT_FOUND' && !this.#tracked.has(id);
          if (!gone && !this.#closed) this.#onError(error);
        }),
      () => {},
    );
  }

  /** Arms the next check (the first one within `jitter` of an interval, to spread members out). */
  #schedule(t: Tracked, first: boolean): void {
    if (this.#closed) return;
    const { intervalMs, jitter } = t.config;
    const delay = first
      ? this.#random() * intervalMs * jitter
      : intervalMs * (1 + jitter * (2 * this.#random() - 1));
    t.checkTimer = setTimeout(() => this.#runCheck(t), delay);
    t.checkTimer.unref?.();
  }

  #armReports(t: Tracked): void {
    if (t.reportTimer) clearInterval(t.reportTimer);
    t.reportTimer = undefined;
    const interval = t.config.reportIntervalMs;
    if (this.#closed || interval === undefined) return;
    t.reportTimer = setInterval(() => this.#checkReports(t), interval);
    t.reportTimer.unref?.();
  }

  #stop(t: Tracked): void {
    if (t.checkTimer) clearTimeout(t.checkTimer);
    if (t.reportTimer) clearInterval(t.reportTimer);
    t.checkTimer = undefined;
    t.reportTimer = undefined;
    t.abort?.abort();
  }

  #runCheck(t: Tracked): void {
    t.checkTimer = undefined;
    if (this.#closed || this.#tracked.get(t.member.id) !== t) return;
    const { config, member } = t;
    if (config.kind === 'none') {
      this.#apply(t, { kind: 'tick' });
      this.#schedule(t, false);
      return;
    }
    const port = healthPort(member, config.port, config.kind);
    const host = member.addresses[0];
    let run: Promise<CheckResult>;
    if (port === undefined || host === undefined) {
      const missing =
        host === undefined ? 'no address' : `no port ${JSON.stringify(config.port ?? 'health/main')}`;
      run = Promise.resolve({
        ok: false,
        reason: `${config.kind} check: member has ${missing}`,
        latencyMs: 0,
      });
    } else {
      const abort = new AbortController();
      t.abort = abort;
      run = this.#check({ member, kind: config.kind, host, port, config }, abort.signal).catch(
        (error: unknown) => ({
          ok: false,
          reason: `${config.kind} check threw: ${(error as Error)?.message ?? String(error)}`,
          latencyMs: 0,
        }),
      );
    }
    t.inFlight = run.then((result) => {
      t.inFlight = undefined;
      t.abort = undefined;
      if (this.#closed || this.#tracked.get(member.id) !== t) return;
      t.lastCheck = result;
      this.emit('check', member.id, result);
      this.#apply(t, { kind: 'check', ok: result.ok, reason: result.reason });
      if (t.checkTimer === undefined) this.#schedule(t, false);
    });
  }

  #checkReports(t: Tracked): void {
    const interval = t.config.reportIntervalMs;
    if (this.#closed || interval === undefined) return;
    const age = this.#clock() - t.lastReportAt;
    if (age >= t.config.missedReports * interval) {
      this.#apply(t, {
        kind: 'report-missed',
        reason: `no load report for ${Math.round(age)} ms (expected every ${interval} ms)`,
      });
    } else if (t.config.kind === 'none') {
      this.#apply(t, { kind: 'check', ok: true, reason: 'load reports on time' });
    }
  }
}
