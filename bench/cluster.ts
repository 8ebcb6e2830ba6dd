/**
 * bench/cluster.ts — seed 002's self-selecting cluster.
 *  1. Convergence after a member's host dies (the headline): the lab of
 *     test/cluster/lab-usher.test.ts — three members sharing a MAC and a virtual IP behind a hub
 *     bridge, each running nginx and `usher run` with the mesh registry (interval 100 ms, ping
 *     timeout 150 ms, suspicion 300..800 ms) and the `cluster:` role (availability 1:2:1), and
 *     a client on the hub fetching with curl. Once converged (a batch of 40 new connections all
 *     answered), one member's host dies (link down, every process in its namespace killed);
 *     the figure is the time from the kill to the start of the first batch of 30 new
 *     connections (curl --connect-timeout 0.3) ALL answered by survivors, as the test measures
 *     it. A fresh lab per drill; the victim rotates m1, m2, m3. Median and p99 over 10 drills
 *     (3 with --quick). Peer: Microsoft NLB's published figure (detection in 5 s, convergence in
 *     about 3 s more): not measured here.
 *  2. details.movedShare: the share of the value space that changes owner when one of N members
 *     (equal availabilities) joins or leaves, for `planRanges` against the ideal 1/N and
 *     against naive proportional re-slicing (`naiveProportionalPlan`); median over random id sets.
 *  3. details.filterThroughput: requests per second through the virtual IP (one member behind
 *     the hub, nginx, keep-alive load from bench/fixtures/cluster-load.ts in the client's
 *     namespace) with the kernel cluster filter holding the full range against no filter,
 *     alternating rounds (the order rotating) after an unmeasured warm-up of each. A third case,
 *     a one-rule table that only engages conntrack (no hash, mark or drop), tells how much of
 *     the filter's cost is conntrack itself (the namespace tracks nothing without a ct rule).
 *     The host has few cores: the generator, nginx and softirq share them, so rounds are noisy.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyClusterTable, removeClusterTable, renderClusterTable } from '../src/cluster/nft-filter.js';
import { movedShare, naiveProportionalPlan, type PlanMember, planRanges } from '../src/cluster/plan.js';
import { seededRandom } from '../src/core/hash.js';
import { addMember, fetchMany, HTTP_PORT, type Member, VIP } from '../test/cluster/fixtures/hub-cluster.js';
import { createLab, type Host, type Lab, type LabProcess } from '../test/lab/lab.js';
import { killInNamespaces } from '../test/lab/sweep.js';
import {
  type BenchOptions,
  type BenchResult,
  formatRate,
  makeResult,
  median,
  Progress,
  printTable,
  writeResult,
} from './harness.js';

const ROOT = new URL('..', import.meta.url).pathname;
const USHER_BIN = join(ROOT, 'bin/usher.js');
const LOAD = join(ROOT, 'bench/fixtures/cluster-load.ts');
const CAPACITY: Record<string, number> = { m1: 1, m2: 2, m3: 1 };
const IDS = Object.keys(CAPACITY);
const MESH_PORT = 9400;
const MESH = { intervalMs: 100, pingTimeoutMs: 150, suspicionMinMs: 300, suspicionMaxMs: 800 };
const BATCH = 30;
const READY_BATCH = 40;
const DRILL_DEADLINE_MS = 10_000;
const NLB_MS = 8000;
const mgmt = (i: number) => `10.77.0.${11 + i}`;

function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- 1. convergence drills -------------------------------------------------------------------

interface Drill {
  readonly victim: string;
  /** Kill to the start of the first fully answered batch (null: not within the deadline). */
  readonly ms: number | null;
  /** Time from `usher run` spawned to converged (all of a batch answered). */
  readonly convergeFromStartMs: number;
  /** Batches tried after the kill. */
  readonly batches: number;
}

async function startCluster(lab: Lab, dir: string): Promise<{ client: Host; members: Map<string, Member> }> {
  const hub = await lab.bridge('hub', { hub: true });
  const client = await lab.host('client');
  await lab.attach(client, hub, { addr: '10.77.0.2/24', mac: '02:00:00:77:00:02' });
  const members = new Map<string, Member>();
  for (const m of await Promise.all(IDS.map((id, i) => addMember(lab, hub, id, i)))) members.set(m.id, m);
  const ushers: LabProcess[] = [];
  for (const [i, id] of IDS.entries()) {
    const config = {
      registry: {
        kind: 'mesh',
        mesh: {
          node: id,
          host: mgmt(i),
          port: MESH_PORT,
          seeds: IDS.filter((o) => o !== id).map((o) => `${mgmt(IDS.indexOf(o))}:${MESH_PORT}`),
          ...MESH,
        },
      },
      log: { level: 'info', format: 'json' },
      pools: { web: { health: { kind: 'none' } } },
      cluster: {
        pool: 'web',
        member: { id, address: mgmt(i), port: HTTP_PORT },
        vip: VIP,
        ports: [HTTP_PORT],
        availability: CAPACITY[id],
        intervalMs: 500,
      },
    };
    const file = join(dir, `${id}.json`);
    await writeFile(file, JSON.stringify(config));
    ushers.push(
      members.get(id)!.host.spawn(process.execPath, [USHER_BIN, 'run', file], {
        env: { USHER_MESH_SECRET: 'lab secret 0123456789' },
      }),
    );
  }
  await Promise.all(ushers.map((u) => u.waitForLine(/usher: running/, { timeoutMs: 30_000 })));
  return { client, members };
}

