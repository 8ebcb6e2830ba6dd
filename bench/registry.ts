/**
 * bench/registry.ts — propagation latency and registration rate of the three registries.
 *  1. Propagation latency (the headline is etcd's p99): one "member" registry instance registers
 *     a member, then publishes N load reports (1000; 200 with --quick), one every
 *     REPORT_EVERY_MS (paced, so this measures latency, not a queue). Three "balancer"
 *     instances watch; the latency of a report at a watcher is the time from the report() call
 *     to that watcher's 'load' event (performance.now() in this one process; a sequence number
 *     in `custom.seq` matches them). p50, p99 and max over all watchers × reports. A warm-up of
 *     WARMUP reports is sent first and not counted.
 *       memory: one MemoryRegistry, three watch() subscriptions (in-process, synchronous).
 *       mesh:   four MeshRegistry nodes in this process on 127.0.0.1 (member node + three
 *               balancer nodes, seeded from the first), connected before measuring.
 *       etcd:   one real etcd (test/registry/fixtures/etcd-server.ts), four EtcdRegistry
 *               instances with the same prefix.
 *  2. Registrations per second: M distinct members (2000; 300 with --quick) registered on the
 *     member instance as fast as possible with REG_CONCURRENCY calls in flight, timed from the
 *     first call until every watcher has seen every member-added event (end to end).
 */
import { emptyLoad, makeMember } from '../src/core/model.js';
import { EtcdRegistry } from '../src/registry/etcd/index.js';
import { MemoryRegistry } from '../src/registry/memory.js';
import { MeshRegistry } from '../src/registry/mesh/index.js';
import type { Registry, RegistryEvent } from '../src/registry/registry.js';
import { startEtcd } from '../test/registry/fixtures/etcd-server.js';
import {
  type BenchOptions,
  type BenchResult,
  formatRate,
  makeResult,
  Progress,
  printTable,
  writeResult,
} from './harness.js';

const KINDS = ['memory', 'mesh', 'etcd'] as const;
type Kind = (typeof KINDS)[number];
const WATCHERS = 3;
const REPORT_EVERY_MS = 5;
const WARMUP = 20;
const REG_CONCURRENCY = 32;
const GOAL_ETCD_P99_MS = 100;
const MESH_INTERVAL_MS = 100;
/** Progress steps per kind: setup, 10 for reports, 10 for registrations. */
const STEPS_PER_KIND = 21;

