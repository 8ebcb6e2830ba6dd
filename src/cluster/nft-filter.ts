/**
 * The kernel cluster filter (seed 002, self-selecting cluster): every member sees every packet
 * for the virtual IP and keeps only its share. On each member an nftables table
 *
 *  - accepts every packet of a flow this member took (its conntrack entry carries our ct mark),
 *    so a range change never breaks a live connection;
 *  - for a new flow (TCP: SYN without ACK; UDP: ct state new) hashes the configured fields with
 *    `jhash ... mod <modulus> seed <seed>` and, when the value falls in one of the member's
 *    ranges, marks the flow and accepts it;
 *  - drops every other packet to the virtual IP and ports. Conntrack's loose pickup would call a
 *    mid-stream packet of another member's flow "established" here and the local stack would
 *    answer it with a RST; the mark is what tells our flows from theirs.
 *
 * `renderClusterTable` is pure; `applyClusterTable` replaces the table in one `nft -f`
 * transaction (conntrack marks live in conntrack, not in the table, so they survive it).
 */
import { isIP } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import { type NftRunOptions, runNft } from './nft-exec.js';

export { NftCommandError, type NftExec, type NftRunOptions, type NftRunResult } from './nft-exec.js';

/** An inclusive interval `[lo, hi]` of hash values, as a range plan hands them out. */
export type HashRange = readonly [lo: number, hi: number];

export type HashField = 'saddr' | 'sport';

export interface ClusterTableOptions {
  /** nftables table name (default `usher_cluster`). */
  table?: string;
  /** The virtual IP every member shares; IPv4 gives an `ip` table, IPv6 an `ip6` one. */
  vip: string;
  /** TCP ports of the virtual IP (default `[80]`). */
  ports?: readonly number[];
  /** UDP ports of the virtual IP (default none). */
  udpPorts?: readonly number[];
  /** What the hash covers (default both). Always hashed in the order saddr, sport. */
  fields?: readonly HashField[];
  /** Size of the hash value space (default 32000: values 0..31999). */
  modulus?: number;
  /** jhash seed; every member must use the same one (default 0x5eed). */
  seed?: number;
  /** This member's share of the value space; empty: the member takes no new flows. */
  ranges: readonly HashRange[];
  /** ct mark bit(s) that label this member's flows (default 0x1). */
  mark?: number;
}

export type ClusterFamily = 'ip' | 'ip6';

const DEFAULT_TABLE = 'usher_cluster';
const U32_MAX = 0xffff_ffff;
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

function fail(option: string, message: string): never {
  throw new InvalidArgumentError(`${option}: ${message}`);
}

function integerIn(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    fail(option, `expected an integer in ${min}..${max}, got ${String(value)}`);
  return value;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function checkTable(table: unknown): string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table))
    fail('table', `expected a name of letters, digits and '_' starting with a letter, got ${String(table)}`);
  return table;
}

function checkPorts(option: string, ports: readonly number[]): number[] {
  if (!Array.isArray(ports)) fail(option, `expected an array of ports, got ${String(ports)}`);
  const seen = new Set<number>();
  ports.forEach((p, i) => {
    integerIn(`${option}[${i}]`, p, 1, 65535);
    if (seen.has(p)) fail(`${option}[${i}]`, `port ${p} is listed twice`);
    seen.add(p);
  });
  return [...seen].sort((a, b) => a - b);
}