async function drill(victimId: string): Promise<Drill> {
  const dir = await mkdtemp(join(tmpdir(), 'usher-bench-cluster-'));
  let lab: Lab | undefined;
  let members = new Map<string, Member>();
  try {
    lab = await createLab();
    const t0 = performance.now();
    const cluster = await startCluster(lab, dir);
    members = cluster.members;
    const { client } = cluster;
    let next = 20000;
    // Converged: every connection of a batch answered by a member.
    const readyDeadline = performance.now() + 30_000;
    for (;;) {
      const batch = await fetchMany(client, next, READY_BATCH, { parallel: READY_BATCH, timeoutS: 1 });
      next += READY_BATCH;
      if (batch.every((f) => f.status === '200' && members.has(f.body))) break;
      if (performance.now() > readyDeadline) throw new Error('cluster did not converge within 30 s');
      await sleep(200);
    }
    const convergeFromStartMs = performance.now() - t0;
    const victim = members.get(victimId)!;
    const survivors = new Set(IDS.filter((id) => id !== victimId));
    next = 30000;
    const killedAt = performance.now();
    await victim.host.ip(['link', 'set', victim.ifname, 'down']);
    killInNamespaces([victim.host.ns]);
    let batches = 0;
    while (performance.now() - killedAt < DRILL_DEADLINE_MS) {
      const started = performance.now();
      const batch = await fetchMany(client, next, BATCH, { parallel: BATCH, timeoutS: 0.3 });
      next += BATCH;
      batches++;
      if (batch.length === BATCH && batch.every((f) => f.status === '200' && survivors.has(f.body)))
        return { victim: victimId, ms: started - killedAt, convergeFromStartMs, batches };
      await sleep(10);
    }
    return { victim: victimId, ms: null, convergeFromStartMs, batches };
  } finally {
    await lab?.close();
    await Promise.all([...members.values()].map((m) => rm(m.dir, { recursive: true, force: true })));
    await rm(dir, { recursive: true, force: true });
  }
}

// ---- 2. moved share --------------------------------------------------------------------------

interface MovedRow {
  readonly n: number;
  readonly ideal: number;
  readonly join: { ours: number; naive: number };
  readonly leave: { ours: number; naive: number };
  readonly goalMet: boolean;
}

function movedShares(sets: number): MovedRow[] {
  const rows: MovedRow[] = [];
  for (const n of [3, 5, 10, 20]) {
    const j = { ours: [] as number[], naive: [] as number[] };
    const l = { ours: [] as number[], naive: [] as number[] };
    for (let s = 0; s < sets; s++) {
      const rand = seededRandom(1000 * n + s);
      const all: PlanMember[] = Array.from({ length: n }, (_, i) => ({
        id: `node-${Math.floor(rand() * 1e9).toString(36)}-${i}`,
        availability: 1,
      }));
      // Join: the last of the N joins the other N - 1.
      const before = all.slice(0, n - 1);
      j.ours.push(movedShare(planRanges(before), planRanges(all)));
      j.naive.push(movedShare(naiveProportionalPlan(before), naiveProportionalPlan(all)));
      // Leave: a random one of the N leaves.
      const gone = Math.floor(rand() * n);
      const after = all.filter((_, i) => i !== gone);
      l.ours.push(movedShare(planRanges(all), planRanges(after)));
      l.naive.push(movedShare(naiveProportionalPlan(all), naiveProportionalPlan(after)));
    }
    const join = { ours: median(j.ours), naive: median(j.naive) };
    const leave = { ours: median(l.ours), naive: median(l.naive) };
    const ideal = 1 / n;
    rows.push({ n, ideal, join, leave, goalMet: Math.max(join.ours, leave.ours) <= ideal + 0.02 });
  }
  return rows;
}

// ---- 3. filter throughput --------------------------------------------------------------------

