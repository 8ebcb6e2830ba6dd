/**
 * The connection value (seed 002, C2.2): every member of a self-selecting cluster computes the
 * same integer from the fields of a connection request, and accepts the request only if the
 * value lies in its own range (see `plan.ts`).
 *
 * The value is the one the Linux kernel computes for the nftables expression
 *
 *   jhash ip saddr . th sport [. ip daddr] [. th dport] [. meta l4proto] mod N seed S offset LO
 *
 * (`ip6 saddr` / `ip6 daddr` for IPv6), so the userspace engine, the kernel engine, tests and
 * dashboards all agree on which member takes a connection. Concretely:
 *
 * - Key bytes, in this fixed order whatever order `include` lists them in: source address
 *   (4 bytes for IPv4, 16 for IPv6; an IPv4-mapped IPv6 address counts as IPv4, as the packet
 *   on the wire is IPv4), source port (2 bytes, network order), destination address,
 *   destination port, protocol (1 byte, 6 for TCP and 17 for UDP). In a concatenation of two or
 *   more fields each is padded with zero bytes to a multiple of 4 (nftables keeps every field in
 *   32-bit registers); a single field is hashed unpadded (`jhash th sport` hashes 2 bytes).
 * - `h = jhash(key, key.length, seed)`: the kernel's `jhash()` (Bob Jenkins' lookup3, as in
 *   `include/linux/jhash.h`) reading whole words little-endian, as the kernel does on x86 and
 *   arm64 (a big-endian kernel reads them the other way and computes other values).
 * - `value = lo + floor(h * N / 2^32)` with `N = hi - lo + 1`: the kernel's
 *   `reciprocal_scale(h, N) + offset`. nftables needs `N >= 2`.
 *
 * Address text is canonicalised first (parsed to bytes), so `::FFFF:10.0.0.1`, `10.0.0.1`
 * and `2001:DB8:0:0::1` / `2001:db8::1` give the same value on every member.
 * Pure and synchronous, no `node:` imports (browsers and dashboards reuse it).
 */

import { scaleToSpace } from '../core/hash.js';
import type { RangeSpace } from '../core/policy/ranges.js';
import { InvalidArgumentError } from '../errors.js';
import { formatAddress, parseAddress } from '../probe/address.js';

/** The request fields a connection value can be computed from. */
export type ConnectionField = 'srcAddress' | 'srcPort' | 'dstAddress' | 'dstPort' | 'protocol';

/** The fields of one connection request (a TCP SYN, or the first datagram of a UDP flow). */
export interface ConnectionFields {
  /** IPv4 or IPv6 text; an optional `%zone` suffix is ignored. */
  readonly srcAddress: string;
  /** 0..65535 */
  readonly srcPort: number;
  readonly dstAddress?: string;
  readonly dstPort?: number;
  readonly protocol?: 'tcp' | 'udp';
}

export interface ConnectionValueOptions {
  /** Fields that go into the value; `['srcAddress', 'srcPort']` by default. Order and repeats do not matter. */
  readonly include?: readonly ConnectionField[];
  /** The value space, inclusive; `{ lo: 0, hi: 31999 }` by default (nftables `mod 32000`). 0 <= lo <= hi < 2^32. */
  readonly space?: RangeSpace;
  /** The jhash seed, a uint32; every member must use the same one. `DEFAULT_CONNECTION_SEED` by default. */
  readonly seed?: number;
}

/** The fields in the order they are hashed (and must be concatenated in an nftables rule). */
export const CONNECTION_FIELD_ORDER: readonly ConnectionField[] = Object.freeze([
  'srcAddress',
  'srcPort',
  'dstAddress',
  'dstPort',
  'protocol',
]);

export const DEFAULT_CONNECTION_FIELDS: readonly ConnectionField[] = Object.freeze(['srcAddress', 'srcPort']);

