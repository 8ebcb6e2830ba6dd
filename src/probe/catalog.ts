/**
 * Which members host which incarnation of an app, and the catalog (P0.6) built from that.
 * Pure: members and config in, values out.
 *
 * A member names the incarnations it hosts in its label `incarnations` (comma-separated, e.g.
 * `incarnations: "world-1,world-2"`); a member without that label hosts every incarnation.
 */
import type { Member, MemberView } from '../core/model.js';

/** The incarnation a catalog lists for an app that declares none. */
export const DEFAULT_INCARNATION = 'default';

/** The `incarnations` label of a member. */
export const INCARNATIONS_LABEL = 'incarnations';

/** An app as the assigner serves it: the pool its members come from, its incarnations. */
export interface CatalogApp {
  readonly pool: string;
  readonly incarnations?: readonly string[] | undefined;
}

export interface CatalogBody {
  readonly apps: readonly {
    readonly name: string;
    readonly incarnations: readonly {
      readonly id: string;
      readonly members: number;
      readonly users: number;
    }[];
  }[];
}

const parsed = new WeakMap<Member, ReadonlySet<string> | null>();

/** The incarnations a member hosts, or null for "all" (no label). Cached per Member object. */
export function hostedIncarnations(member: Member): ReadonlySet<string> | null {
  let set = parsed.get(member);
  if (set === undefined) {
    const label = member.labels[INCARNATIONS_LABEL];
    set =
      label === undefined
        ? null
        : new Set(
            label
              .split(',')
              .map((s) => s.trim())
              .filter((s) => s.length > 0),
          );
    parsed.set(member, set);
  }
  return set;
}

/** True when `member` hosts `incarnation`. */
export function hosts(member: Member, incarnation: string): boolean {
  const set = hostedIncarnations(member);
  return set === null || set.has(incarnation);
}

/** The members that may take a client of `incarnation` (all of them when none is named). */
export function forIncarnation(
  views: readonly MemberView[],
  incarnation: string | undefined,
): readonly MemberView[] {
  if (incarnation === undefined) return views;
  return views.filter((v) => hosts(v.member, incarnation));
}

/**
 * The catalog: every app in config order, each incarnation with the number of `up` members
 * hosting it and the sum of their `load.users`. A member that hosts several incarnations counts
 * (with all its users) in each of them.
 */
export function buildCatalog(
  apps: Readonly<Record<string, CatalogApp>>,
  membersOf: (pool: string) => readonly MemberView[],
): CatalogBody {
  return {
    apps: Object.entries(apps).map(([name, app]) => {
      const up = membersOf(app.pool).filter((v) => v.health === 'up');
      const ids = app.incarnations && app.incarnations.length > 0 ? app.incarnations : undefined;
      const entry = (id: string, views: readonly MemberView[]) => ({
        id,
        members: views.length,
        users: views.reduce((sum, v) => sum + (v.load?.users ?? 0), 0),
      });
      return {
        name,
        incarnations: ids
          ? ids.map((id) => entry(id, forIncarnation(up, id)))
          : [entry(DEFAULT_INCARNATION, up)],
      };
    }),
  };
}
