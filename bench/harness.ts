/**
 * What every benchmark shares: timing with warm-up and alternating rounds (medians), a progress
 * counter on stderr, `--quick`, a small table on stdout, and `bench/results/<name>.json` in the
 * format of CONVENTIONS.md ("Benchmarks").
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const RESULTS_DIR = join(BENCH_DIR, 'results');

/** What `bench/run.ts` passes to a benchmark's `run`. */
export interface BenchOptions {
  /** A short run (under a minute) for CI and quick checks. */
  readonly quick: boolean;
  /** Arguments after the benchmark name, `--quick` removed. */
  readonly argv: readonly string[];
}

/** A benchmark module: `bench/<name>.ts` exports `run`. */
export type BenchRun = (options: BenchOptions) => Promise<BenchResult | undefined>;

/** How long to measure. */
export interface Timing {
  /** Per case, before measuring: runs until this much time has passed (and finds the batch size). */
  readonly warmupMs: number;
  /** Length of one measured round of one case. */
  readonly roundMs: number;
  /** Rounds per case; cases alternate round by round, and the median round counts. */
  readonly rounds: number;
}

export function timingFor(quick: boolean): Timing {
  return quick ? { warmupMs: 100, roundMs: 150, rounds: 3 } : { warmupMs: 300, roundMs: 400, rounds: 5 };
}

/** One operation to time. `fn(n)` performs it n times and returns something (kept, so it is not optimised away). */
export interface Case {
  readonly name: string;
  readonly fn: (iterations: number) => unknown;
}

export interface CaseResult {
  readonly name: string;
  /** Median of the rounds, operations per second. */
  readonly opsPerSec: number;
  /** Operations per second of each round, in order. */
  readonly rounds: readonly number[];
}

let sink: unknown;
/** The last value an operation returned (read it so the work cannot be optimised away). */
export function blackhole(): unknown {
  return sink;
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Warms a case up and returns a batch size that takes about 2 ms. */
function warmUp(c: Case, warmupMs: number): number {
  let batch = 1;
  const end = now() + warmupMs;
  for (;;) {
    const t0 = now();
    sink = c.fn(batch);
    const took = now() - t0;
    if (took < 2 && batch < 1 << 30) batch *= 2;
    if (now() >= end && took >= 1) return batch;
    if (now() >= end + 5 * warmupMs) return batch; // a very slow operation: take what we have
  }
}

function round(c: Case, batch: number, roundMs: number): number {
  let ops = 0;
  const t0 = now();
  let elapsed = 0;
  do {
    sink = c.fn(batch);
    ops += batch;
    elapsed = now() - t0;
  } while (elapsed < roundMs);
  return (ops * 1000) / elapsed;
}

/**
 * Times the cases against each other on the same machine in the same run: each is warmed up,
 * then the cases take turns round by round (the order rotating each round, so none always runs
 * first), and each case's figure is the median of its rounds.
 */
export function measure(cases: readonly Case[], timing: Timing, progress?: Progress): CaseResult[] {
  const batches = cases.map((c) => {
    const b = warmUp(c, timing.warmupMs);
    progress?.tick(`warm-up ${c.name}`);
    return b;
  });
  const perRound: number[][] = cases.map(() => []);
  for (let r = 0; r < timing.rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const i = (k + r) % cases.length;
      perRound[i]!.push(round(cases[i]!, batches[i]!, timing.roundMs));
      progress?.tick(`round ${r + 1}/${timing.rounds} ${cases[i]!.name}`);
    }
  }
  return cases.map((c, i) => ({ name: c.name, opsPerSec: median(perRound[i]!), rounds: perRound[i]! }));
}

/** Steps a case list needs in `measure` (for the progress total). */
export function stepsFor(cases: number, timing: Timing): number {
  return cases * (1 + timing.rounds);
}

/** A counter on stderr: rewritten in place on a terminal, a line every 10% otherwise. */
export class Progress {
  readonly #label: string;
  readonly #total: number;
  #done = 0;
  #lastTenth = -1;
  readonly #tty = process.stderr.isTTY === true;

  constructor(label: string, total: number) {
    this.#label = label;
    this.#total = Math.max(1, total);
  }

  tick(what = ''): void {
    this.#done = Math.min(this.#total, this.#done + 1);
    const percent = Math.floor((this.#done * 100) / this.#total);
    const line = `[${this.#label}] ${this.#done}/${this.#total} (${percent}%) ${what}`;
    if (this.#tty) {
      process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 100) - 1)}`);
    } else if (Math.floor(percent / 10) > this.#lastTenth) {
      this.#lastTenth = Math.floor(percent / 10);
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.#tty) process.stderr.write('\r\x1b[K');
  }
}

/** `12.3M`, `456k`, `789` */
export function formatRate(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** Prints rows under headers, columns aligned (first column left, the rest right). */
export function printTable(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): void {
  const cells = [headers, ...rows].map((row) => row.map(String));
  const widths = headers.map((_, c) => Math.max(...cells.map((row) => row[c]?.length ?? 0)));
  const line = (row: readonly string[]) =>
    row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  console.log(line(cells[0]!));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells.slice(1)) console.log(line(row));
}

export interface HostInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly node: string;
}

export function hostInfo(): HostInfo {
  const list = cpus();
  return { cpu: list[0]?.model.trim() ?? 'unknown', cores: availableParallelism(), node: process.version };
}

/** The file every benchmark writes (CONVENTIONS.md); extra fields (`details`, ...) may sit beside these. */
export interface BenchResult {
  readonly name: string;
  readonly metric: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  readonly ours: number;
  readonly peers: Readonly<Record<string, number>>;
  readonly limit: Readonly<Record<string, number>> | null;
  /** ours / figure, for every peer and limit. */
  readonly ratios: Readonly<Record<string, number>>;
  /** ISO 8601. */
  readonly date: string;
  readonly host: HostInfo;
  readonly [extra: string]: unknown;
}

/** The fields a benchmark supplies; `makeResult` adds ratios, date and host. */
export interface ResultFields {
  readonly name: string;
  readonly metric: string;
  readonly unit: string;
  readonly higherIsBetter: boolean;
  readonly ours: number;
  readonly peers: Readonly<Record<string, number>>;
  readonly limit: Readonly<Record<string, number>> | null;
  /** Anything else to keep beside the required fields (`details`, `quick`, ...). */
  readonly [extra: string]: unknown;
}

/** Completes a result: ratios (ours / each peer and limit), date and host. */
export function makeResult(fields: ResultFields): BenchResult {
  const ratios: Record<string, number> = {};
  for (const [k, v] of Object.entries(fields.peers)) ratios[k] = fields.ours / v;
  for (const [k, v] of Object.entries(fields.limit ?? {})) ratios[k] = fields.ours / v;
  const { name, metric, unit, higherIsBetter, ours, peers, limit, ...extra } = fields;
  return {
    name,
    metric,
    unit,
    higherIsBetter,
    ours,
    peers,
    limit,
    ratios,
    date: new Date().toISOString(),
    host: hostInfo(),
    ...extra,
  };
}

/** Writes `bench/results/<name>.json` and returns its path. */
export async function writeResult(result: BenchResult): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${result.name}.json`);
  await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}
