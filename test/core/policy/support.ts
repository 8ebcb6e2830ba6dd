/** Shared builders and arbitraries for the policy tests (not a test file itself). */
import fc from 'fast-check';
import {
  emptyLoad,
  type HealthState,
  type LoadReport,
  type MemberView,
  makeMember,
} from '../../../src/core/model.js';

/** One seed for every property in these suites, so a failure reproduces. */
export const SEED = 0x5eed;

export interface ViewSpec {
  health?: HealthState;
  weight?: number;
  group?: number;
  labels?: Record<string, string>;
  load?: Partial<LoadReport>;
}

export function view(id: string, spec: ViewSpec = {}): MemberView {
  const member = makeMember({
    id,
    weight: spec.weight ?? 1,
    group: spec.group ?? 0,
    labels: spec.labels ?? {},
  });
  const v: MemberView = { member, health: spec.health ?? 'up' };
  return spec.load === undefined ? v : { ...v, load: { ...emptyLoad(0), ...spec.load } };
}

/** `n` up members `m0..m(n-1)` with weight 1. */
export function upPool(n: number, spec: ViewSpec = {}): MemberView[] {
  return Array.from({ length: n }, (_, i) => view(`m${i}`, spec));
}

export const healthArb = fc.constantFrom<HealthState>('up', 'suspect', 'down', 'draining');

/** A pool of 0..maxLength members with unique ids, any health, weights, groups and loads. */
export function poolArb(
  options: { minLength?: number; maxLength?: number } = {},
): fc.Arbitrary<MemberView[]> {
  return fc
    .uniqueArray(
      fc.record({
        id: fc.string({ minLength: 1, maxLength: 8 }),
        health: healthArb,
        weight: fc.double({ min: 0.1, max: 100, noNaN: true }),
        group: fc.integer({ min: 0, max: 3 }),
        users: fc.nat({ max: 10_000 }),
        connections: fc.nat({ max: 10_000 }),
        inFlight: fc.nat({ max: 100 }),
        cpu: fc.double({ min: 0, max: 2, noNaN: true }),
        hasLoad: fc.boolean(),
      }),
      { selector: (r) => r.id, minLength: options.minLength ?? 0, maxLength: options.maxLength ?? 12 },
    )
    .map((rows) =>
      rows.map((r) =>
        view(r.id, {
          health: r.health,
          weight: r.weight,
          group: r.group,
          ...(r.hasLoad
            ? { load: { users: r.users, connections: r.connections, inFlight: r.inFlight, cpu: r.cpu } }
            : {}),
        }),
      ),
    );
}

/** Counts how often each member id is returned by `draw` over `n` draws. */
export function tally(n: number, draw: () => string | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const id = draw();
    if (id !== undefined) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/**
 * Asserts that observed counts match probabilities within `sigmas` binomial standard deviations
 * (plus one draw), for every id. Returns a message when they do not, else undefined.
 */
export function proportionsProblem(
  counts: ReadonlyMap<string, number>,
  expected: ReadonlyMap<string, number>,
  draws: number,
  sigmas = 5,
): string | undefined {
  for (const [id, p] of expected) {
    const seen = counts.get(id) ?? 0;
    const sd = Math.sqrt(draws * p * (1 - p));
    if (Math.abs(seen - draws * p) > sigmas * sd + 1) {
      return `member ${id}: expected about ${(draws * p).toFixed(1)} of ${draws} (p=${p.toFixed(4)}), got ${seen}`;
    }
  }
  for (const id of counts.keys())
    if (!expected.has(id)) return `member ${id} was picked but has probability 0`;
  return undefined;
}