/** Validated, sorted ranges with touching neighbours merged (`[0, 9]`, `[10, 19]` → `[0, 19]`). */
function checkRanges(ranges: readonly HashRange[], modulus: number): Array<[number, number]> {
  if (!Array.isArray(ranges)) fail('ranges', `expected an array of [lo, hi] pairs, got ${String(ranges)}`);
  const indexed = ranges.map((r, i) => {
    if (!Array.isArray(r) || r.length !== 2)
      fail(`ranges[${i}]`, `expected [lo, hi], got ${JSON.stringify(r)}`);
    const lo = integerIn(`ranges[${i}][0]`, r[0], 0, modulus - 1);
    const hi = integerIn(`ranges[${i}][1]`, r[1], 0, modulus - 1);
    if (lo > hi) fail(`ranges[${i}]`, `expected lo <= hi, got [${lo}, ${hi}]`);
    return { lo, hi, i };
  });
  indexed.sort((a, b) => a.lo - b.lo);
  const merged: Array<[number, number]> = [];
  let prev: (typeof indexed)[number] | undefined;
  for (const cur of indexed) {
    if (prev && cur.lo <= prev.hi)
      fail(
        `ranges[${cur.i}]`,
        `expected ranges that do not overlap, got [${cur.lo}, ${cur.hi}] overlapping ranges[${prev.i}] [${prev.lo}, ${prev.hi}]`,
      );
    const last = merged.at(-1);
    if (last && cur.lo === last[1] + 1) last[1] = cur.hi;
    else merged.push([cur.lo, cur.hi]);
    prev = cur;
  }
  return merged;
}

function checkFields(fields: readonly HashField[]): HashField[] {
  if (!Array.isArray(fields) || fields.length === 0)
    fail('fields', `expected a non-empty array of 'saddr' and/or 'sport', got ${JSON.stringify(fields)}`);
  fields.forEach((f, i) => {
    if (f !== 'saddr' && f !== 'sport')
      fail(`fields[${i}]`, `expected 'saddr' or 'sport', got ${JSON.stringify(f)}`);
    if (fields.indexOf(f) !== i) fail(`fields[${i}]`, `${f} is listed twice`);
  });
  return (['saddr', 'sport'] as const).filter((f) => fields.includes(f));
}

function checkVip(vip: unknown): { vip: string; family: ClusterFamily } {
  const v = typeof vip === 'string' && !vip.includes('%') ? isIP(vip) : 0;
  if (v === 0) fail('vip', `expected an IPv4 or IPv6 address, got ${JSON.stringify(vip)}`);
  return { vip: vip as string, family: v === 4 ? 'ip' : 'ip6' };
}

/** `{ 80 }` as nft wants it: a bare value for one element, an anonymous set for several. */
function portMatch(ports: number[]): string {
  return ports.length === 1 ? String(ports[0]) : `{ ${ports.join(', ')} }`;
}

