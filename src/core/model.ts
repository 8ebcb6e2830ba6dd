/**
 * The domain model shared by every front door. Pure data, no I/O.
 */

/** Health of a member as seen by the control plane. */
export type HealthState = 'up' | 'suspect' | 'down' | 'draining';

export const HEALTH_STATES: readonly HealthState[] = ['up', 'suspect', 'down', 'draining'];

/** A server process offering one service, as the balancer knows it. */
export interface Member {
  /** Unique within its pool and stable across restarts (e.g. `web-1`). */
  readonly id: string;
  /** Name of the pool the member belongs to. */
  readonly pool: string;
  /** Addresses the member is reachable at (IPv4, IPv6 or host names); the first is primary. */
  readonly addresses: readonly string[];
  /** Named ports, e.g. `{ http: 8080, probe: 7001 }`. `main` is the service port. */
  readonly ports: Readonly<Record<string, number>>;
  /** Site (data centre, region) the member runs in. */
  readonly site: string;
  /** Priority group: 0 is the primary group, 1 the first fallback, and so on (lower is preferred). */
  readonly group: number;
  /** Relative weight / capacity, > 0. Policies that weight use it proportionally. */
  readonly weight: number;
  /** Free-form labels (`zone: a`, `version: 2`). */
  readonly labels: Readonly<Record<string, string>>;
}

/** A load report published by (or on behalf of) a member. */
export interface LoadReport {
  /** Users (sessions) currently served. */
  readonly users: number;
  /** Open transport connections. */
  readonly connections: number;
  /** Requests in flight. */
  readonly inFlight: number;
  /** CPU utilisation 0..1 (may exceed 1 on oversubscribed hosts). */
  readonly cpu: number;
  /** Application-defined metrics (`queue_depth`, `fps`). */
  readonly custom: Readonly<Record<string, number>>;
  /** Milliseconds since the epoch when the report was measured. */
  readonly timestamp: number;
}

/** A member together with what the control plane currently believes about it. */
export interface MemberView {
  readonly member: Member;
  readonly health: HealthState;
  /** Latest load report, if any has arrived. */
  readonly load?: LoadReport;
}

/** A named set of members offering one service. */
export interface Pool {
  readonly name: string;
  readonly members: readonly MemberView[];
}

/** Names of the built-in load metrics; custom metrics are addressed as `custom.<name>`. */
export type LoadMetric = 'users' | 'connections' | 'inFlight' | 'cpu' | `custom.${string}`;

export function emptyLoad(timestamp = 0): LoadReport {
  return { users: 0, connections: 0, inFlight: 0, cpu: 0, custom: {}, timestamp };
}

/** Reads a named metric from a load report; a missing report or metric reads as 0. */
export function loadMetric(load: LoadReport | undefined, metric: LoadMetric): number {
  if (!load) return 0;
  if (metric.startsWith('custom.')) return load.custom[metric.slice(7)] ?? 0;
  return load[metric as Exclude<LoadMetric, `custom.${string}`>];
}

/**
 * Members a policy may choose: `up` ones; if none is up, `suspect` ones (a suspect member is
 * not yet known to be dead, and refusing every client is worse). Never `down` or `draining`.
 */
export function eligible(members: readonly MemberView[]): MemberView[] {
  const up = members.filter((m) => m.health === 'up');
  if (up.length > 0) return up;
  return members.filter((m) => m.health === 'suspect');
}

export function makeMember(partial: Partial<Member> & Pick<Member, 'id'>): Member {
  return {
    pool: 'default',
    addresses: ['127.0.0.1'],
    ports: {},
    site: 'local',
    group: 0,
    weight: 1,
    labels: {},
    ...partial,
  };
}

/** The member label that gives a member's capacity in users. */
export const CAPACITY_LABEL = 'capacity';

/** Capacity of a member without a `capacity` label, per unit of weight. */
export const USERS_PER_WEIGHT = 100;

/** A member's capacity in users: its `capacity` label when that is a number > 0, else weight × 100. */
export function capacity(member: Member): number {
  const label = member.labels[CAPACITY_LABEL];
  if (label !== undefined) {
    const n = Number(label);
    if (Number.isFinite(n) && n > 0) return n;
  }
  return member.weight * USERS_PER_WEIGHT;
}