interface Setup {
  readonly member: Registry;
  readonly watchers: readonly Registry[];
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`registry bench: timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function closeAll(list: readonly { close(): Promise<void> }[]): Promise<void> {
  const results = await Promise.allSettled(list.map((r) => r.close()));
  for (const r of results)
    if (r.status === 'rejected') console.error('registry bench: close failed:', r.reason);
}

async function setupMemory(): Promise<Setup> {
  const registry = new MemoryRegistry();
  return { member: registry, watchers: [registry, registry, registry], close: () => registry.close() };
}

async function setupMesh(): Promise<Setup> {
  const nodes: MeshRegistry[] = [];
  const start = (i: number, seeds: string[]) =>
    MeshRegistry.start({
      nodeId: `bench-${process.pid}-${i}`,
      host: '127.0.0.1',
      port: 0,
      seeds,
      intervalMs: MESH_INTERVAL_MS,
    });
  try {
    nodes.push(await start(0, []));
    for (let i = 1; i <= WATCHERS; i++) nodes.push(await start(i, [nodes[0]!.advertise]));
    await until(
      'the mesh to converge',
      () =>
        nodes.every((node) =>
          nodes.every((other) => {
            if (other === node) return true;
            const v = node.nodes().find((n) => n.id === other.nodeId);
            return v?.state === 'alive' && v.connected;
          }),
        ),
      15_000,
    );
  } catch (error) {
    await closeAll(nodes);
    throw error;
  }
  return { member: nodes[0]!, watchers: nodes.slice(1), close: () => closeAll(nodes) };
}

async function setupEtcd(): Promise<Setup> {
  const etcd = await startEtcd();
  const registries: EtcdRegistry[] = [];
  const prefix = `/usher-bench-${process.pid}/`;
  try {
    for (let i = 0; i <= WATCHERS; i++)
      registries.push(await EtcdRegistry.start({ endpoints: [etcd.endpoint], prefix }));
  } catch (error) {
    await closeAll(registries);
    await etcd.stop();
    throw error;
  }
  return {
    member: registries[0]!,
    watchers: registries.slice(1),
    close: async () => {
      try {
        await closeAll(registries);
      } finally {
        await etcd.stop();
      }
    },
  };
}

const SETUPS: Record<Kind, () => Promise<Setup>> = { memory: setupMemory, mesh: setupMesh, etcd: setupEtcd };

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

interface LatencyFigures {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
  readonly expected: number;
  readonly missing: number;
}

async function latency(s: Setup, kind: Kind, reports: number, progress: Progress): Promise<LatencyFigures> {
  const id = `bench-${kind}-member`;
  const seen = s.watchers.map(() => false);
  const sent = new Map<number, number>();
  const samples: number[] = [];
  const counts = s.watchers.map(() => 0);
  const offs = s.watchers.map((w, i) =>
    w.watch((e: RegistryEvent) => {
      if (e.type === 'member-added' && e.member.id === id) seen[i] = true;
      if (e.type !== 'load' || e.id !== id) return;
      const at = performance.now();
      const seq = e.load.custom.seq;
      if (seq === undefined || seq < 0) return;
      const t0 = sent.get(seq);
      if (t0 === undefined) return;
      samples.push(at - t0);
      counts[i]! += 1;
    }),
  );
  try {
    await s.member.register(makeMember({ id, pool: 'bench', ports: { main: 9000 } }));
    await until(`${kind}: every watcher to see the member`, () => seen.every(Boolean), 10_000);
    const report = (seq: number) =>
      s.member.report(id, { ...emptyLoad(Date.now()), users: Math.max(0, seq), custom: { seq } });
    for (let k = 0; k < WARMUP; k++) {
      await report(-1 - k);
      await sleep(REPORT_EVERY_MS);
    }
    const start = performance.now();
    for (let seq = 0; seq < reports; seq++) {
      const slot = start + seq * REPORT_EVERY_MS;
      const wait = slot - performance.now();
      if (wait > 0) await sleep(wait);
      sent.set(seq, performance.now());
      await report(seq);
      if ((seq + 1) % Math.ceil(reports / 10) === 0) progress.tick(`${kind} reports ${seq + 1}/${reports}`);
    }
    await until(`${kind}: the last reports`, () => counts.every((c) => c >= reports), 10_000).catch(() => {});
  } finally {
    for (const off of offs) off();
  }
  const expected = reports * s.watchers.length;
  return {
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples.length ? Math.max(...samples) : Number.NaN,
    samples: samples.length,
    expected,
    missing: expected - samples.length,
  };
}

interface RegistrationFigures {
  readonly perSec: number;
  /** Only until the last register() call resolved (not waiting for the watchers). */
  readonly callsPerSec: number;
  readonly members: number;
  readonly ms: number;
}

async function registrations(
  s: Setup,
  kind: Kind,
  members: number,
  progress: Progress,
): Promise<RegistrationFigures> {
  const prefix = `bench-${kind}-reg-`;
  const counts = s.watchers.map(() => 0);
  let lastAt = 0;
  const offs = s.watchers.map((w, i) =>
    w.watch((e) => {
      if (e.type !== 'member-added' || !e.member.id.startsWith(prefix)) return;
      counts[i]! += 1;
      lastAt = performance.now();
    }),
  );
  try {
    let next = 0;
    let done = 0;
    const t0 = performance.now();
    const worker = async () => {
      for (let i = next++; i < members; i = next++) {
        await s.member.register(
          makeMember({
            id: `${prefix}${i}`,
            pool: 'bench',
            addresses: ['127.0.0.1'],
            ports: { main: 10_000 + (i % 50_000) },
          }),
        );
        done++;
        if (done % Math.ceil(members / 10) === 0) progress.tick(`${kind} registrations ${done}/${members}`);
      }
    };
    await Promise.all(Array.from({ length: REG_CONCURRENCY }, worker));
    const tCalls = performance.now();
    await until(
      `${kind}: every watcher to see every registration`,
      () => counts.every((c) => c >= members),
      120_000,
    );
    const ms = lastAt - t0; // the last member-added at the last watcher, not the poll that noticed it
    return { perSec: (members * 1000) / ms, callsPerSec: (members * 1000) / (tCalls - t0), members, ms };
  } finally {
    for (const off of offs) off();
  }
}

const r1 = (n: number) => Math.round(n * 10) / 10;
const r3 = (n: number) => Math.round(n * 1000) / 1000;
const ms = (n: number) => (n < 1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n.toFixed(1));

export async function run(options: BenchOptions): Promise<BenchResult> {
  const quick = options.quick;
  const reports = quick ? 200 : 1000;
  const members = quick ? 300 : 2000;
  const progress = new Progress('registry', KINDS.length * STEPS_PER_KIND);
  const lat = {} as Record<Kind, LatencyFigures>;
  const reg = {} as Record<Kind, RegistrationFigures>;
  for (const kind of KINDS) {
    const s = await SETUPS[kind]();
    progress.tick(`${kind} ready`);
    try {
      lat[kind] = await latency(s, kind, reports, progress);
      reg[kind] = await registrations(s, kind, members, progress);
    } finally {
      await s.close();
    }
  }
  progress.done();

  console.log(
    `\nregistry: report → ${WATCHERS} watching balancers, ${reports} reports every ${REPORT_EVERY_MS} ms ` +
      `(latency over ${WATCHERS} watchers × ${reports}); ${members} registrations, ${REG_CONCURRENCY} in flight, ` +
      `until every watcher saw them${quick ? '; quick' : ''}\n`,
  );
  printTable(
    ['registry', 'p50 ms', 'p99 ms', 'max ms', 'missing', 'registrations/s', 'register calls/s'],
    KINDS.map((k) => [
      k,
      ms(lat[k].p50),
      ms(lat[k].p99),
      ms(lat[k].max),
      lat[k].missing,
      formatRate(reg[k].perSec),
      formatRate(reg[k].callsPerSec),
    ]),
  );
  const etcdP99 = lat.etcd.p99;
  const met = etcdP99 <= GOAL_ETCD_P99_MS && lat.etcd.missing === 0;
  console.log(
    `\ngoal: etcd p99 ≤ ${GOAL_ETCD_P99_MS} ms — ${met ? 'met' : 'NOT met'} (${ms(etcdP99)} ms${lat.etcd.missing ? `, ${lat.etcd.missing} reports missing` : ''})`,
  );

  const result = makeResult({
    name: 'registry',
    metric: `etcd propagation p99 (report → ${WATCHERS} watchers)`,
    unit: 'ms',
    higherIsBetter: false,
    ours: r3(etcdP99),
    peers: {},
    limit: { 'goal-p99': GOAL_ETCD_P99_MS },
    quick,
    goal: { etcdP99Ms: GOAL_ETCD_P99_MS, met },
    details: {
      setup:
        `one process; member instance + ${WATCHERS} watching instances per kind. memory: one MemoryRegistry, ` +
        `${WATCHERS} watch() subscriptions (in-process, synchronous delivery). mesh: 4 MeshRegistry nodes on 127.0.0.1 ` +
        `(intervalMs ${MESH_INTERVAL_MS}), converged first. etcd: one local etcd (test fixture, heartbeat 50 ms), ` +
        `4 EtcdRegistry instances, same prefix. ${reports} reports paced every ${REPORT_EVERY_MS} ms after ${WARMUP} ` +
        `warm-up reports; latency = report() call → watcher's 'load' event (performance.now()). Registrations: ` +
        `${members} distinct members, ${REG_CONCURRENCY} register() calls in flight on the member instance, timed ` +
        `until every watcher saw every member-added event.`,
      latencyMs: Object.fromEntries(
        KINDS.map((k) => [
          k,
          {
            p50: r3(lat[k].p50),
            p99: r3(lat[k].p99),
            max: r3(lat[k].max),
            samples: lat[k].samples,
            missing: lat[k].missing,
          },
        ]),
      ),
      registrationsPerSec: Object.fromEntries(
        KINDS.map((k) => [
          k,
          {
            endToEnd: r1(reg[k].perSec),
            calls: r1(reg[k].callsPerSec),
            members: reg[k].members,
            ms: r1(reg[k].ms),
          },
        ]),
      ),
    },
  });
  const path = await writeResult(result);
  console.log(`\nwrote ${path}`);
  return result;
}