interface ThroughputFigures {
  readonly filter: number;
  readonly noFilter: number;
  /** No cluster filter, but conntrack engaged in the member's namespace (a one-rule table). */
  readonly conntrackOnly: number;
  readonly rounds: { filter: number[]; noFilter: number[]; conntrackOnly: number[] };
  readonly errors: number;
}

async function filterThroughput(quick: boolean, progress: Progress): Promise<ThroughputFigures> {
  const lab = await createLab();
  let member: Member | undefined;
  try {
    const hub = await lab.bridge('hub', { hub: true });
    const client = await lab.host('client');
    await lab.attach(client, hub, { addr: '10.77.0.2/24', mac: '02:00:00:77:00:02' });
    member = await addMember(lab, hub, 'm1', 0);
    const ns = member.host.ns;
    const table = renderClusterTable({ vip: VIP, ports: [HTTP_PORT], ranges: [[0, 31999]] });
    const rounds = quick ? 3 : 5;
    const ms = quick ? 1000 : 3000;
    let errors = 0;
    const load = async (measureMs: number): Promise<number> => {
      const { stdout } = await client.exec(
        process.execPath,
        ['--import', 'tsx', LOAD, VIP, String(HTTP_PORT), '16', '300', String(measureMs)],
        { cwd: ROOT, timeoutMs: measureMs + 30_000 },
      );
      const r = JSON.parse(stdout.trim().split('\n').pop()!) as { rate: number; errors: number };
      errors += r.errors;
      return r.rate;
    };
    // Conntrack alone: the same hook and match as the cluster table, but no hash, mark or drop.
    const conntrack = `table ip usher_ct {
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip daddr ${VIP} tcp dport ${HTTP_PORT} ct state established,new accept
  }
}
`;
    type Mode = 'filter' | 'noFilter' | 'conntrackOnly';
    const set = async (mode: Mode) => {
      await removeClusterTable({ netns: ns });
      await member!.host.exec('nft', ['delete', 'table', 'ip', 'usher_ct'], { reject: false });
      if (mode === 'filter') await applyClusterTable(table, { netns: ns });
      if (mode === 'conntrackOnly') await member!.host.nft(conntrack);
    };
    const cases: { name: Mode }[] = [{ name: 'filter' }, { name: 'noFilter' }, { name: 'conntrackOnly' }];
    for (const c of cases) {
      await set(c.name);
      await load(1000);
      progress.tick(`throughput warm-up ${c.name}`);
    }
    const out = { filter: [] as number[], noFilter: [] as number[], conntrackOnly: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + r) % cases.length]!;
        await set(c.name);
        out[c.name].push(Math.round(await load(ms)));
        progress.tick(`throughput round ${r + 1}/${rounds} ${c.name}`);
      }
    }
    return {
      filter: median(out.filter),
      noFilter: median(out.noFilter),
      conntrackOnly: median(out.conntrackOnly),
      rounds: out,
      errors,
    };
  } finally {
    await lab.close();
    if (member) await rm(member.dir, { recursive: true, force: true });
  }
}

// ---- run -------------------------------------------------------------------------------------

