/**
 * The availability agent (seed 002, C2.4): measures how much new work this server can take, as
 * one number that `planRanges` turns into a share of the connection values. Reads Linux /proc
 * and /sys through an injectable reader (tests feed fixtures). The formula:
 *
 *   availability = capacity × (1 − cpuBusy) × connectionFactor × thermalFactor × Π customFactors
 *
 * - capacity = cores × mhz (MHz per core: `cpuinfo_max_freq` from /sys, else `cpu MHz` from
 *   /proc/cpuinfo, else 1000).
 * - cpuBusy: the busy fraction of CPU time between two /proc/stat readings (this sample's and
 *   the previous sample's; when there is no previous one or it is less than `cpuSampleMs` old,
 *   two readings `cpuSampleMs` apart), else the 1-minute load average / cores, capped at 1.
 * - connectionFactor = 1 / (1 + connections / (connectionsPerCore × cores)), connections = the
 *   ESTABLISHED sockets in /proc/net/tcp and /proc/net/tcp6.
 * - thermalFactor = 1 up to tempWarnC (70 °C), falling linearly to thermalFloor (0.1) at tempMaxC
 *   (95 °C) and staying there; temperature = the hottest /sys/class/thermal zone.
 * - customFactors: functions of the sample, multiplied in (a result that is not a finite number
 *   >= 0, or a throw, is ignored and noted in `problems`).
 * The result is clamped to >= 0. Processes, power and `custom` metrics are reported, not used.
 * A missing or malformed file never throws: its metric is undefined and its factor stays 1.
 */

import { readdir, readFile } from 'node:fs/promises';
import { InvalidArgumentError } from '../errors.js';
import {
  busyBetween,
  type CpuTimes,
  countEstablished,
  parseCpuInfo,
  parseCpuList,
  parseLoadavg,
  parseProcStat,
  parseScaledInteger,
} from './proc-metrics.js';

/** What the agent measured; the inputs of the formula. */
export interface AvailabilityInputs {
  /** Online CPUs (>= 1; 1 when nothing says otherwise). */
  readonly cores: number;
  /** Speed per core in MHz (1000 when unknown). */
  readonly mhz: number;
  /** cores × mhz. */
  readonly capacity: number;
  /** Busy fraction of CPU time 0..1, or undefined when unknown. */
  readonly cpuBusy: number | undefined;
  /** Tasks on the system (threads included, as /proc/loadavg counts them), or undefined. */
  readonly processes: number | undefined;
  /** ESTABLISHED TCP sockets (IPv4 and IPv6) in this network namespace, or undefined. */
  readonly connections: number | undefined;
  /** Hottest thermal zone in °C, when there is one. */
  readonly temperatureC?: number;
  /** Sum of the power supplies' `power_now` in W, when there is one. */
  readonly powerW?: number;
  /** The `custom` metrics (those that returned a finite number). */
  readonly custom: Readonly<Record<string, number>>;
  /** Milliseconds since the epoch when the sample was taken. */
  readonly at: number;
}

export interface AvailabilitySample extends AvailabilityInputs {
  /** The factors of the formula, each 1 when its metric is unknown. */
  readonly factors: {
    readonly cpu: number;
    readonly connections: number;
    readonly thermal: number;
    readonly custom: number;
  };
  /** The result of the formula, >= 0. */
  readonly availability: number;
  /** Files that were missing or malformed and custom metrics that failed, for the logs. */
  readonly problems: readonly string[];
}