function rangeElement([lo, hi]: [number, number]): string {
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

/**
 * The nftables script of a member's cluster table. Throws InvalidArgumentError (naming the
 * option) on bad input. Shape, for `vip: '10.77.0.100', ports: [80, 8080], udpPorts: [53]`:
 *
 *   table ip usher_cluster {
 *     chain pre {
 *       type filter hook prerouting priority mangle; policy accept;
 *       ip daddr 10.77.0.100 tcp dport { 80, 8080 } jump tcp_in
 *       ip daddr 10.77.0.100 udp dport 53 jump udp_in
 *     }
 *     chain tcp_in {
 *       ct mark & 0x1 == 0x1 accept
 *       tcp flags & (syn | ack) == syn jhash ip saddr . tcp sport mod 32000 seed 0x5eed vmap { 0-7999 : jump mine }
 *       drop
 *     }
 *     chain udp_in { ... the same with `ct state new` and `udp sport` ... }
 *     chain mine {
 *       ct mark set ct mark | 0x1
 *       accept
 *     }
 *   }
 *
 * With no ranges the hash rule is left out: the member keeps its marked flows and takes no
 * new ones.
 */
export function renderClusterTable(options: ClusterTableOptions): string {
  if (typeof options !== 'object' || options === null) fail('options', 'expected an object');
  const table = checkTable(options.table ?? DEFAULT_TABLE);
  const { vip, family } = checkVip(options.vip);
  const ports = checkPorts('ports', options.ports ?? [80]);
  const udpPorts = checkPorts('udpPorts', options.udpPorts ?? []);
  if (ports.length + udpPorts.length === 0) fail('ports', 'expected at least one TCP or UDP port, got none');
  const fields = checkFields(options.fields ?? ['saddr', 'sport']);
  const modulus = integerIn('modulus', options.modulus ?? 32000, 1, U32_MAX);
  const seed = integerIn('seed', options.seed ?? 0x5eed, 0, U32_MAX);
  const mark = integerIn('mark', options.mark ?? 0x1, 1, U32_MAX);
  const ranges = checkRanges(options.ranges, modulus);

  const m = hex(mark);
  const vmap = `vmap { ${ranges.map((r) => `${rangeElement(r)} : jump mine`).join(', ')} }`;
  const hash = (proto: 'tcp' | 'udp') =>
    `jhash ${fields.map((f) => (f === 'saddr' ? `${family} saddr` : `${proto} sport`)).join(' . ')} mod ${modulus} seed ${hex(seed)}`;
  const flowChain = (proto: 'tcp' | 'udp', isNew: string) => [
    `  chain ${proto}_in {`,
    `    ct mark & ${m} == ${m} accept`,
    ranges.length > 0
      ? `    ${isNew} ${hash(proto)} ${vmap}`
      : '    # no ranges: this member takes no new flows',
    '    drop',
    '  }',
  ];
  const lines = [
    `table ${family} ${table} {`,
    '  chain pre {',
    '    type filter hook prerouting priority mangle; policy accept;',
  ];
  if (ports.length > 0) lines.push(`    ${family} daddr ${vip} tcp dport ${portMatch(ports)} jump tcp_in`);
  if (udpPorts.length > 0)
    lines.push(`    ${family} daddr ${vip} udp dport ${portMatch(udpPorts)} jump udp_in`);
  lines.push('  }');
  if (ports.length > 0) lines.push(...flowChain('tcp', 'tcp flags & (syn | ack) == syn'));
  if (udpPorts.length > 0) lines.push(...flowChain('udp', 'ct state new'));
  lines.push('  chain mine {', `    ct mark set ct mark | ${m}`, '    accept', '  }', '}', '');
  return lines.join('\n');
}

const HEADER = /^\s*table\s+(ip6?)\s+([A-Za-z][A-Za-z0-9_]*)\s*\{/;

/** Family and name of the table a rendered script defines. */
export function clusterTableOf(script: string): { family: ClusterFamily; table: string } {
  const m = typeof script === 'string' ? HEADER.exec(script) : null;
  if (!m) fail('script', 'expected a script starting with `table ip|ip6 <name> {` (from renderClusterTable)');
  return { family: m[1] as ClusterFamily, table: m[2]! };
}

/**
 * The script with a prelude that makes it a replacement: create the table if missing (so the
 * delete cannot fail), delete it, define it anew. `nft -f` runs the file as one transaction.
 */
export function replacementScript(script: string): string {
  const { family, table } = clusterTableOf(script);
  return `table ${family} ${table} {}\ndelete table ${family} ${table}\n${script}`;
}

/**
 * Installs (or replaces) the cluster table in one `nft -f -` transaction: packets see either
 * the old table or the new one, never none. Marked flows keep being accepted across the swap.
 * Throws NftCommandError if nft refuses; then nothing changed.
 */
export async function applyClusterTable(script: string, options: NftRunOptions = {}): Promise<void> {
  await runNft(['-f', '-'], replacementScript(script), 'apply cluster table', options);
}

/** Checks the script with `nft -c` (the kernel validates it, nothing is applied). */
export async function checkClusterTable(script: string, options: NftRunOptions = {}): Promise<void> {
  await runNft(['-c', '-f', '-'], replacementScript(script), 'check cluster table', options);
}

export interface RemoveClusterTableOptions extends NftRunOptions {
  table?: string;
  /** `ip` (default) or `ip6`. */
  family?: ClusterFamily;
}

/** Removes the cluster table; does nothing if it is not there. */
export async function removeClusterTable(options: RemoveClusterTableOptions = {}): Promise<void> {
  const table = checkTable(options.table ?? DEFAULT_TABLE);
  const family = options.family ?? 'ip';
  if (family !== 'ip' && family !== 'ip6') fail('family', `expected 'ip' or 'ip6', got ${String(family)}`);
  await runNft(
    ['-f', '-'],
    `table ${family} ${table} {}\ndelete table ${family} ${table}\n`,
    'remove cluster table',
    options,
  );
}
