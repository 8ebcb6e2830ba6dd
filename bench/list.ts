/**
 * bench/list.ts — seed 003's list service and list clients.
 *  1. Requests per second of the list service (the headline): `GET /usher/list/live` answered by
 *     `ListService` (ten members in a MemoryRegistry, each with a load report), against the
 *     limit `node-http-same-bytes`: a plain node:http server answering every request with the
 *     same bytes and the same headers (taken from a ListService response), measured in the same
 *     run, alternating rounds (the order rotating), after an unmeasured warm-up of each.
 *     Both servers live in this process, one loaded at a time; the load generator
 *     (bench/fixtures/list-load.ts: keep-alive HTTP/1.1 connections over raw sockets, pipelined)
 *     runs in a child process, so the server has a core to itself. The generator reports the
 *     CPU of this process over each window (1.00 = one core: the server saturated).
 *  2. details.simulation: bench/list-sim.ts, how evenly clients fill servers of uneven capacity
 *     with each policy when the list is 0, 1 or 5 s stale (max/mean utilisation, median of seeds).
 *  3. details.failoverMs: three StreamServers, each with a TickerFeed, listed by a ListService;
 *     a stream client (`connectStream`, default options) subscribed to a ticker. The server the
 *     client is on is terminated abruptly (`close({ terminate: true })`: sockets cut without a
 *     close frame, listener gone, as a crash); the time from the kill to the first data
 *     delivered from the new server; median and p99 over 20 kills (5 with --quick). The killed
 *     server is restarted on its port before the next kill (it stays in the list, up, throughout:
 *     the client must cope with a stale list).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connectStream } from '../src/client/node.js';
import { seededRandom } from '../src/core/hash.js';
import { emptyLoad, makeMember } from '../src/core/model.js';
import { ListService } from '../src/list/list-service.js';
import { StreamServer } from '../src/list/stream-server.js';
import { TickerFeed } from '../src/list/ticker.js';
import { MemoryRegistry } from '../src/registry/memory.js';
import type { LoadJob, LoadResult } from './fixtures/list-load.js';
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
import {
  CAPACITIES,
  printSimulation,
  SIM_POLICIES,
  SIM_POLICY_NOTES,
  STALENESS_SEC,
  simulationTable,
} from './list-sim.js';

const ROOT = new URL('..', import.meta.url).pathname;
const LIST_URL_PATH = '/usher/list/live';
const LIMIT = 'node-http-same-bytes';
/** Generator shape: connections × requests in flight on each. */
const CONNECTIONS = 16;
const PIPELINE = 4;
const TICK_MS = 100;

// ---- 1. throughput --------------------------------------------------------------------------

interface Generator {
  readonly child: ChildProcess;
  drive(job: LoadJob): Promise<LoadResult>;
  close(): Promise<void>;
}

async function generator(): Promise<Generator> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fixtures/list-load.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`load generator exited (${code})`)));
  });
  return {
    child,
    drive: (job) =>
      new Promise((resolve, reject) => {
        child.once('message', (reply: LoadResult | { error: string }) =>
          'error' in reply ? reject(new Error(reply.error)) : resolve(reply),
        );
        child.send(job);
      }),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill();
      await exited;
    },
  };
}

/** The ten members of the list: capacities as in the simulation, users about 40% of each. */
async function listRegistry(): Promise<MemoryRegistry> {
  const registry = new MemoryRegistry();
  for (let i = 0; i < CAPACITIES.length; i++) {
    const id = `live-${String(i + 1).padStart(2, '0')}`;
    await registry.register(
      makeMember({
        id,
        pool: 'live',
        addresses: ['127.0.0.1'],
        ports: { main: 9300 + i, stream: 9300 + i },
        site: 'local',
        weight: 1,
        labels: { capacity: String(CAPACITIES[i]) },
      }),
    );
    await registry.report(id, {
      ...emptyLoad(Date.now()),
      users: Math.round(CAPACITIES[i]! * (0.3 + 0.02 * i)),
      connections: Math.round(CAPACITIES[i]! * (0.3 + 0.02 * i)),
    });
  }
  return registry;
}