export interface AvailabilityOptions {
  /** Reads a file as text; undefined (or a rejection) when it cannot. `fs.readFile` by default. */
  readonly readFile?: (path: string) => Promise<string | undefined>;
  /** Lists a directory's entries; [] (or a rejection) when it cannot. `fs.readdir` by default. */
  readonly listDir?: (path: string) => Promise<string[]>;
  /** Waits between the first sample's two /proc/stat readings. `setTimeout` by default. */
  readonly delay?: (ms: number) => Promise<void>;
  /** Clock for `at`; `Date.now` by default. */
  readonly now?: () => number;
  /** Window of the first sample's CPU measurement in ms (0: use the load average); 200 by default. */
  readonly cpuSampleMs?: number;
  /** Connections per core at which connectionFactor is 0.5; 1000 by default. */
  readonly connectionsPerCore?: number;
  /** Temperature where thermalFactor starts to fall; 70 °C by default. */
  readonly tempWarnC?: number;
  /** Temperature where thermalFactor reaches thermalFloor; 95 °C by default. */
  readonly tempMaxC?: number;
  /** thermalFactor at and above tempMaxC, 0..1; 0.1 by default. */
  readonly thermalFloor?: number;
  /** Extra factors multiplied into the availability. */
  readonly customFactors?: ReadonlyArray<(sample: AvailabilityInputs) => number>;
  /** Extra metrics reported in `custom` (and visible to customFactors). */
  readonly custom?: Readonly<Record<string, () => number>>;
}

export const PATHS = Object.freeze({
  cpuinfo: '/proc/cpuinfo',
  stat: '/proc/stat',
  loadavg: '/proc/loadavg',
  tcp: '/proc/net/tcp',
  tcp6: '/proc/net/tcp6',
  proc: '/proc',
  cpuDir: '/sys/devices/system/cpu',
  cpuOnline: '/sys/devices/system/cpu/online',
  thermal: '/sys/class/thermal',
  power: '/sys/class/power_supply',
});

const DEFAULT_MHZ = 1000;

async function defaultReadFile(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function defaultListDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch {
    return [];
  }
}

function defaultDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function checkNumber(name: string, value: number, ok: (n: number) => boolean, expected: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) {
    throw new InvalidArgumentError(`AvailabilityAgent: option ${name}: expected ${expected}, got ${value}`);
  }
  return value;
}

/** thermalFactor for a temperature (module comment). */
export function thermalFactor(temperatureC: number | undefined, warnC = 70, maxC = 95, floor = 0.1): number {
  if (temperatureC === undefined || !Number.isFinite(temperatureC) || temperatureC <= warnC) return 1;
  if (temperatureC >= maxC) return floor;
  return 1 - ((1 - floor) * (temperatureC - warnC)) / (maxC - warnC);
}

/** connectionFactor for a number of connections (module comment). */
export function connectionFactor(
  connections: number | undefined,
  cores: number,
  connectionsPerCore = 1000,
): number {
  if (connections === undefined || !(connections >= 0)) return 1;
  return 1 / (1 + connections / (connectionsPerCore * cores));
}

/** Measures this server's availability (module comment). One agent per server; `sample()` never throws. */
export class AvailabilityAgent {
  readonly #read: (path: string) => Promise<string | undefined>;
  readonly #list: (path: string) => Promise<string[]>;
  readonly #delay: (ms: number) => Promise<void>;
  readonly #now: () => number;
  readonly #cpuSampleMs: number;
  readonly #perCore: number;
  readonly #warnC: number;
  readonly #maxC: number;
  readonly #floor: number;
  readonly #customFactors: ReadonlyArray<(sample: AvailabilityInputs) => number>;
  readonly #custom: Readonly<Record<string, () => number>>;
  #lastStat: CpuTimes | undefined;
  #lastStatAt = Number.NEGATIVE_INFINITY;

