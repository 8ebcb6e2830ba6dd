/**
 * bench/probe.ts — seed 000's assigner.
 *  1. Assignments per second of one assigner process (`usher run`), against limits measured in
 *     the same run, alternating rounds (the order rotating), after an unmeasured warm-up of each:
 *     - answer mode (the headline): each padded PROBE gets a PROBE_RESPONSE, and the member a NOTIFY
 *       (NOTIFYs made in one event-loop turn leave as one NOTIFY_BATCH per member, replies.ts);
 *     - forward mode (in `details`): each PROBE goes on to the member as FORWARD, and the member
 *       answers the client;
 *     - the limits: a plain Node UDP echo process (one datagram back per datagram, the issue's
 *       reference), and the same echo that first sends a NOTIFY-sized copy to the members in
 *       turn: the datagrams of answer mode without batching and without any of its work (the
 *       ceiling answer mode had before NOTIFYs were batched).
 *  2. Failover time: a client (the SDK, heartbeat 200 ms × 3 misses) whose member process is
 *     killed with SIGKILL, from the kill to `reassigned`; median and p99 over 20 kills (5 quick).
 *
 * How the throughput is measured, and why:
 * - The load generator (bench/fixtures/udp-load.ts: 4 client sockets × 32 probes in flight,
 *   lost ones replaced after 200 ms) runs in its own process, not in this one (whose timers and
 *   child output would take its CPU), and also hosts the three members the assigner sends to. So
 *   every case runs the same two busy processes on the machine, the generator and the process
 *   under test, as the echo does; members in a third process made every case slower by
 *   scheduling, not by work. The members count what they get: a round whose NOTIFY or FORWARD
 *   count falls short of its answers would show it.
 * - The generator reports the CPU time of the process under test over each measured window (from
 *   /proc), so the table shows whether it was saturated (1.00 = one core).
 * - Answer mode is the headline: it is the assigner's heavier mode (two datagrams and two
 *   messages per probe), the one clients behind address-and-port-filtering NATs (Linux
 *   masquerading) need, and the one where the assigner is the bottleneck. In forward mode the
 *   generator also carries the members' answers (two datagrams received and two sent per probe,
 *   against one each for the echo), and it saturates first: that figure is a floor for the
 *   assigner, its CPU column says how far.
 * - `usher run` runs the TypeScript sources through tsx when there is no dist/ (a checkout), as
 *   here: a little slower than the compiled build (tsx keeps function names with a helper call
 *   per closure created).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../src/client/node.js';
import type { JobResult } from './fixtures/udp-load.js';
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
const NODE = process.execPath;

interface Proc {
  child: ChildProcess;
  output: string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

function start(args: string[], ipc = false): Proc {
  const child = spawn(NODE, args, {
    cwd: ROOT,
    stdio: ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  const p: Proc = {
    child,
    output: '',
    async waitFor(re, timeoutMs = 20000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = p.output.match(re);
        if (m) return m;
        if (child.exitCode !== null) throw new Error(`process exited: ${args.join(' ')}\n${p.output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}\n${p.output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await done;
    },
  };
  child.stdout!.on('data', (d) => {
    p.output += d;
  });
  child.stderr!.on('data', (d) => {
    p.output += d;
  });
  return p;
}

async function freePorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, () => {
      const s = createSocket('udp4');
      return new Promise<Socket>((r) => s.bind(0, '127.0.0.1', () => r(s)));
    }),
  );
  const ports = socks.map((s) => s.address().port);
  for (const s of socks) s.close();
  return ports;
}

function usherConfig(dir: string, body: string): string {
  const path = join(dir, `usher-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, body);
  return path;
}

/** The load generator (bench/fixtures/udp-load.ts): its own process, driven over IPC. */
interface Generator {
  readonly proc: Proc;
  members(n: number): Promise<number[]>;
  drive(port: number, ms: number, pid: number | undefined): Promise<JobResult>;
}

async function generator(): Promise<Generator> {
  const proc = start(['--import', 'tsx', 'bench/fixtures/udp-load.ts'], true);
  await proc.waitFor(/ready/);
  const ask = <T>(message: object): Promise<T> =>
    new Promise((resolve, reject) => {
      proc.child.once('message', (reply: T | { error: string }) =>
        reply && typeof reply === 'object' && 'error' in reply
          ? reject(new Error(reply.error))
          : resolve(reply as T),
      );
      proc.child.send(message);
    });
  return {
    proc,
    members: async (n) => (await ask<{ ports: number[] }>({ members: n })).ports,
    drive: (port, ms, pid) => ask<JobResult>({ port, ms, warmupMs: 300, pid }),
  };
}

function assignerConfig(dir: string, mode: 'answer' | 'forward', port: number, members: number[]): string {
  return usherConfig(
    dir,
    `log: { level: warn, format: json }
pools:
  game:
    policy: { name: round-robin }
    health: { kind: none }
    members:
${members.map((p, i) => `      - { id: m${i + 1}, port: ${p} }`).join('\n')}
assigner:
  port: ${port}
  mode: ${mode}
  apps: { game: { pool: game } }
  rateLimit: { perSecond: 1000000, burst: 1000000 }
`,
  );
}