/** One GET as the generator sends it: status, headers (as sent, minus per-connection ones) and body. */
function fetchOnce(port: number): Promise<{ status: number; headers: OutgoingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: LIST_URL_PATH, headers: { accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: OutgoingHttpHeaders = {};
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = res.rawHeaders[i]!;
            if (/^(date|connection|keep-alive|transfer-encoding)$/i.test(name)) continue;
            headers[name] = res.rawHeaders[i + 1]!;
          }
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface TargetFigures {
  readonly rate: number;
  readonly rounds: number[];
  readonly cpu: number | null;
  readonly generatorCpu: number;
  readonly ok: number;
  readonly other: number;
  readonly errors: number;
  readonly bytesPerSec: number;
}

type TargetName = 'ours' | 'limit';

async function throughput(
  quick: boolean,
  progress: Progress,
): Promise<{ figures: Record<TargetName, TargetFigures>; bodyBytes: number; headers: OutgoingHttpHeaders }> {
  const registry = await listRegistry();
  const service = new ListService({ registry, pools: ['live'] });
  const listener = await service.listen({ host: '127.0.0.1', port: 0 });
  const reference = await fetchOnce(listener.port);
  if (reference.status !== 200)
    throw new Error(`list service answered ${reference.status}: ${reference.body.toString()}`);
  const plain = createServer((req, res) => {
    if (req.url === LIST_URL_PATH) {
      res.writeHead(200, reference.headers);
      res.end(reference.body);
    } else {
      res.writeHead(404, { 'Content-Length': '0' });
      res.end();
    }
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', () => r()));
  const plainPort = (plain.address() as AddressInfo).port;
  const check = await fetchOnce(plainPort);
  if (!check.body.equals(reference.body)) throw new Error('the plain server does not send the same bytes');

  const gen = await generator();
  try {
    const targets: { name: TargetName; port: number }[] = [
      { name: 'ours', port: listener.port },
      { name: 'limit', port: plainPort },
    ];
    const rounds = quick ? 3 : 5;
    const ms = quick ? 1000 : 3000;
    const job = (port: number, windowMs: number): LoadJob => ({
      port,
      path: LIST_URL_PATH,
      ms: windowMs,
      warmupMs: 200,
      connections: CONNECTIONS,
      pipeline: PIPELINE,
      pid: process.pid,
    });
    for (const t of targets) {
      progress.tick(`warm-up ${t.name}`);
      await gen.drive(job(t.port, quick ? 500 : 1500));
    }
    const results = new Map<TargetName, LoadResult[]>(targets.map((t) => [t.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(k + r) % targets.length]!;
        progress.tick(`round ${r + 1}/${rounds} ${t.name}`);
        results.get(t.name)!.push(await gen.drive(job(t.port, ms)));
      }
    }
    const figures = {} as Record<TargetName, TargetFigures>;
    for (const [name, jobs] of results) {
      const cpus = jobs.map((j) => j.targetCpu).filter((c): c is number => c !== null);
      const total = (f: (j: LoadResult) => number) => jobs.reduce((n, j) => n + f(j), 0);
      figures[name] = {
        rate: median(jobs.map((j) => j.rate)),
        rounds: jobs.map((j) => Math.round(j.rate)),
        cpu: cpus.length === jobs.length ? round2(median(cpus)) : null,
        generatorCpu: round2(median(jobs.map((j) => j.cpu))),
        ok: total((j) => j.ok),
        other: total((j) => j.other),
        errors: total((j) => j.errors),
        bytesPerSec: Math.round(median(jobs.map((j) => j.bytesPerSec))),
      };
    }
    return { figures, bodyBytes: reference.body.length, headers: reference.headers };
  } finally {
    await gen.close();
    await new Promise<void>((r) => {
      plain.close(() => r());
      plain.closeAllConnections();
    });
    await service.close();
    await registry.close();
  }
}

// ---- 3. failover ----------------------------------------------------------------------------

interface Live {
  server: StreamServer;
  ticker: TickerFeed;
}

async function startStream(serverId: string, port: number): Promise<Live> {
  const server = await StreamServer.listen({ host: '127.0.0.1', port, serverId });
  const ticker = new TickerFeed({ server, intervalMs: TICK_MS }).start();
  return { server, ticker };
}

interface FailoverFigures {
  readonly times: number[];
  /** From the kill to `reconnected` (the new server's welcome), each kill. */
  readonly welcomes: number[];
  readonly gaps: number;
  readonly reconnects: number;
}

async function failover(kills: number, progress: Progress): Promise<FailoverFigures> {
  const ids = ['stream-1', 'stream-2', 'stream-3'];
  const live = new Map<string, Live>();
  for (const id of ids) live.set(id, await startStream(id, 0));
  const ports = new Map(ids.map((id) => [id, live.get(id)!.server.address!.port] as const));
  const registry = new MemoryRegistry();
  for (const id of ids) {
    await registry.register(
      makeMember({
        id,
        pool: 'live',
        addresses: ['127.0.0.1'],
        ports: { stream: ports.get(id)! },
        labels: { capacity: '100' },
      }),
    );
    await registry.report(id, { ...emptyLoad(Date.now()), users: 0 });
  }
  const service = new ListService({ registry, pools: ['live'] });
  const listener = await service.listen({ host: '127.0.0.1', port: 0 });
  const client = connectStream({ listUrls: [`${listener.url}${LIST_URL_PATH}`] });
  let gaps = 0;
  client.on('gap', () => {
    gaps++;
  });
  client.on('error', () => {}); // expected while a server is down (refused connection)
  client.subscribe('ticker.USHR');
  const times: number[] = [];
  const welcomes: number[] = [];
  // Kills at a random phase of the tick (seeded), so the wait for the next tick is not always the same.
  const phase = seededRandom(0x11575);
  const waitFor = <T>(what: string, until: (resolve: (v: T) => void) => () => void, ms = 10_000) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`failover: timed out waiting for ${what}`));
      }, ms);
      const off = until((v) => {
        clearTimeout(timer);
        off();
        resolve(v);
      });
    });
  try {
    // Connected, with data flowing.
    await waitFor<void>('the first data', (done) => {
      const on = () => done();
      client.on('data', on);
      return () => client.off('data', on);
    });
    for (let k = 0; k < kills; k++) {
      progress.tick(`kill ${k + 1}/${kills}`);
      const victim = client.server?.id;
      if (victim === undefined) throw new Error('failover: the client is not connected');
      let t0 = 0;
      const reconnected = waitFor<number>('reconnected', (done) => {
        const on = () => done(performance.now() - t0);
        client.on('reconnected', on);
        return () => client.off('reconnected', on);
      });
      const firstData = waitFor<number>('data from the new server', (done) => {
        const on = () => {
          const now = client.server?.id;
          if (t0 > 0 && now !== undefined && now !== victim) done(performance.now() - t0);
        };
        client.on('data', on);
        return () => client.off('data', on);
      });
      const dead = live.get(victim)!;
      t0 = performance.now();
      dead.ticker.stop();
      await dead.server.close({ terminate: true });
      times.push(await firstData);
      welcomes.push(await reconnected);
      // Restart the victim on its port (it never left the list), and let the client settle.
      live.set(victim, await startStream(victim, ports.get(victim)!));
      await new Promise((r) => setTimeout(r, 300 + phase() * TICK_MS));
    }
  } finally {
    client.close();
    await listener.close();
    await service.close();
    for (const l of live.values()) {
      l.ticker.stop();
      await l.server.close();
    }
    await registry.close();
  }
  return { times, welcomes, gaps, reconnects: client.stats().reconnects };
}

