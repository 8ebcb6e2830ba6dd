import { isDeepStrictEqual } from 'node:util';
import type { Member } from '../core/model.js';
import type { Issue } from '../errors.js';
import type { Config, MemberConfig } from './schema.js';

/** The Member a static member entry of pool `pool` describes. */
export function memberFromConfig(pool: string, m: MemberConfig): Member {
  const addresses = [m.address, ...(m.addresses ?? []).filter((a) => a !== m.address)];
  return {
    id: m.id,
    pool,
    addresses,
    ports: { ...m.ports, main: m.port },
    site: m.site,
    group: m.group,
    weight: m.weight,
    labels: { ...m.labels },
  };
}

/** All static members a config declares. */
export function staticMembers(config: Config): Member[] {
  return Object.entries(config.pools).flatMap(([pool, p]) => p.members.map((m) => memberFromConfig(pool, m)));
}

export interface ConfigChange {
  /** Static members to register. */
  added: Member[];
  /** Static members whose definition changed (re-register). */
  updated: Member[];
  /** Ids of static members no longer declared. */
  removed: string[];
  /** Pools whose policy or health settings changed. */
  poolsChanged: string[];
}

/** Sections that take effect only at start; a reload that changes them is refused. */
export const RESTART_SECTIONS = ['registry', 'admin', 'demo', 'agents', 'list', 'cluster'] as const;

/**
 * Sections whose other keys apply on reload, but which a reload cannot add or remove, and
 * whose keys listed here take effect only at start (a listening socket's address).
 */
export const RESTART_KEYS = { assigner: ['host', 'port'] } as const;

/** Problems that make `next` impossible to apply to a process running `current`. */
export function reloadIssues(current: Config, next: Config): Issue[] {
  const issues: Issue[] = RESTART_SECTIONS.filter((s) => !isDeepStrictEqual(current[s], next[s])).map(
    (s) => ({
      path: s,
      message: 'changes to this section need a restart (the running config is kept)',
    }),
  );
  for (const [section, keys] of Object.entries(RESTART_KEYS) as [
    keyof typeof RESTART_KEYS,
    readonly string[],
  ][]) {
    const a = current[section] as Record<string, unknown> | undefined;
    const b = next[section] as Record<string, unknown> | undefined;
    if ((a === undefined) !== (b === undefined)) {
      issues.push({
        path: section,
        message: `${a === undefined ? 'adding' : 'removing'} this section needs a restart (the running config is kept)`,
      });
      continue;
    }
    if (!a || !b) continue;
    for (const key of keys) {
      if (!isDeepStrictEqual(a[key], b[key]))
        issues.push({
          path: `${section}.${key}`,
          message: `changes to this key need a restart (running ${JSON.stringify(a[key])}, got ${JSON.stringify(b[key])}; the running config is kept)`,
        });
    }
  }
  return issues;
}

/** What changes when a process running `current` applies `next`. */
export function diffConfig(current: Config, next: Config): ConfigChange {
  const before = new Map(staticMembers(current).map((m) => [m.id, m]));
  const after = new Map(staticMembers(next).map((m) => [m.id, m]));
  const added: Member[] = [];
  const updated: Member[] = [];
  for (const [id, m] of after) {
    const old = before.get(id);
    if (!old) added.push(m);
    else if (!isDeepStrictEqual(old, m)) updated.push(m);
  }
  const removed = [...before.keys()].filter((id) => !after.has(id));
  const poolsChanged = [...new Set([...Object.keys(current.pools), ...Object.keys(next.pools)])].filter(
    (name) => {
      const a = current.pools[name];
      const b = next.pools[name];
      return !a || !b || !isDeepStrictEqual(a.policy, b.policy) || !isDeepStrictEqual(a.health, b.health);
    },
  );
  return { added, updated, removed, poolsChanged };
}