export async function run(options: BenchOptions): Promise<BenchResult> {
  const drills = options.quick ? 3 : 10;
  const sets = options.quick ? 9 : 25;
  const tpRounds = options.quick ? 3 : 5;
  const progress = new Progress('cluster', drills + 1 + 3 * (1 + tpRounds));

  const moved = movedShares(sets);
  progress.tick('moved share');

  const results: Drill[] = [];
  for (let k = 0; k < drills; k++) {
    const victim = IDS[k % IDS.length]!;
    const d = await drill(victim);
    results.push(d);
    progress.tick(
      `drill ${k + 1}/${drills} (${victim}): ${d.ms === null ? 'timeout' : `${Math.round(d.ms)} ms`}`,
    );
  }

  let tp: ThroughputFigures | { skipped: string };
  try {
    tp = await filterThroughput(options.quick, progress);
  } catch (err) {
    tp = { skipped: `failed: ${(err as Error).message.split('\n')[0]}` };
  }
  progress.done();

  const ok = results.filter((d): d is Drill & { ms: number } => d.ms !== null).map((d) => d.ms);
  const med = ok.length > 0 ? median(ok) : Number.NaN;
  const p99 = ok.length > 0 ? percentile(ok, 99) : Number.NaN;

  console.log(`\ncluster: convergence after a member's host dies${options.quick ? ', quick' : ''}\n`);
  printTable(
    ['drill', 'victim', 'kill → first all-answered batch (ms)', 'batches', 'start → converged (ms)'],
    results.map((d, i) => [
      String(i + 1),
      d.victim,
      d.ms === null ? `> ${DRILL_DEADLINE_MS}` : d.ms.toFixed(0),
      d.batches,
      d.convergeFromStartMs.toFixed(0),
    ]),
  );
  console.log('');
  printTable(
    ['what', 'median ms', 'p99 ms', 'vs NLB'],
    [
      [
        'usher cluster (mesh 100 ms, suspicion 300..800 ms)',
        med.toFixed(0),
        p99.toFixed(0),
        (med / NLB_MS).toFixed(3),
      ],
      ['Microsoft NLB (published: 5 s detect + ~3 s converge)', String(NLB_MS), '-', '1.000'],
    ],
  );
  console.log('\nmoved share when 1 of N (equal availabilities) joins / leaves, median of id sets\n');
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  printTable(
    ['N', 'ideal 1/N', 'ours join', 'ours leave', 'naive join', 'naive leave', 'ours ≤ 1/N + 2%'],
    moved.map((r) => [
      String(r.n),
      pct(r.ideal),
      pct(r.join.ours),
      pct(r.leave.ours),
      pct(r.join.naive),
      pct(r.leave.naive),
      r.goalMet ? 'yes' : 'NO',
    ]),
  );
  if ('skipped' in tp) console.log(`\nfilter throughput: skipped (${tp.skipped})`);
  else {
    console.log('\nfilter throughput: requests/s through the VIP, one member, keep-alive (16 connections)\n');
    printTable(
      ['what', 'requests/s', 'ratio'],
      [
        ['cluster filter (full range)', formatRate(tp.filter), (tp.filter / tp.noFilter).toFixed(3)],
        ['no filter', formatRate(tp.noFilter), '1.000'],
        [
          'no filter, conntrack on (diagnostic)',
          formatRate(tp.conntrackOnly),
          (tp.conntrackOnly / tp.noFilter).toFixed(3),
        ],
      ],
    );
  }

  const result = makeResult({
    name: 'cluster',
    metric: 'convergence after a member dies',
    unit: 'ms',
    higherIsBetter: false,
    ours: Math.round(med),
    peers: { 'nlb-published': NLB_MS },
    limit: null,
    quick: options.quick,
    details: {
      convergenceMs: {
        median: Math.round(med),
        p99: Math.round(p99),
        samples: results.map((d) => (d.ms === null ? null : Math.round(d.ms))),
        victims: results.map((d) => d.victim),
        timeouts: results.filter((d) => d.ms === null).length,
        startToConvergedMs: results.map((d) => Math.round(d.convergeFromStartMs)),
      },
      convergenceSetup:
        'fresh lab per drill: 3 members (availability 1:2:1) sharing MAC + VIP behind a hub bridge, nginx + `usher run` (mesh registry intervalMs 100, pingTimeoutMs 150, suspicionMinMs 300, suspicionMaxMs 800; cluster intervalMs 500); converged = a batch of 40 curls all answered; host death = link down + every process in its namespace killed; figure = kill to the start of the first batch of 30 new connections (curl --connect-timeout 0.3, 30 in parallel) all answered by survivors; victim rotates m1, m2, m3',
      peerNote:
        "nlb-published is Microsoft NLB's published figure (heartbeat loss detected in 5 s, convergence in about 3 s more), not measured here",
      movedShare: {
        goal: 'ours ≤ 1/N + 2 %',
        idSets: sets,
        rows: moved.map((r) => ({
          n: r.n,
          ideal: round4(r.ideal),
          join: { ours: round4(r.join.ours), naive: round4(r.join.naive) },
          leave: { ours: round4(r.leave.ours), naive: round4(r.leave.naive) },
          goalMet: r.goalMet,
        })),
      },
      filterThroughput:
        'skipped' in tp
          ? { skipped: tp.skipped }
          : {
              filterRps: Math.round(tp.filter),
              noFilterRps: Math.round(tp.noFilter),
              ratio: round4(tp.filter / tp.noFilter),
              conntrackOnlyRps: Math.round(tp.conntrackOnly),
              ratioConntrackOnly: round4(tp.conntrackOnly / tp.noFilter),
              ratioFilterVsConntrackOnly: round4(tp.filter / tp.conntrackOnly),
              goal: '≥ 0.95',
              rounds: tp.rounds,
              clientErrors: tp.errors,
              setup:
                'one member (nginx, 1 worker) behind the hub; the cluster table holds the full range 0..31999 or is removed; bench/fixtures/cluster-load.ts in the client namespace: 16 keep-alive connections, one request in flight each, 300 ms warm-up per run; alternating rounds',
            },
    },
  });
  const path = await writeResult(result);
  console.log(`\nwrote ${path}`);
  return result;
}

function round4(n: number): number {
  return Math.round(n * 10000) / 10000;
}