// ---- report ---------------------------------------------------------------------------------

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const quick = options.quick;
  const kills = quick ? 5 : 20;
  const rounds = quick ? 3 : 5;
  const seeds = quick ? 3 : 9;
  const simRuns = SIM_POLICIES.length * STALENESS_SEC.length * seeds;
  const progress = new Progress('list', 2 * (1 + rounds) + simRuns + kills);

  const { figures: t, bodyBytes, headers } = await throughput(quick, progress);
  const simulation = simulationTable(seeds, (what) => progress.tick(`simulation ${what}`));
  const f = await failover(kills, progress);
  progress.done();

  const limit = t.limit.rate;
  console.log(
    `\nlist: GET ${LIST_URL_PATH} per second, one server process (${CAPACITIES.length} members, ${bodyBytes}-byte JSON body; ` +
      `generator: ${CONNECTIONS} keep-alive connections × ${PIPELINE} pipelined, own process${quick ? '; quick' : ''})\n`,
  );
  const cpu = (c: number | null) => (c === null ? '?' : c.toFixed(2));
  printTable(
    ['server', 'requests/s', 'vs limit', 'server CPU', 'generator CPU'],
    [
      [
        'usher ListService',
        formatRate(t.ours.rate),
        (t.ours.rate / limit).toFixed(2),
        cpu(t.ours.cpu),
        cpu(t.ours.generatorCpu),
      ],
      [`${LIMIT} (limit)`, formatRate(limit), '1.00', cpu(t.limit.cpu), cpu(t.limit.generatorCpu)],
    ],
  );
  console.log(
    `\nsimulation: utilisation max/mean across servers of capacities ${CAPACITIES.join(', ')} (1 = even), 10,000 clients at 1,000/s, ` +
      `median of ${seeds} seeds; "worst" = worst after any arrival past the first 1,000\n`,
  );
  printSimulation(simulation);
  const failMedian = median(f.times);
  const failP99 = percentile(f.times, 99);
  console.log(
    `\nfailover (server terminated → first data from the new server; ticks every ${TICK_MS} ms): ` +
      `median ${failMedian.toFixed(0)} ms, p99 ${failP99.toFixed(0)} ms over ${f.times.length} kills ` +
      `(goal p99 ≤ 2000 ms); kill → new server's welcome median ${median(f.welcomes).toFixed(0)} ms, p99 ${percentile(f.welcomes, 99).toFixed(0)} ms; gaps ${f.gaps}`,
  );

  const result = makeResult({
    name: 'list',
    metric: `list service requests per second (GET ${LIST_URL_PATH}, ${CAPACITIES.length} members, JSON)`,
    unit: 'requests/s',
    higherIsBetter: true,
    ours: Math.round(t.ours.rate),
    peers: {},
    limit: { [LIMIT]: Math.round(limit) },
    quick,
    details: {
      throughput: {
        setup:
          `both servers in the bench process, one loaded at a time; generator (bench/fixtures/list-load.ts) in a child process: ` +
          `${CONNECTIONS} keep-alive HTTP/1.1 connections over raw sockets, ${PIPELINE} pipelined requests in flight on each, ` +
          `Accept: application/json; ${LIMIT}: node:http answering with the ListService's bytes and headers`,
        bodyBytes,
        headers,
        rounds: { ours: t.ours.rounds, [LIMIT]: t.limit.rounds },
        cpuCores: {
          ours: t.ours.cpu,
          [LIMIT]: t.limit.cpu,
          generator: { ours: t.ours.generatorCpu, [LIMIT]: t.limit.generatorCpu },
        },
        checks: {
          ours: { ok: t.ours.ok, other: t.ours.other, errors: t.ours.errors },
          [LIMIT]: { ok: t.limit.ok, other: t.limit.other, errors: t.limit.errors },
        },
        bytesPerSec: { ours: t.ours.bytesPerSec, [LIMIT]: t.limit.bytesPerSec },
      },
      simulation: {
        setup: `10,000 clients at 1,000/s, each staying; list snapshots every 0.1 s, a client uses the one at or before now − stale; capacities ${CAPACITIES.join(', ')}; median of ${seeds} seeds (bench/list-sim.ts)`,
        metric:
          'max/mean of users_i / capacity_i across servers, at the end and the worst after any arrival past the first 1,000',
        policies: SIM_POLICY_NOTES,
        rows: simulation,
      },
      failoverMs: {
        median: Math.round(failMedian),
        p99: Math.round(failP99),
        goalP99: 2000,
        samples: f.times.map((x) => Math.round(x)),
        killToWelcomeMs: f.welcomes.map((x) => Math.round(x)),
        gaps: f.gaps,
        reconnects: f.reconnects,
      },
      failoverSetup: `3 StreamServers in this process, each with a TickerFeed (ticks every ${TICK_MS} ms); a ListService listing them (all up throughout); connectStream with default options subscribed to ticker.USHR; the server it is on closed with terminate (no close frame) at a random phase of the tick, and restarted on its port after each kill; the first data is the next tick (or a replay of missed ones), so the figure includes the wait for it (up to ${TICK_MS} ms)`,
    },
  });
  const path = await writeResult(result);
  console.log(`\nwrote ${path}`);
  return result;
}
