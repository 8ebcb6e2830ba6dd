/**
 * bench/probe.ts — seed 000's assigner.
 *  1. Assignments per second of one assigner process (`usher run`, answer mode: the assigner
 *     answers each padded PROBE with a PROBE_RESPONSE and sends the member a NOTIFY), against
 *     the limit: a plain Node UDP echo process answering the same datagrams, in the same run,
 *     alternating rounds. The same load generator drives both (a window of probes in flight on
 *     several sockets, lost datagrams replaced after 200 ms).
 *  2. Failover time: a client (the SDK, heartbeat 200 ms × 3 misses) whose member process is
 *     killed with SIGKILL, from the kill to `reassigned`; median and p99 over 20 kills (5 quick).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../src/client/node.js';
import { encode } from '../src/probe/codec.js';
import { PADDED_REQUEST_BYTES } from '../src/probe/messages.js';
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

function start(args: string[]): Proc {
  const child = spawn(NODE, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
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

/** Drives request/answer datagrams at `port` for `ms`; returns answers per second. */
async function drive(port: number, ms: number, sockets = 4, window = 32): Promise<number> {
  const socks: Socket[] = [];
  let answered = 0;
  let requestId = 1;
  const pending: Array<Map<number, number>> = [];
  const send = (i: number) => {
    const id = requestId++ >>> 0;
    pending[i]!.set(id, Date.now());
    socks[i]!.send(
      encode({ kind: 'PROBE', requestId: id, app: 'game', padTo: PADDED_REQUEST_BYTES }),
      port,
      '127.0.0.1',
    );
  };
  for (let i = 0; i < sockets; i++) {
    const s = createSocket('udp4');
    pending.push(new Map());
    s.on('message', (msg) => {
      // Both the echo and a PROBE_RESPONSE carry our request id at offset 8.
      if (msg.length < 12) return;
      const id = msg.readUInt32BE(8);
      if (!pending[i]!.delete(id)) return;
      answered += 1;
      send(i);
    });
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
    socks.push(s);
  }
  const refill = setInterval(() => {
    const now = Date.now();
    for (let i = 0; i < sockets; i++) {
      for (const [id, at] of pending[i]!) if (now - at > 200) pending[i]!.delete(id);
      while (pending[i]!.size < window) send(i);
    }
  }, 20);
  for (let i = 0; i < sockets; i++) for (let w = 0; w < window; w++) send(i);
  await new Promise((r) => setTimeout(r, 300)); // warm-up
  const from = answered;
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, ms));
  const rate = ((answered - from) * 1e9) / Number(process.hrtime.bigint() - t0);
  clearInterval(refill);
  for (const s of socks) s.close();
  return rate;
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

async function throughput(
  quick: boolean,
  progress: Progress,
): Promise<{ ours: number; echo: number; rounds: number[][] }> {
  const dir = mkdtempSync(join(tmpdir(), 'usher-bench-probe-'));
  const sink = start(['--import', 'tsx', 'bench/fixtures/udp-sink.ts', '3']);
  const echo = start(['--import', 'tsx', 'bench/fixtures/udp-echo.ts']);
  const [, portsText] = await sink.waitFor(/ports ([\d,]+)/);
  const [, echoPort] = await echo.waitFor(/port (\d+)/);
  const [assignerPort] = await freePorts(1);
  const members = portsText!.split(',').map((p, i) => `      - { id: m${i + 1}, port: ${p} }`);
  const config = usherConfig(
    dir,
    `log: { level: warn, format: json }
pools:
  game:
    policy: { name: round-robin }
    health: { kind: none }
    members:
${members.join('\n')}
assigner:
  port: ${assignerPort}
  mode: answer
  apps: { game: { pool: game } }
  rateLimit: { perSecond: 1000000, burst: 1000000 }
`,
  );
  const usher = start(['bin/usher.js', 'run', config]);
  await usher.waitFor(/running/);
  const rounds = quick ? 3 : 5;
  const ms = quick ? 1000 : 3000;
  const ours: number[] = [];
  const limit: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      progress.tick(`round ${r + 1}/${rounds} echo`);
      limit.push(await drive(Number(echoPort), ms));
      progress.tick(`round ${r + 1}/${rounds} assigner`);
      ours.push(await drive(assignerPort!, ms));
    }
  } finally {
    await usher.kill();
    await echo.kill();
    await sink.kill();
  }
  return { ours: median(ours), echo: median(limit), rounds: [ours, limit] };
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
  const progress = new Progress('probe', rounds * 2 + kills);
  const t = await throughput(options.quick, progress);
  const times = await failover(kills, progress);
  progress.done();

  const failoverMedian = median(times);
  const failoverP99 = percentile(times, 99);
  console.log(
    `\nprobe: assignments per second of one assigner process (answer mode)${options.quick ? ', quick' : ''}\n`,
  );
  printTable(
    ['what', 'per second', 'vs echo'],
    [
      ['usher assigner (PROBE → PROBE_RESPONSE + NOTIFY)', formatRate(t.ours), (t.ours / t.echo).toFixed(2)],
      ['plain Node UDP echo (limit)', formatRate(t.echo), '1.00'],
    ],
  );
  console.log(
    `\nfailover (kill -9 → reassigned, heartbeat 200 ms × 3): median ${failoverMedian.toFixed(0)} ms, p99 ${failoverP99.toFixed(0)} ms over ${times.length} kills`,
  );
  const result = makeResult({
    name: 'probe',
    metric: 'assignments per second of one assigner process (answer mode, padded probes)',
    unit: 'assignments/s',
    higherIsBetter: true,
    ours: Math.round(t.ours),
    peers: {},
    limit: { 'node-udp-echo': Math.round(t.echo) },
    quick: options.quick,
    details: {
      rounds: { assigner: t.rounds[0], echo: t.rounds[1] },
      failoverMs: { median: failoverMedian, p99: failoverP99, samples: times.map((x) => Math.round(x)) },
      failoverSetup: 'heartbeat 200 ms, 3 misses, UDP health checks every 100 ms, forward mode, 3 members',
    },
  });
  const path = await writeResult(result);
  console.log(`\nwrote ${path}`);
  return result;
}
