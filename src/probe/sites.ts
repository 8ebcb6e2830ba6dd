/**
 * Site-aware placement for the probe assigner (seed 000, P0.9: "clients of one site can be
 * placed on servers of another site"). Pure: member views and settings in, a choice out.
 *
 * Every member has a `site` (Member.site). The assigner has one too: `assigner.site`, or by
 * default the site most of the app's pool members have (ties: the first name in sort order), or
 * `local` when the pool is empty. A client is placed:
 * 1. on a member of the assigner's own site, chosen by the pool policy among the local members
 *    that are up (or suspect) and not full;
 * 2. when there is none and the app allows `overflow`: on another site — the site whose eligible,
 *    not-full members are least loaded together (sum of users / sum of capacities; ties: the
 *    first name), then a member of it chosen by the pool policy;
 * 3. otherwise nowhere (the assigner answers NO_MEMBER).
 *
 * A member is full when `overflowAt` is set and its users have reached `overflowAt × capacity`;
 * capacity is the member label `capacity` (a number > 0), else `weight × 100`. Without
 * `overflowAt` no member is ever full by its load. Full members take no new client on any site.
 */
import { capacity, eligible, type HealthState, type Member, type MemberView } from '../core/model.js';

/** The site an assigner takes as its own when neither config nor members name one. */
export const DEFAULT_SITE = 'local';

export { CAPACITY_LABEL, capacity, USERS_PER_WEIGHT } from '../core/model.js';

export type OverflowMode = 'local-only' | 'overflow';

/** How one app is placed across sites (`assigner.apps.<app>`). */
export interface SiteRules {
  readonly overflow: OverflowMode;
  /** Load fraction (0 < f ≤ 1) at which a member is full; undefined: never full by load. */
  readonly overflowAt?: number | undefined;
}

/** Why a client was placed on another site. */
export type OverflowReason = 'down' | 'full';

export interface Placement {
  /** The chosen member, or undefined: no member may take the client. */
  readonly member: Member | undefined;
  /** The assigner's site for this app. */
  readonly site: string;
  /** Set when the member is on another site: why the local site could not take the client. */
  readonly overflow?: OverflowReason;
}

/** Picks one member among the given views (the pool policy, with the client's key). */
export type Pick = (members: readonly MemberView[]) => Member | undefined;

const majorities = new WeakMap<readonly MemberView[], string>();

/**
 * The site most members of `pool` have (ties: the first name in sort order), `local` for an
 * empty pool. Cached per array: the pool view hands out the same array until the pool changes.
 */
export function majoritySite(pool: readonly MemberView[]): string {
  const cached = majorities.get(pool);
  if (cached !== undefined) return cached;
  const counts = new Map<string, number>();
  for (const v of pool) counts.set(v.member.site, (counts.get(v.member.site) ?? 0) + 1);
  let best = DEFAULT_SITE;
  let most = 0;
  for (const [site, n] of counts)
    if (n > most || (n === most && site < best)) {
      best = site;
      most = n;
    }
  majorities.set(pool, best);
  return best;
}

/** True when `overflowAt` is set and the member's users have reached that fraction of its capacity. */
export function isFull(view: MemberView, overflowAt: number | undefined): boolean {
  return overflowAt !== undefined && (view.load?.users ?? 0) >= overflowAt * capacity(view.member);
}

const USABLE: ReadonlySet<HealthState> = new Set<HealthState>(['up', 'suspect']);

/**
 * Places one client. `pool` is every member of the app's pool (for the default site),
 * `candidates` those that may host the asked incarnation, `site` the configured `assigner.site`.
 */
export function place(
  pool: readonly MemberView[],
  candidates: readonly MemberView[],
  site: string | undefined,
  rules: SiteRules,
  pick: Pick,
): Placement {
  const own = site ?? majoritySite(pool);
  const { overflowAt } = rules;

  // The usual case, one site and no capacity limit: the candidates as they are, no copy.
  if (overflowAt === undefined && candidates.every((v) => v.member.site === own))
    return { member: pick(candidates), site: own };

  const local: MemberView[] = [];
  const remote: MemberView[] = [];
  let localFull = false;
  for (const v of candidates) {
    const here = v.member.site === own;
    if (isFull(v, overflowAt)) {
      if (here && USABLE.has(v.health)) localFull = true;
      continue;
    }
    (here ? local : remote).push(v);
  }
  if (local.some((v) => USABLE.has(v.health))) {
    const member = pick(local);
    if (member) return { member, site: own };
  }
  if (rules.overflow === 'local-only') return { member: undefined, site: own };

  const others = leastLoadedSite(eligible(remote));
  const member = others && pick(others);
  if (!member) return { member: undefined, site: own };
  return { member, site: own, overflow: localFull ? 'full' : 'down' };
}

/** The members of the site whose members are least loaded together (ties: the first site name). */
function leastLoadedSite(views: readonly MemberView[]): readonly MemberView[] | undefined {
  const sites = new Map<string, { users: number; capacity: number; views: MemberView[] }>();
  for (const v of views) {
    let s = sites.get(v.member.site);
    if (!s) {
      s = { users: 0, capacity: 0, views: [] };
      sites.set(v.member.site, s);
    }
    s.users += v.load?.users ?? 0;
    s.capacity += capacity(v.member);
    s.views.push(v);
  }
  let best: { name: string; load: number; views: MemberView[] } | undefined;
  for (const [name, s] of sites) {
    const load = s.users / s.capacity;
    if (!best || load < best.load || (load === best.load && name < best.name))
      best = { name, load, views: s.views };
  }
  return best?.views;
}