/** 32000 values, as in the seed's example (nftables `mod 32000`). */
export const DEFAULT_VALUE_SPACE: RangeSpace = Object.freeze({ lo: 0, hi: 31999 });

/**
 * The default jhash seed (`seed 0x5eed` in nftables). Always write the seed into the rule:
 * without one the kernel draws a random seed per rule, and members would disagree.
 */
export const DEFAULT_CONNECTION_SEED = 0x5eed;

const PROTOCOL_NUMBERS: Readonly<Record<string, number>> = { tcp: 6, udp: 17 };
const JHASH_INITVAL = 0xdeadbeef;
const MAX_UINT32 = 0xffffffff;

function rol32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function le32(key: Uint8Array, i: number): number {
  return key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
}

/**
 * The Linux kernel's `jhash(key, length, initval)` (lookup3 by Bob Jenkins, as in
 * `include/linux/jhash.h`), whole words read little-endian. Unsigned result. Throws
 * InvalidArgumentError when `seed` is not a uint32.
 */
export function jhash(key: Uint8Array, seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > MAX_UINT32) {
    throw new InvalidArgumentError(`jhash: seed: expected an integer 0..2^32-1, got ${seed}`);
  }
  let length = key.length;
  let a = (JHASH_INITVAL + length + seed) | 0;
  let b = a;
  let c = a;
  let i = 0;
  while (length > 12) {
    a = (a + le32(key, i)) | 0;
    b = (b + le32(key, i + 4)) | 0;
    c = (c + le32(key, i + 8)) | 0;
    // __jhash_mix
    a = (a - c) | 0;
    a ^= rol32(c, 4);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rol32(a, 6);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rol32(b, 8);
    b = (b + a) | 0;
    a = (a - c) | 0;
    a ^= rol32(c, 16);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rol32(a, 19);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rol32(b, 4);
    b = (b + a) | 0;
    length -= 12;
    i += 12;
  }
  if (length === 0) return c >>> 0;
  // The last 1..12 bytes, zero-extended: the kernel's fall-through switch.
  const tail = [0, 0, 0];
  for (let j = 0; j < length; j++) tail[j >> 2]! += key[i + j]! * 2 ** (8 * (j & 3));
  a = (a + tail[0]!) | 0;
  b = (b + tail[1]!) | 0;
  c = (c + tail[2]!) | 0;
  // __jhash_final
  c ^= b;
  c = (c - rol32(b, 14)) | 0;
  a ^= c;
  a = (a - rol32(c, 11)) | 0;
  b ^= a;
  b = (b - rol32(a, 25)) | 0;
  c ^= b;
  c = (c - rol32(b, 16)) | 0;
  a ^= c;
  a = (a - rol32(c, 4)) | 0;
  b ^= a;
  b = (b - rol32(a, 14)) | 0;
  c ^= b;
  c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}

/** Address bytes: 4 for IPv4 and IPv4-mapped IPv6, 16 for other IPv6; undefined when not an address. */
function addressBytes(text: string): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined;
  const zone = text.indexOf('%');
  const parsed = parseAddress(zone === -1 ? text : text.slice(0, zone));
  if (parsed === undefined) return undefined;
  const bytes = parsed.bytes;
  const mapped =
    parsed.family === 6 &&
    bytes.subarray(0, 10).every((x) => x === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff;
  return mapped ? bytes.slice(12) : bytes;
}

/**
 * The canonical text of an address as the connection value sees it: dotted IPv4 (IPv4-mapped
 * IPv6 included), RFC 5952 IPv6 (lowercase, `::` compressed); undefined when not an address.
 */
export function canonicalAddress(text: string): string | undefined {
  const bytes = addressBytes(text);
  if (bytes === undefined) return undefined;
  return formatAddress(bytes.length === 4 ? 4 : 6, bytes);
}