/** What one target did over the rounds. */
interface TargetFigures {
  /** Median answers per second. */
  readonly rate: number;
  readonly rounds: number[];
  /** Median CPU of the process under test and of the load generator, in cores (null: unknown). */
  readonly cpu: number | null;
  readonly generatorCpu: number;
  /** Over all rounds: NOTIFY and FORWARD the members got, probes lost. */
  readonly notified: number;
  readonly forwarded: number;
  readonly answered: number;
  readonly lost: number;
}

type TargetName = 'answer' | 'forward' | 'echo' | 'echo-copy';

async function throughput(quick: boolean, progress: Progress): Promise<Record<TargetName, TargetFigures>> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-bench-probe-'));
  const gen = await generator();
  const procs: Proc[] = [gen.proc];
  try {
    const members = await gen.members(3);
    const echo = start(['--import', 'tsx', 'bench/fixtures/udp-echo.ts']);
    const echoCopy = start(['--import', 'tsx', 'bench/fixtures/udp-echo.ts', members.join(',')]);
    procs.push(echo, echoCopy);
    const [answerPort, forwardPort] = await freePorts(2);
    const answer = start(['bin/usher.js', 'run', assignerConfig(dir, 'answer', answerPort!, members)]);
    const forward = start(['bin/usher.js', 'run', assignerConfig(dir, 'forward', forwardPort!, members)]);
    procs.push(answer, forward);
    const targets: { name: TargetName; proc: Proc; port: number }[] = [
      { name: 'answer', proc: answer, port: answerPort! },
      { name: 'forward', proc: forward, port: forwardPort! },
      { name: 'echo', proc: echo, port: Number((await echo.waitFor(/port (\d+)/))[1]) },
      { name: 'echo-copy', proc: echoCopy, port: Number((await echoCopy.waitFor(/port (\d+)/))[1]) },
    ];
    await answer.waitFor(/running/);
    await forward.waitFor(/running/);

    const rounds = quick ? 3 : 5;
    const ms = quick ? 1000 : 3000;
    // Warm-up: every target once, unmeasured (JIT, pools, caches).
    for (const t of targets) {
      progress.tick(`warm-up ${t.name}`);
      await gen.drive(t.port, 1000, t.proc.child.pid);
    }
    const results = new Map<TargetName, JobResult[]>(targets.map((t) => [t.name, []]));
    for (let r = 0; r < rounds; r++) {
      // Alternating, the order rotating each round so that none always runs first.
      for (let k = 0; k < targets.length; k++) {
        const t = targets[(k + r) % targets.length]!;
        progress.tick(`round ${r + 1}/${rounds} ${t.name}`);
        results.get(t.name)!.push(await gen.drive(t.port, ms, t.proc.child.pid));
      }
    }
    const figures = {} as Record<TargetName, TargetFigures>;
    for (const [name, jobs] of results) {
      const cpus = jobs.map((j) => j.targetCpu).filter((c): c is number => c !== null);
      const total = (f: (j: JobResult) => number) => jobs.reduce((n, j) => n + f(j), 0);
      figures[name] = {
        rate: median(jobs.map((j) => j.rate)),
        rounds: jobs.map((j) => Math.round(j.rate)),
        cpu: cpus.length === jobs.length ? round2(median(cpus)) : null,
        generatorCpu: round2(median(jobs.map((j) => j.cpu))),
        notified: total((j) => j.notified),
        forwarded: total((j) => j.forwarded),
        answered: total((j) => j.answered),
        lost: total((j) => j.lost),
      };
    }
    return figures;
  } finally {
    for (const p of procs.reverse()) await p.kill();
  }
}

function round2(n: number): number {
  return Math.round(n * 100) / 100;
}

async function failover(kills: number, progress: Progress): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-bench-failover-'));
  const ports = await freePorts(4);
  const memberPorts = ports.slice(0, 3);
  const assignerPort = ports[3]!;
  const startMember = (i: number) =>
    start([
      '--import',
      'tsx',
      'examples/game-world.ts',
      '--port',
      String(memberPorts[i]),
      '--id',
      `m${i + 1}`,
      '--incarnations',
      'world-1',
    ]);
  const members = memberPorts.map((_, i) => startMember(i));
  for (const m of members) await m.waitFor(/listening/);
  const config = usherConfig(
    dir,
    `log: { level: warn, format: json }
pools:
  game:
    policy: { name: round-robin }
    health: { kind: udp, app: game, intervalMs: 100, timeoutMs: 100, fall: 1, downAfter: 1, rise: 1, flapPenalty: 0 }
    members:
${memberPorts.map((p, i) => `      - { id: m${i + 1}, port: ${p} }`).join('\n')}
assigner:
  port: ${assignerPort}
  mode: forward
  apps: { game: { pool: game } }
  rateLimit: { perSecond: 100000, burst: 100000 }
`,
  );
  const usher = start(['bin/usher.js', 'run', config]);
  await usher.waitFor(/running/);
  const client = await connect({
    balancer: `127.0.0.1:${assignerPort}`,
    app: 'game',
    heartbeatMs: 200,
    misses: 3,
    probeTimeoutMs: 200,
    backoff: { baseMs: 20, maxMs: 200 },
  });
  const times: number[] = [];
  try {
    for (let k = 0; k < kills; k++) {
      progress.tick(`kill ${k + 1}/${kills}`);
      const victim = Number(client.assignment.member.slice(1)) - 1;
      const reassigned = new Promise<void>((r) => client.once('reassigned', () => r()));
      const t0 = performance.now();
      await members[victim]!.kill('SIGKILL');
      await reassigned;
      times.push(performance.now() - t0);
      members[victim] = startMember(victim);
      await members[victim]!.waitFor(/listening/);
      // Let the health checks see it up again before the next kill.
      await new Promise((r) => setTimeout(r, 400));
    }
  } finally {
    await client.close();
    await usher.kill();
    for (const m of members) await m.kill();
  }
  return times;
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

