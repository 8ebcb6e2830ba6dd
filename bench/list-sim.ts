/**
 * bench/list-sim.ts — how evenly list clients (seed 003, L3.4) fill servers of uneven capacity
 * when the list they choose from is stale. Pure and deterministic (seeded random, simulated
 * time); `bench/list.ts` puts its table in `details`, and `npm run bench -- list-sim [--quick]`
 * prints it alone (no result file: it measures balance, not speed).
 *
 * The model:
 * - `clients` (10,000) arrive one every 1/`ratePerSec` s (1,000 per second, so over 10 simulated
 *   seconds); each stays connected to the end (no departures).
 * - Ten servers with the capacities `CAPACITIES` (users; 2,400 in all, so the 10,000 clients fill
 *   them to about 4.2× on average: only the ratios matter, nothing refuses a client).
 * - The list service takes a snapshot of every server's users every `snapshotSec` (0.1 s): the
 *   snapshot at time s counts the clients that arrived before s. A client arriving at t uses the
 *   snapshot at or before t − `staleSec` (the first one, all zero, when that is before 0), so even
 *   staleness 0 sees a list up to 0.1 s old.
 * - Each client turns that list into core MemberViews as the list client does
 *   (`src/client/stream-list.ts`): member.weight := capacity, load.users := the snapshot's users,
 *   health up, group 0; then one core policy picks.
 * Figures: utilisation_i = users_i / capacity_i; balance = max / mean of it across the servers
 * (1 is perfect); at the end, and the worst seen after any arrival past the first
 * `transientAfter` (1,000): the transient.
 */
import { seededRandom } from '../src/core/hash.js';
import { emptyLoad, type MemberView, makeMember } from '../src/core/model.js';
import { createPolicy, type Policy } from '../src/core/policy/index.js';
import type { BenchOptions } from './harness.js';
import { median, printTable } from './harness.js';

/** Capacities of the ten servers, in users. */
export const CAPACITIES: readonly number[] = [50, 50, 100, 100, 100, 200, 200, 400, 400, 800];

/** The policies compared, by the name used in the table. */
export const SIM_POLICIES = [
  'priority-load',
  'priority-load+weight',
  'priority-load+weight+sharpen',
  'p2c',
  'weighted-random',
  'least-loaded',
  'random',
] as const;
export type SimPolicy = (typeof SIM_POLICIES)[number];

/** What each table name means. */
export const SIM_POLICY_NOTES: Readonly<Record<SimPolicy, string>> = {
  'priority-load': 'seed formula P(i) = (1 - users_i / total) / (live - 1), raw users',
  'priority-load+weight':
    'priority-load normalizeByWeight: P(i) ∝ capacity_i (1 - load_i / Σ load), load = users / capacity',
  'priority-load+weight+sharpen':
    "priority-load normalizeByWeight + sharpen: P(i) ∝ capacity_i (1 - load_i / Σ load)^(live-1) (list clients' default)",
  p2c: 'power of two choices, metric users (compares users per capacity)',
  'weighted-random': 'random in proportion to capacity, ignores load',
  'least-loaded': 'least users per capacity (normalizeByWeight), ties by capacity then at random',
  random: 'uniform, ignores load and capacity',
};

export const STALENESS_SEC: readonly number[] = [0, 1, 5];

function makePolicy(name: SimPolicy, random: () => number): Policy {
  switch (name) {
    case 'priority-load':
      return createPolicy('priority-load', { random });
    case 'priority-load+weight':
      return createPolicy('priority-load', { normalizeByWeight: true, random });
    case 'priority-load+weight+sharpen':
      return createPolicy('priority-load', { normalizeByWeight: true, sharpen: true, random });
    case 'p2c':
      return createPolicy('p2c', { metric: 'users', random });
    case 'weighted-random':
      return createPolicy('weighted-random', { random });
    case 'least-loaded':
      return createPolicy('least-loaded', { metric: 'users', normalizeByWeight: true, random });
    case 'random':
      return createPolicy('random', { random });
  }
}

export interface SimulateOptions {
  readonly policy: SimPolicy;
  /** Age of the list a client uses, in seconds (0, 1, 5). */
  readonly staleSec: number;
  readonly seed: number;
  /** 10,000 by default. */
  readonly clients?: number;
  /** Arrivals per simulated second; 1,000 by default. */
  readonly ratePerSec?: number;
  /** Servers' capacities in users; `CAPACITIES` by default. */
  readonly capacities?: readonly number[];
  /** Interval between list snapshots, seconds; 0.1 by default. */
  readonly snapshotSec?: number;
  /** The transient figure counts arrivals after this many; 1,000 by default. */
  readonly transientAfter?: number;
}

export interface SimulateResult {
  /** Users per server at the end. */
  readonly users: readonly number[];
  /** users_i / capacity_i at the end. */
  readonly utilisation: readonly number[];
  /** max / mean of `utilisation`. */
  readonly maxOverMean: number;
  /** The largest max / mean of the utilisation after any arrival past `transientAfter`. */
  readonly worstTransient: number;
}

function balance(users: Float64Array, capacities: readonly number[]): number {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < capacities.length; i++) {
    const u = users[i]! / capacities[i]!;
    sum += u;
    if (u > max) max = u;
  }
  return sum === 0 ? 1 : max / (sum / capacities.length);
}

