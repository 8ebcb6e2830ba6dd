/**
 * The admin view of the registry: pools with their members, a summary per pool, and the
 * per-role summaries of the mechanisms that run. This is the body of `GET /api/v1/state` and
 * of the `state` server-sent event.
 */
import type { HealthState, LoadReport, MemberView } from '../core/model.js';
import type { RegistrySnapshot } from '../registry/registry.js';

export interface AdminMemberState {
  readonly id: string;
  readonly addresses: readonly string[];
  readonly ports: Readonly<Record<string, number>>;
  readonly site: string;
  readonly group: number;
  readonly weight: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: HealthState;
  /** Latest load report, or null when none has arrived. */
  readonly load: LoadReport | null;
}

export interface PoolSummary {
  readonly up: number;
  readonly suspect: number;
  readonly down: number;
  readonly draining: number;
  /** Sum of `users` over the members' latest reports. */
  readonly users: number;
  /** Sum of `connections` over the members' latest reports. */
  readonly connections: number;
}

export interface AdminPoolState {
  readonly name: string;
  readonly members: readonly AdminMemberState[];
  readonly summary: PoolSummary;
}

export interface AdminState {
  readonly version: string;
  /** Registry revision this view was taken at; later events carry higher revisions. */
  readonly revision: number;
  /** Declared pools first (in declaration order, even when empty), then any other pool by name. */
  readonly pools: readonly AdminPoolState[];
  /** Per-role summaries (assigner, gateway, ...), as given by the `roles` option. */
  readonly roles: Readonly<Record<string, unknown>>;
  /** Milliseconds since the epoch when the view was built. */
  readonly time: number;
}

const byId = (a: MemberView, b: MemberView): number =>
  a.member.id.localeCompare(b.member.id, 'en', { numeric: true });

/** Groups members by pool: declared pools first (kept when empty), then the others sorted. */
export function groupByPool(
  members: readonly MemberView[],
  declared: readonly string[],
): Map<string, MemberView[]> {
  const pools = new Map<string, MemberView[]>();
  for (const name of declared) if (!pools.has(name)) pools.set(name, []);
  const extra = new Map<string, MemberView[]>();
  for (const m of members) {
    const list = pools.get(m.member.pool) ?? extra.get(m.member.pool);
    if (list) list.push(m);
    else extra.set(m.member.pool, [m]);
  }
  for (const name of [...extra.keys()].sort()) pools.set(name, extra.get(name)!);
  for (const list of pools.values()) list.sort(byId);
  return pools;
}

export function summarise(members: readonly MemberView[]): PoolSummary {
  const counts: Record<HealthState, number> = { up: 0, suspect: 0, down: 0, draining: 0 };
  let users = 0;
  let connections = 0;
  for (const m of members) {
    counts[m.health] += 1;
    users += m.load?.users ?? 0;
    connections += m.load?.connections ?? 0;
  }
  return { ...counts, users, connections };
}

function memberState(m: MemberView): AdminMemberState {
  const { id, addresses, ports, site, group, weight, labels } = m.member;
  return { id, addresses, ports, site, group, weight, labels, health: m.health, load: m.load ?? null };
}

export function buildState(
  snapshot: RegistrySnapshot,
  declared: readonly string[],
  roles: Readonly<Record<string, unknown>>,
  version: string,
  time: number,
): AdminState {
  const pools: AdminPoolState[] = [];
  for (const [name, members] of groupByPool(snapshot.members, declared)) {
    pools.push({ name, members: members.map(memberState), summary: summarise(members) });
  }
  return { version, revision: snapshot.revision, pools, roles, time };
}