  /** Throws InvalidArgumentError for a bad option (a programming or configuration error). */
  constructor(options: AvailabilityOptions = {}) {
    this.#read = options.readFile ?? defaultReadFile;
    this.#list = options.listDir ?? defaultListDir;
    this.#delay = options.delay ?? defaultDelay;
    this.#now = options.now ?? Date.now;
    this.#cpuSampleMs = checkNumber(
      'cpuSampleMs',
      options.cpuSampleMs ?? 200,
      (n) => n >= 0,
      'a number >= 0',
    );
    this.#perCore = checkNumber(
      'connectionsPerCore',
      options.connectionsPerCore ?? 1000,
      (n) => n > 0,
      'a number > 0',
    );
    this.#warnC = checkNumber('tempWarnC', options.tempWarnC ?? 70, () => true, 'a finite number');
    this.#maxC = checkNumber(
      'tempMaxC',
      options.tempMaxC ?? 95,
      (n) => n > this.#warnC,
      `a number > tempWarnC (${this.#warnC})`,
    );
    this.#floor = checkNumber(
      'thermalFloor',
      options.thermalFloor ?? 0.1,
      (n) => n >= 0 && n <= 1,
      'a number 0..1',
    );
    this.#customFactors = [...(options.customFactors ?? [])];
    this.#custom = { ...(options.custom ?? {}) };
  }

  /**
   * Takes one sample. The first call, and any call less than `cpuSampleMs` after the previous
   * one, waits `cpuSampleMs` to measure the CPU; later calls measure since the previous call.
   */
  async sample(): Promise<AvailabilitySample> {
    const problems: string[] = [];
    const read = async (path: string, required = true): Promise<string | undefined> => {
      let text: string | undefined;
      try {
        text = await this.#read(path);
      } catch {
        text = undefined;
      }
      if (typeof text !== 'string') {
        if (required) problems.push(`${path}: unreadable`);
        return undefined;
      }
      return text;
    };
    const list = async (path: string): Promise<string[]> => {
      try {
        const entries = await this.#list(path);
        return Array.isArray(entries) ? entries.filter((e) => typeof e === 'string') : [];
      } catch {
        return [];
      }
    };
    const malformed = (path: string) => problems.push(`${path}: malformed`);

    const at = this.#now();
    const [cpuinfoText, onlineText, statText, loadText] = await Promise.all([
      read(PATHS.cpuinfo),
      read(PATHS.cpuOnline, false),
      read(PATHS.stat),
      read(PATHS.loadavg),
    ]);
    const cpuinfo = cpuinfoText === undefined ? undefined : parseCpuInfo(cpuinfoText);
    if (cpuinfo !== undefined && cpuinfo.processors === 0) malformed(PATHS.cpuinfo);
    let stat = statText === undefined ? undefined : parseProcStat(statText);
    if (statText !== undefined && stat === undefined) malformed(PATHS.stat);
    const load = loadText === undefined ? undefined : parseLoadavg(loadText);
    if (loadText !== undefined && load === undefined) malformed(PATHS.loadavg);

    const online = onlineText === undefined ? undefined : parseCpuList(onlineText);
    let cores = [cpuinfo?.processors, online, stat?.cpus].find((n) => n !== undefined && n >= 1);
    if (cores === undefined) {
      problems.push('cores: unknown, assuming 1');
      cores = 1;
    }
    const mhz = (await this.#maxMhz(list, read)) ?? average(cpuinfo?.mhz ?? []) ?? DEFAULT_MHZ;
    const capacity = cores * mhz;

    let cpuBusy: number | undefined;
    if (stat !== undefined) {
      // Measure over the time since the previous sample; if there is none, or it is too recent
      // for a meaningful count of clock ticks, over a fresh window of cpuSampleMs.
      let before = at - this.#lastStatAt >= this.#cpuSampleMs ? this.#lastStat : undefined;
      if (before === undefined && this.#cpuSampleMs > 0) {
        before = stat;
        await this.#delay(this.#cpuSampleMs);
        const again = await read(PATHS.stat);
        stat = again === undefined ? undefined : parseProcStat(again);
      }
      if (before !== undefined && stat !== undefined) cpuBusy = busyBetween(before, stat);
      if (stat !== undefined) {
        this.#lastStat = stat;
        this.#lastStatAt = this.#now();
      }
    }
    if (cpuBusy === undefined && load !== undefined) cpuBusy = Math.min(1, load.load1 / cores);

    const processes = load?.total ?? (await countProcesses(list));
    const connections = await this.#connections(read);
    const temperatureC = await maxTemperature(list, read);
    const powerW = await totalPower(list, read);

    const custom: Record<string, number> = {};
    for (const [name, metric] of Object.entries(this.#custom)) {
      const value = attempt(metric);
      if (value === undefined) problems.push(`custom ${name}: not a finite number`);
      else custom[name] = value;
    }
    const inputs: AvailabilityInputs = {
      cores,
      mhz,
      capacity,
      cpuBusy,
      processes,
      connections,
      ...(temperatureC === undefined ? {} : { temperatureC }),
      ...(powerW === undefined ? {} : { powerW }),
      custom,
      at,
    };
    let customFactor = 1;
    this.#customFactors.forEach((factor, i) => {
      const value = attempt(() => factor(inputs));
      if (value === undefined || value < 0) problems.push(`customFactors[${i}]: not a finite number >= 0`);
      else customFactor *= value;
    });
    const factors = {
      cpu: cpuBusy === undefined ? 1 : 1 - cpuBusy,
      connections: connectionFactor(connections, cores, this.#perCore),
      thermal: thermalFactor(temperatureC, this.#warnC, this.#maxC, this.#floor),
      custom: customFactor,
    };
    const product = capacity * factors.cpu * factors.connections * factors.thermal * factors.custom;
    const availability = Number.isFinite(product) && product > 0 ? product : 0;
    return { ...inputs, factors, availability, problems };
  }

  /** Mean `cpuinfo_max_freq` (kHz) over the CPUs that have one, in MHz. */
  async #maxMhz(
    list: (path: string) => Promise<string[]>,
    read: (path: string, required?: boolean) => Promise<string | undefined>,
  ): Promise<number | undefined> {
    const cpus = (await list(PATHS.cpuDir)).filter((e) => /^cpu\d+$/.test(e));
    const texts = await Promise.all(
      cpus.map((c) => read(`${PATHS.cpuDir}/${c}/cpufreq/cpuinfo_max_freq`, false)),
    );
    const values = texts
      .map((t) => (t === undefined ? undefined : parseScaledInteger(t, 1000)))
      .filter((v): v is number => v !== undefined && v > 0);
    return average(values);
  }

  async #connections(
    read: (path: string, required?: boolean) => Promise<string | undefined>,
  ): Promise<number | undefined> {
    let total: number | undefined;
    for (const path of [PATHS.tcp, PATHS.tcp6]) {
      const text = await read(path, path === PATHS.tcp);
      if (text === undefined) continue;
      const n = countEstablished(text);
      if (n === undefined) continue;
      total = (total ?? 0) + n;
    }
    return total;
  }
}

