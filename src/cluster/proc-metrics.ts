/**
 * Parsers for the Linux /proc and /sys files the availability agent reads (C2.4). Pure
 * functions of the file text; each returns undefined for text it cannot make sense of and never
 * throws, so a missing or malformed file only leaves its metric unknown.
 */

/** `/proc/cpuinfo`: the number of `processor` entries and each entry's `cpu MHz` (x86; absent on most ARM). */
export function parseCpuInfo(text: string): { processors: number; mhz: number[] } {
  let processors = 0;
  const mhz: number[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'processor' && /^\d+$/.test(value)) processors++;
    else if (key === 'cpu MHz') {
      const n = Number(value);
      if (value !== '' && Number.isFinite(n) && n > 0) mhz.push(n);
    }
  }
  return { processors, mhz };
}

/** A CPU list such as `/sys/devices/system/cpu/online` (`0-3,6,8-9`): how many CPUs it names. */
export function parseCpuList(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  let count = 0;
  for (const part of trimmed.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (m === null) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return undefined;
    count += to - from + 1;
  }
  return count;
}

/** Aggregate CPU time from `/proc/stat` (in ticks): all of it, and the idle part (idle + iowait). */
export interface CpuTimes {
  readonly total: number;
  readonly idle: number;
  /** Number of `cpuN` lines. */
  readonly cpus: number;
}

/**
 * `/proc/stat`: the `cpu` line's user, nice, system, idle, iowait, irq, softirq and steal
 * (guest time is already inside user and nice, so it is not added again).
 */
export function parseProcStat(text: string): CpuTimes | undefined {
  let times: { total: number; idle: number } | undefined;
  let cpus = 0;
  for (const line of text.split('\n')) {
    if (/^cpu\d+\s/.test(line)) cpus++;
    else if (/^cpu\s/.test(line)) {
      const fields = line.trim().split(/\s+/).slice(1, 9);
      if (fields.length < 4 || !fields.every((f) => /^\d+$/.test(f))) return undefined;
      const n = fields.map(Number);
      times = { total: n.reduce((s, x) => s + x, 0), idle: n[3]! + (n[4] ?? 0) };
    }
  }
  return times === undefined ? undefined : { ...times, cpus };
}

/** The busy fraction of the CPU time between two `/proc/stat` readings; undefined if no time passed. */
export function busyBetween(before: CpuTimes, after: CpuTimes): number | undefined {
  const total = after.total - before.total;
  const idle = after.idle - before.idle;
  if (!(total > 0) || idle < 0) return undefined;
  return Math.min(1, Math.max(0, 1 - idle / total));
}

/** `/proc/loadavg` (`0.14 1.01 1.73 1/85 14179`): the 1-minute load, running and total tasks. */
export function parseLoadavg(text: string): { load1: number; running: number; total: number } | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s+\d+(?:\.\d+)?\s+\d+(?:\.\d+)?\s+(\d+)\/(\d+)(?:\s|$)/.exec(text);
  if (m === null) return undefined;
  return { load1: Number(m[1]), running: Number(m[2]), total: Number(m[3]) };
}

/**
 * `/proc/net/tcp` or `/proc/net/tcp6`: the number of sockets in state ESTABLISHED (`st` = 01).
 * Undefined when the text has no header line (not such a file).
 */
export function countEstablished(text: string): number | undefined {
  const lines = text.split('\n');
  if (!/^\s*sl\s+local_address\s/.test(lines[0] ?? '')) return undefined;
  let count = 0;
  for (let i = 1; i < lines.length; i++) {
    const m = /^\s*\d+:\s+[0-9A-Fa-f]+:[0-9A-Fa-f]+\s+[0-9A-Fa-f]+:[0-9A-Fa-f]+\s+([0-9A-Fa-f]{2})\s/.exec(
      lines[i]!,
    );
    if (m !== null && m[1] === '01') count++;
  }
  return count;
}

/** A sysfs integer (`48000`, with a newline), scaled: `/ 1000` for millidegrees or kHz, `/ 1e6` for microwatts. */
export function parseScaledInteger(text: string, divisor: number): number | undefined {
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed)) return undefined;
  return Number(trimmed) / divisor;
}
