/**
 * Decisions per second of every selection policy, for pools of 10, 100 and 1000 members (all
 * up, each with a load report), in one run.
 *
 * - ours: the median over the nine policies (the eight `createPolicy` ones, with default
 *   options, plus the high-water scheduler's tryAcquire + release) at 100 members.
 * - peer `naive-filter-random`: the least a correct policy must do: drop members that are not
 *   up, then index at random (`members.filter(up)[random * n]`).
 * - limit `array-index-random`: no policy at all, `members[Math.floor(Math.random() * n)]`.
 * Keyed policies (maglev, ranges) get a fresh key each decision from a precomputed list; tables
 * and ranges are built once (the pool does not change during the run), and their build times are
 * reported separately in `details.buildMs`.
 */
import { seededRandom } from '../src/core/hash.js';
import { emptyLoad, type MemberView, makeMember } from '../src/core/model.js';
import { createPolicy, HighWaterScheduler, POLICY_NAMES } from '../src/core/policy/index.js';
import { buildMaglevTable } from '../src/core/policy/maglev.js';
import { computeRanges } from '../src/core/policy/ranges.js';
import {
  type BenchOptions,
  type BenchResult,
  type Case,
  formatRate,
  makeResult,
  measure,
  median,
  Progress,
  printTable,
  stepsFor,
  timingFor,
  writeResult,
} from './harness.js';

const SIZES = [10, 100, 1000] as const;
const HEADLINE_SIZE = 100;
const PEER = 'naive-filter-random';
const LIMIT = 'array-index-random';
const HIGH_WATER = 'high-water';

function makePool(n: number): MemberView[] {
  const random = seededRandom(n);
  return Array.from({ length: n }, (_, i) => ({
    member: makeMember({ id: `member-${String(i).padStart(4, '0')}`, weight: 1 + (i % 4), group: 0 }),
    health: 'up',
    load: {
      ...emptyLoad(Date.now()),
      users: Math.floor(random() * 5000),
      connections: Math.floor(random() * 1000),
      inFlight: Math.floor(random() * 50),
      cpu: random(),
    },
  }));
}

function casesFor(pool: readonly MemberView[]): Case[] {
  const keys = Array.from({ length: 4096 }, (_, i) => (Math.imul(i + 1, 0x9e3779b1) >>> 0) as number);
  const cases: Case[] = POLICY_NAMES.map((name) => {
    const policy = createPolicy(name);
    let k = 0;
    return {
      name,
      fn: (iterations: number) => {
        let last: unknown;
        for (let i = 0; i < iterations; i++) last = policy.pick({ members: pool, key: keys[k++ & 4095] });
        return last;
      },
    };
  });
  const scheduler = new HighWaterScheduler({ highWater: 1e9 });
  cases.push({
    name: HIGH_WATER,
    fn: (iterations: number) => {
      let last: unknown;
      for (let i = 0; i < iterations; i++) {
        const lease = scheduler.tryAcquire(pool, { type: 'static' });
        lease?.release();
        last = lease;
      }
      return last;
    },
  });
  cases.push({
    name: PEER,
    fn: (iterations: number) => {
      let last: unknown;
      for (let i = 0; i < iterations; i++) {
        const up = pool.filter((v) => v.health === 'up');
        last = up[Math.floor(Math.random() * up.length)]?.member;
      }
      return last;
    },
  });
  cases.push({
    name: LIMIT,
    fn: (iterations: number) => {
      let last: unknown;
      for (let i = 0; i < iterations; i++) last = pool[Math.floor(Math.random() * pool.length)];
      return last;
    },
  });
  return cases;
}

function buildTimes(pool: readonly MemberView[], runs: number): { maglev: number; ranges: number } {
  const members = pool.map((v) => v.member);
  const time = (f: () => unknown) => {
    f(); // warm-up, untimed
    const samples: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      f();
      samples.push(performance.now() - t0);
    }
    return Number(median(samples).toFixed(3));
  };
  return {
    maglev: time(() => buildMaglevTable(members)),
    ranges: time(() => computeRanges(members.map((m) => ({ id: m.id, capacity: m.weight })))),
  };
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const timing = timingFor(options.quick);
  const pools = new Map(SIZES.map((n) => [n, makePool(n)]));
  const casesPerSize = casesFor(pools.get(10)!).length;
  const progress = new Progress('policy', SIZES.length * (stepsFor(casesPerSize, timing) + 1));

  const rates: Record<string, Record<number, number>> = {};
  const buildMs: Record<string, Record<number, number>> = { maglev: {}, ranges: {} };
  for (const n of SIZES) {
    const pool = pools.get(n)!;
    const built = buildTimes(pool, 3);
    buildMs.maglev![n] = built.maglev;
    buildMs.ranges![n] = built.ranges;
    progress.tick(`build tables, ${n} members`);
    for (const r of measure(casesFor(pool), timing, progress)) {
      rates[r.name] ??= {};
      rates[r.name]![n] = Math.round(r.opsPerSec);
    }
  }
  progress.done();

  const ours = [...POLICY_NAMES, HIGH_WATER];
  const headline = median(ours.map((name) => rates[name]![HEADLINE_SIZE]!));
  const limitAt = (n: number) => rates[LIMIT]![n]!;
  console.log(
    `\npolicy: decisions per second (median of ${timing.rounds} rounds${options.quick ? ', quick' : ''})\n`,
  );
  printTable(
    ['policy', ...SIZES.map((n) => `${n} members`), `vs ${LIMIT} @${HEADLINE_SIZE}`],
    [...ours, PEER, LIMIT].map((name) => [
      name,
      ...SIZES.map((n) => formatRate(rates[name]![n]!)),
      (rates[name]![HEADLINE_SIZE]! / limitAt(HEADLINE_SIZE)).toFixed(3),
    ]),
  );
  console.log(
    `\nours (median of ${ours.length} policies at ${HEADLINE_SIZE} members): ${formatRate(headline)}/s; ` +
      `${PEER} ${formatRate(rates[PEER]![HEADLINE_SIZE]!)}/s; ${LIMIT} ${formatRate(limitAt(HEADLINE_SIZE))}/s`,
  );
  console.log(
    `build once per membership change, ms (10/100/1000 members): maglev ${SIZES.map((n) => buildMs.maglev![n]).join('/')}, ` +
      `ranges ${SIZES.map((n) => buildMs.ranges![n]).join('/')}`,
  );

  const result = makeResult({
    name: 'policy',
    metric: `decisions per second, median over ${ours.length} policies at ${HEADLINE_SIZE} members`,
    unit: 'decisions/s',
    higherIsBetter: true,
    ours: Math.round(headline),
    peers: { [PEER]: rates[PEER]![HEADLINE_SIZE]! },
    limit: { [LIMIT]: limitAt(HEADLINE_SIZE) },
    quick: options.quick,
    details: {
      headline: `median over ${ours.join(', ')} at ${HEADLINE_SIZE} members (all up, with load reports)`,
      sizes: SIZES,
      decisionsPerSecond: rates,
      buildMs,
      timing,
    },
  });
  const path = await writeResult(result);
  console.log(`\nwrote ${path}`);
  return result;
}