function checkSpace(space: RangeSpace): RangeSpace {
  const { lo, hi } = space;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || lo > hi || hi > MAX_UINT32) {
    throw new InvalidArgumentError(
      `connectionValue: option space: expected integers 0 <= lo <= hi <= 2^32-1, got ${JSON.stringify(space)}`,
    );
  }
  return space;
}

function checkPort(name: string, port: number | undefined): number {
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`connectionValue: ${name}: expected an integer 0..65535, got ${port}`);
  }
  return port;
}

function checkAddress(name: string, text: string | undefined): Uint8Array {
  const bytes = text === undefined ? undefined : addressBytes(text);
  if (bytes === undefined) {
    throw new InvalidArgumentError(
      `connectionValue: ${name}: expected an IPv4 or IPv6 address, got ${JSON.stringify(text)}`,
    );
  }
  return bytes;
}

/**
 * The bytes the kernel hashes for these fields (see the module comment for the layout).
 * Throws InvalidArgumentError when an included field is missing or malformed, when `include`
 * names an unknown field or is empty, or when the two addresses are of different families.
 */
export function connectionKey(
  fields: ConnectionFields,
  include: readonly ConnectionField[] = DEFAULT_CONNECTION_FIELDS,
): Uint8Array {
  for (const f of include) {
    if (!CONNECTION_FIELD_ORDER.includes(f)) {
      throw new InvalidArgumentError(
        `connectionValue: option include: expected ${CONNECTION_FIELD_ORDER.join(', ')}, got ${JSON.stringify(f)}`,
      );
    }
  }
  const wanted = CONNECTION_FIELD_ORDER.filter((f) => include.includes(f));
  if (wanted.length === 0) {
    throw new InvalidArgumentError('connectionValue: option include: expected at least one field, got none');
  }
  // nftables pads every field of a concatenation to a 32-bit register; a lone field is not padded.
  const pad = (bytes: Uint8Array) => {
    if (wanted.length === 1) return bytes;
    const out = new Uint8Array(4);
    out.set(bytes);
    return out;
  };
  const parts: Uint8Array[] = [];
  let family = 0;
  for (const f of wanted) {
    if (f === 'srcAddress' || f === 'dstAddress') {
      const bytes = checkAddress(f, fields[f]);
      if (family !== 0 && family !== bytes.length) {
        throw new InvalidArgumentError(
          `connectionValue: ${f}: expected the same address family as the other address, got ${JSON.stringify(fields[f])}`,
        );
      }
      family = bytes.length;
      parts.push(bytes);
    } else if (f === 'srcPort' || f === 'dstPort') {
      const port = checkPort(f, fields[f]);
      parts.push(pad(Uint8Array.of(port >> 8, port & 0xff)));
    } else {
      const number = fields.protocol === undefined ? undefined : PROTOCOL_NUMBERS[fields.protocol];
      if (number === undefined) {
        throw new InvalidArgumentError(
          `connectionValue: protocol: expected 'tcp' or 'udp', got ${JSON.stringify(fields.protocol)}`,
        );
      }
      parts.push(pad(Uint8Array.of(number)));
    }
  }
  const key = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    key.set(p, at);
    at += p.length;
  }
  return key;
}

/**
 * The connection value of a request: an integer in `space` (0..31999 by default), the same on
 * every member and the same as the kernel's nftables `jhash ... mod N seed S offset lo` over the
 * same fields (module comment). Uniform over the space for varied sources. Throws
 * InvalidArgumentError for a missing or malformed included field or a bad option; a caller that
 * handles packets from the network validates them first (or catches, counts and drops).
 */
export function connectionValue(fields: ConnectionFields, options: ConnectionValueOptions = {}): number {
  const space = checkSpace(options.space ?? DEFAULT_VALUE_SPACE);
  const key = connectionKey(fields, options.include ?? DEFAULT_CONNECTION_FIELDS);
  return scaleToSpace(jhash(key, options.seed ?? DEFAULT_CONNECTION_SEED), space.lo, space.hi);
}
