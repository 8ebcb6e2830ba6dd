/**
 * Deterministic hash functions shared by the policies (maglev, ranges) and by anyone who must
 * agree with them: a peer computing the same ranges, a browser SDK computing the same choice.
 *
 * Everything here uses only 32-bit integer operations (`Math.imul`, shifts, xor) and strings
 * are hashed over their UTF-8 bytes, so the results are identical in every JavaScript engine.
 * Pure and synchronous; no Node-only imports.
 */
import type { Random } from './policy/policy.js';

const TWO_32 = 4294967296;

/** Scratch buffer for UTF-8 encoding of non-ASCII strings (synchronous code, so one is enough). */
let scratch = new Uint8Array(256);

/**
 * Encodes `input` as UTF-8 into the scratch buffer and returns the byte length. Lone surrogates
 * become U+FFFD (EF BF BD), exactly as `TextEncoder` does.
 */
function encodeUtf8(input: string): number {
  const needed = input.length * 3;
  if (scratch.length < needed) scratch = new Uint8Array(Math.max(needed, scratch.length * 2));
  const buf = scratch;
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    let c = input.charCodeAt(i);
    if (c < 0x80) {
      buf[n++] = c;
    } else if (c < 0x800) {
      buf[n++] = 0xc0 | (c >> 6);
      buf[n++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < input.length ? input.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        buf[n++] = 0xf0 | (c >> 18);
        buf[n++] = 0x80 | ((c >> 12) & 0x3f);
        buf[n++] = 0x80 | ((c >> 6) & 0x3f);
        buf[n++] = 0x80 | (c & 0x3f);
      } else {
        buf[n++] = 0xef;
        buf[n++] = 0xbf;
        buf[n++] = 0xbd;
      }
    } else {
      buf[n++] = 0xe0 | (c >> 12);
      buf[n++] = 0x80 | ((c >> 6) & 0x3f);
      buf[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}

function isAscii(input: string): boolean {
  for (let i = 0; i < input.length; i++) if (input.charCodeAt(i) >= 0x80) return false;
  return true;
}

/** The UTF-8 bytes of `input` (lone surrogates as U+FFFD), as the hashes see them. */
export function utf8Bytes(input: string): Uint8Array {
  const n = encodeUtf8(input);
  return scratch.slice(0, n);
}

/** 32-bit FNV-1a over the UTF-8 bytes of `input`. Unsigned result. */
export function fnv1a32(input: string): number {
  let h = 0x811c9dc5;
  if (isAscii(input)) {
    for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 0x01000193);
  } else {
    const n = encodeUtf8(input);
    for (let i = 0; i < n; i++) h = Math.imul(h ^ scratch[i]!, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's 32-bit finaliser: a bijection on uint32 with full avalanche. Unsigned result. */
export function fmix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Mixes two uint32 values into one well-spread uint32 (order matters). */
export function combine32(a: number, b: number): number {
  return fmix32((a ^ fmix32((b + 0x9e3779b9) | 0)) >>> 0);
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

function murmurBlock(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function murmurTail(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  return h ^ k;
}

/**
 * MurmurHash3 x86 32-bit over the UTF-8 bytes of `input`, with an optional uint32 seed.
 * Matches the reference implementation (e.g. `murmur3("", 1) === 0x514e28b7`).
 */
export function murmur3(input: string, seed = 0): number {
  let h = seed | 0;
  let len: number;
  let k: number;
  let i = 0;
  if (isAscii(input)) {
    len = input.length;
    const blocks = len & ~3;
    for (; i < blocks; i += 4) {
      k =
        input.charCodeAt(i) |
        (input.charCodeAt(i + 1) << 8) |
        (input.charCodeAt(i + 2) << 16) |
        (input.charCodeAt(i + 3) << 24);
      h = murmurBlock(h, k);
    }
    const rem = len & 3;
    if (rem > 0) {
      k = 0;
      if (rem === 3) k ^= input.charCodeAt(i + 2) << 16;
      if (rem >= 2) k ^= input.charCodeAt(i + 1) << 8;
      k ^= input.charCodeAt(i);
      h = murmurTail(h, k);
    }
  } else {
    len = encodeUtf8(input);
    const b = scratch;
    const blocks = len & ~3;
    for (; i < blocks; i += 4) {
      k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
      h = murmurBlock(h, k);
    }
    const rem = len & 3;
    if (rem > 0) {
      k = 0;
      if (rem === 3) k ^= b[i + 2]! << 16;
      if (rem >= 2) k ^= b[i + 1]! << 8;
      k ^= b[i]!;
      h = murmurTail(h, k);
    }
  }
  h ^= len;
  return fmix32(h);
}

/** True when `n` is an integer in 0..2^32-1. */
export function isUint32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < TWO_32;
}

/**
 * Hashes a request key to a uint32. An integer key in 0..2^32-1 goes through `fmix32` (a
 * bijection, so distinct keys stay distinct); a string, or any other number (written with
 * `String(n)`, which ECMAScript defines exactly), goes through `murmur3`.
 */
export function hashKey(key: number | string): number {
  if (typeof key === 'number' && isUint32(key)) return fmix32(key);
  return murmur3(typeof key === 'string' ? key : String(key));
}

/**
 * Maps a uint32 hash onto the integers `lo..hi` (inclusive) by multiply-shift,
 * `lo + floor(hash * size / 2^32)`, computed exactly (no floating-point rounding) for any size up
 * to 2^32: every value gets the same share of hashes to within one hash.
 */
export function scaleToSpace(hash: number, lo: number, hi: number): number {
  const size = hi - lo + 1;
  const h = hash >>> 0;
  const q = (h >>> 16) * size; // < 2^48, exact
  const r = (h & 0xffff) * size; // < 2^48, exact
  return lo + Math.floor((q + Math.floor(r / 65536)) / 65536);
}

/** Hashes `key` (see `hashKey`) into the integers `lo..hi` inclusive. */
export function hashToSpace(key: number | string, lo: number, hi: number): number {
  return scaleToSpace(hashKey(key), lo, hi);
}

/**
 * A small, fast, seeded PRNG (mulberry32) returning uniform numbers in [0, 1). Use it wherever a
 * `Random` must be reproducible: tests, benchmarks, simulations. Not for anything secret.
 */
export function seededRandom(seed: number): Random {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / TWO_32;
  };
}