export async function run(options: BenchOptions): Promise<BenchResult> {
  const kills = options.quick ? 5 : 20;
  const rounds = options.quick ? 3 : 5;
  const cases = 4;
  const progress = new Progress('probe', cases * (1 + rounds) + kills);
  const t = await throughput(options.quick, progress);
  const times = await failover(kills, progress);
  progress.done();

  const failoverMedian = median(times);
  const failoverP99 = percentile(times, 99);
  const echo = t.echo.rate;
  console.log(
    `\nprobe: assignments per second of one assigner process${options.quick ? ', quick' : ''} (CPU in cores, over the measured windows)\n`,
  );
  const cpu = (c: number | null) => (c === null ? '?' : c.toFixed(2));
  const row = (what: string, f: TargetFigures) => [
    what,
    formatRate(f.rate),
    (f.rate / echo).toFixed(2),
    cpu(f.cpu),
    cpu(f.generatorCpu),
  ];
  printTable(
    ['what', 'per second', 'vs echo', 'CPU', 'generator CPU'],
    [
      row('usher assigner, answer mode (PROBE → NOTIFY + PROBE_RESPONSE)', t.answer),
      row('usher assigner, forward mode (PROBE → FORWARD; member answers)', t.forward),
      row('plain Node UDP echo (limit)', t.echo),
      row('Node UDP echo + copy to a member (two sends per request)', t['echo-copy']),
    ],
  );
  console.log(
    `\nanswer mode vs echo + copy: ${(t.answer.rate / t['echo-copy'].rate).toFixed(2)}; members got ${t.answer.notified} NOTIFY for ${t.answer.answered} answers, ${t.forward.forwarded} FORWARD for ${t.forward.answered} answers`,
  );
  console.log(
    `\nfailover (kill -9 → reassigned, heartbeat 200 ms × 3): median ${failoverMedian.toFixed(0)} ms, p99 ${failoverP99.toFixed(0)} ms over ${times.length} kills`,
  );
  const result = makeResult({
    name: 'probe',
    metric: 'assignments per second of one assigner process (answer mode, padded probes)',
    unit: 'assignments/s',
    higherIsBetter: true,
    ours: Math.round(t.answer.rate),
    peers: {},
    limit: { 'node-udp-echo': Math.round(echo), 'node-udp-echo-and-copy': Math.round(t['echo-copy'].rate) },
    quick: options.quick,
    details: {
      forwardMode: {
        assignmentsPerSecond: Math.round(t.forward.rate),
        ratioToEcho: round2(t.forward.rate / echo),
        note: 'the member answers the client; the generator (clients and members) saturates first',
      },
      rounds: {
        answer: t.answer.rounds,
        forward: t.forward.rounds,
        echo: t.echo.rounds,
        echoCopy: t['echo-copy'].rounds,
      },
      cpuCores: {
        answer: t.answer.cpu,
        forward: t.forward.cpu,
        echo: t.echo.cpu,
        echoCopy: t['echo-copy'].cpu,
        generator: {
          answer: t.answer.generatorCpu,
          forward: t.forward.generatorCpu,
          echo: t.echo.generatorCpu,
          echoCopy: t['echo-copy'].generatorCpu,
        },
      },
      checks: {
        answer: { answered: t.answer.answered, notified: t.answer.notified, lost: t.answer.lost },
        forward: { answered: t.forward.answered, forwarded: t.forward.forwarded, lost: t.forward.lost },
      },
      setup:
        'load generator in its own process (4 sockets × 32 padded probes in flight) hosting the 3 members; round robin; rate limit 1e6/s; assigner run by `usher run` (tsx)',
      failoverMs: { median: failoverMedian, p99: failoverP99, samples: times.map((x) => Math.round(x)) },
      failoverSetup: 'heartbeat 200 ms, 3 misses, UDP health checks every 100 ms, forward mode, 3 members',
    },
  });
  const path = await writeResult(result);
  console.log(`\nwrote ${path}`);
  return result;
}
