/**
 * IP address text ⇄ bytes for the probe protocol's address field (docs/protocols/probe.md).
 * Pure and isomorphic: no Buffer, no `node:` imports (the browser SDK uses it too).
 *
 * Parsing is strict and never throws: IPv4 is a dotted quad of four decimal parts 0..255
 * without leading zeros; IPv6 is any RFC 4291 text form (`::`, `::1`, `::ffff:1.2.3.4`, …)
 * without a zone id. Formatting is canonical: dotted IPv4, RFC 5952 IPv6.
 */

import { InvalidArgumentError } from '../errors.js';

export interface ParsedAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;
const IPV6_CHARS = /^[0-9a-fA-F:.]+$/;
/** `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255` */
const MAX_IPV6_TEXT = 45;

/** Writes the dotted quad `text` into `out` at `offset`; false when it is not a strict dotted quad. */
function parseIPv4Into(text: string, out: Uint8Array, offset: number): boolean {
  const n = text.length;
  if (n < 7 || n > 15) return false;
  // One pass over the characters (this runs for every datagram an assigner answers): four
  // parts of 1..3 digits, no leading zero, each 0..255, separated by single dots.
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || value > 255 || part > 3) return false;
      out[offset + part] = value;
      part++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && value === 0) return false; // a leading zero
      if (++digits > 3) return false;
      value = value * 10 + (c - 0x30);
    } else {
      return false;
    }
  }
  return part === 4;
}

/**
 * Parses one side of a `::` (or the whole address when there is none) into 16-bit groups.
 * `allowIPv4` lets the last element be a dotted quad (two groups). Undefined when malformed.
 */
function parseGroups(text: string, allowIPv4: boolean): number[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: number[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (HEX_GROUP.test(part)) {
      groups.push(Number.parseInt(part, 16));
    } else if (allowIPv4 && i === parts.length - 1 && part.includes('.')) {
      const v4 = new Uint8Array(4);
      if (!parseIPv4Into(part, v4, 0)) return undefined;
      groups.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    } else {
      return undefined;
    }
  }
  return groups;
}

function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > MAX_IPV6_TEXT || !IPV6_CHARS.test(text)) return undefined;
  const gap = text.indexOf('::');
  let groups: number[];
  if (gap === -1) {
    const all = parseGroups(text, true);
    if (all === undefined || all.length !== 8) return undefined;
    groups = all;
  } else {
    // A second `::` (or `:::`) is ambiguous.
    if (text.indexOf('::', gap + 1) !== -1) return undefined;
    const head = parseGroups(text.slice(0, gap), false);
    const tail = parseGroups(text.slice(gap + 2), true);
    if (head === undefined || tail === undefined) return undefined;
    // `::` stands for at least one zero group.
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  }
  const bytes = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i]!;
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  }
  return bytes;
}

/**
 * Parses IPv4 (strict dotted quad) or IPv6 (any RFC 4291 text form, no zone id) text.
 * Returns undefined for anything else; never throws.
 */
export function parseAddress(text: string): ParsedAddress | undefined {
  if (typeof text !== 'string') return undefined;
  if (text.includes(':')) {
    const bytes = parseIPv6(text);
    return bytes === undefined ? undefined : { family: 6, bytes };
  }
  const bytes = new Uint8Array(4);
  return parseIPv4Into(text, bytes, 0) ? { family: 4, bytes } : undefined;
}

const scratch4 = new Uint8Array(4);

/** True when `text` from `start` on is a strict dotted quad. */
function isIPv4Text(text: string, start: number): boolean {
  return parseIPv4Into(start === 0 ? text : text.slice(start), scratch4, 0);
}

function dotted(bytes: Uint8Array, offset: number): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

function isMappedIPv4(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * Formats address bytes: IPv4 dotted; IPv6 in RFC 5952 canonical form (lowercase, no leading
 * zeros, the longest run of two or more zero groups — the first on a tie — as `::`, and
 * `::ffff:a.b.c.d` for IPv4-mapped addresses). Throws InvalidArgumentError when `bytes` has
 * the wrong length for `family` (a programming error).
 */
export function formatAddress(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) {
    if (bytes.length !== 4)
      throw new InvalidArgumentError(`IPv4 address: expected 4 bytes, got ${bytes.length}`);
    return dotted(bytes, 0);
  }
  if (family !== 6) throw new InvalidArgumentError(`address family: expected 4 or 6, got ${String(family)}`);
  if (bytes.length !== 16)
    throw new InvalidArgumentError(`IPv6 address: expected 16 bytes, got ${bytes.length}`);
  if (isMappedIPv4(bytes)) return `::ffff:${dotted(bytes, 12)}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let bestStart = -1;
  let bestLength = 1; // a single zero group is never compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) =>
    groups
      .slice(from, to)
      .map((g) => g.toString(16))
      .join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/** Parses then formats: the canonical text of an address, or undefined when it is not one. */
export function normalizeAddress(text: string): string | undefined {
  const parsed = parseAddress(text);
  return parsed === undefined ? undefined : formatAddress(parsed.family, parsed.bytes);
}

/**
 * Turns an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, in any text form, as Node's dgram
 * reports IPv4 peers on a dual-stack socket) into plain IPv4 text (`1.2.3.4`); returns any
 * other text unchanged.
 */
export function unmapIPv4(text: string): string {
  if (typeof text !== 'string' || !text.includes(':')) return text;
  // The usual form first (a dual-stack socket reports `::ffff:a.b.c.d`), without building bytes.
  if (text.startsWith('::ffff:') && isIPv4Text(text, 7)) return text.slice(7);
  const bytes = parseIPv6(text);
  return bytes !== undefined && isMappedIPv4(bytes) ? dotted(bytes, 12) : text;
}