/** One run: every client arrives, reads its (stale) list, and one policy picks its server. */
export function simulateArrivals(options: SimulateOptions): SimulateResult {
  const clients = options.clients ?? 10_000;
  const rate = options.ratePerSec ?? 1000;
  const capacities = options.capacities ?? CAPACITIES;
  const snapshotSec = options.snapshotSec ?? 0.1;
  const transientAfter = options.transientAfter ?? 1000;
  const policy = makePolicy(options.policy, seededRandom(options.seed));
  const members = capacities.map((c, i) =>
    makeMember({ id: `s${i}`, pool: 'live', weight: c, group: 0, labels: { capacity: String(c) } }),
  );
  const index = new Map(members.map((m, i) => [m.id, i] as const));
  const users = new Float64Array(capacities.length);
  // snapshots[j]: the list at j × snapshotSec, as the MemberViews a client builds from it.
  const snapshots: MemberView[][] = [];
  const viewsOf = (counts: Float64Array): MemberView[] =>
    members.map((member, i) => ({
      member,
      health: 'up',
      load: { ...emptyLoad(0), users: counts[i]!, connections: counts[i]! },
    }));
  let worst = 0;
  for (let k = 0; k < clients; k++) {
    // Snapshot indices in arrivals (100 per snapshot by default); the epsilon makes 2.9999… count as 3.
    const perSnapshot = rate * snapshotSec;
    const current = Math.floor(k / perSnapshot + 1e-9);
    while (snapshots.length <= current) snapshots.push(viewsOf(users));
    const j = Math.max(0, Math.floor((k - options.staleSec * rate) / perSnapshot + 1e-9));
    const picked = policy.pick({ members: snapshots[j]! });
    if (picked === undefined) throw new Error('no server picked');
    users[index.get(picked.id)!]! += 1;
    if (k + 1 > transientAfter) worst = Math.max(worst, balance(users, capacities));
  }
  return {
    users: [...users],
    utilisation: capacities.map((c, i) => users[i]! / c),
    maxOverMean: balance(users, capacities),
    worstTransient: worst,
  };
}

export interface SimulationRow {
  readonly policy: SimPolicy;
  readonly staleSec: number;
  /** Medians over the seeds. */
  readonly maxOverMean: number;
  readonly worstTransient: number;
  /** Median utilisation of each server at the end (users / capacity). */
  readonly utilisation: readonly number[];
  /** Per seed, in order. */
  readonly runs: readonly { readonly maxOverMean: number; readonly worstTransient: number }[];
}

/** Every policy × staleness, `seeds` runs each (seeds 1..seeds), medians. */
export function simulationTable(
  seeds: number,
  onRun?: (what: string) => void,
  policies: readonly SimPolicy[] = SIM_POLICIES,
  staleness: readonly number[] = STALENESS_SEC,
): SimulationRow[] {
  const rows: SimulationRow[] = [];
  for (const policy of policies) {
    for (const staleSec of staleness) {
      const runs: SimulateResult[] = [];
      for (let s = 1; s <= seeds; s++) {
        runs.push(simulateArrivals({ policy, staleSec, seed: s * 7919 + staleSec }));
        onRun?.(`${policy} stale ${staleSec}s seed ${s}`);
      }
      rows.push({
        policy,
        staleSec,
        maxOverMean: round3(median(runs.map((r) => r.maxOverMean))),
        worstTransient: round3(median(runs.map((r) => r.worstTransient))),
        utilisation: CAPACITIES.map((_, i) => round3(median(runs.map((r) => r.utilisation[i]!)))),
        runs: runs.map((r) => ({
          maxOverMean: round3(r.maxOverMean),
          worstTransient: round3(r.worstTransient),
        })),
      });
    }
  }
  return rows;
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** Prints the table: one row per policy, end and transient max/mean for each staleness. */
export function printSimulation(
  rows: readonly SimulationRow[],
  staleness: readonly number[] = STALENESS_SEC,
): void {
  const policies = [...new Set(rows.map((r) => r.policy))];
  const cell = (p: SimPolicy, s: number) => rows.find((r) => r.policy === p && r.staleSec === s)!;
  printTable(
    ['policy', ...staleness.flatMap((s) => [`end, ${s}s stale`, `worst, ${s}s`])],
    policies.map((p) => [
      p,
      ...staleness.flatMap((s) => [cell(p, s).maxOverMean.toFixed(3), cell(p, s).worstTransient.toFixed(3)]),
    ]),
  );
}

/** `npm run bench -- list-sim [--quick]`: the table alone (3 seeds quick, else 9). */
export async function run(options: BenchOptions): Promise<undefined> {
  const seeds = options.quick ? 3 : 9;
  const rows = simulationTable(seeds);
  console.log(
    `\nlist-sim: utilisation max/mean across ${CAPACITIES.length} servers (capacities ${CAPACITIES.join(', ')}), ` +
      `10,000 clients at 1,000/s, median of ${seeds} seeds; "worst" = the worst after any arrival past the first 1,000\n`,
  );
  printSimulation(rows);
  console.log('\nend utilisation per server (users / capacity), median over seeds:\n');
  printTable(
    ['policy', 'stale', ...CAPACITIES.map((c) => String(c))],
    rows.map((r) => [r.policy, `${r.staleSec}s`, ...r.utilisation.map((u) => u.toFixed(2))]),
  );
  return undefined;
}