function average(values: readonly number[]): number | undefined {
  return values.length === 0 ? undefined : values.reduce((s, v) => s + v, 0) / values.length;
}

function attempt(fn: () => number): number | undefined {
  try {
    const v = fn();
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

async function countProcesses(list: (path: string) => Promise<string[]>): Promise<number | undefined> {
  const n = (await list(PATHS.proc)).filter((e) => /^\d+$/.test(e)).length;
  return n > 0 ? n : undefined;
}

async function maxTemperature(
  list: (path: string) => Promise<string[]>,
  read: (path: string, required?: boolean) => Promise<string | undefined>,
): Promise<number | undefined> {
  const zones = (await list(PATHS.thermal)).filter((e) => e.startsWith('thermal_zone'));
  const texts = await Promise.all(zones.map((z) => read(`${PATHS.thermal}/${z}/temp`, false)));
  const values = texts
    .map((t) => (t === undefined ? undefined : parseScaledInteger(t, 1000)))
    .filter((v): v is number => v !== undefined && v > -60 && v < 200);
  return values.length === 0 ? undefined : Math.max(...values);
}

async function totalPower(
  list: (path: string) => Promise<string[]>,
  read: (path: string, required?: boolean) => Promise<string | undefined>,
): Promise<number | undefined> {
  const supplies = await list(PATHS.power);
  const texts = await Promise.all(supplies.map((s) => read(`${PATHS.power}/${s}/power_now`, false)));
  const values = texts
    .map((t) => (t === undefined ? undefined : parseScaledInteger(t, 1e6)))
    .filter((v): v is number => v !== undefined && v >= 0);
  return values.length === 0 ? undefined : values.reduce((s, v) => s + v, 0);
}
