import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  fmix32,
  fnv1a32,
  hashKey,
  hashToSpace,
  murmur3,
  scaleToSpace,
  seededRandom,
  utf8Bytes,
} from '../../src/core/hash.js';

const SEED = 0x5eed;

/** Strings with any UTF-16 code units, lone surrogates included. */
const anyUtf16 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 24 })
  .map((units) => String.fromCharCode(...units));
const anyString = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  anyUtf16,
);

/** Straightforward reference implementations over TextEncoder bytes. */
function fnvReference(s: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(s)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

describe('hash', () => {
  it('fnv1a32 matches the published test vectors', () => {
    assert.equal(fnv1a32(''), 0x811c9dc5);
    assert.equal(fnv1a32('a'), 0xe40c292c);
    assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  });

  it('murmur3 matches the reference implementation (x86, 32 bit)', () => {
    assert.equal(murmur3('', 0), 0);
    assert.equal(murmur3('', 1), 0x514e28b7);
    assert.equal(murmur3('', 0xffffffff), 0x81f16f39);
    assert.equal(murmur3('\0\0\0\0', 0), 0x2362f9de);
    assert.equal(murmur3('aaaa', 0x9747b28c), 0x5a97808a);
    assert.equal(murmur3('abc', 0), 0xb3dd93fa);
    assert.equal(murmur3('Hello, world!', 0x9747b28c), 0x24884cba);
    assert.equal(murmur3('The quick brown fox jumps over the lazy dog', 0x9747b28c), 0x2fa826cd);
    assert.equal(murmur3('ππππππππ', 0x9747b28c), 0xd58063c1);
  });

  it('UTF-8 encoding agrees with TextEncoder, lone surrogates included', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        assert.deepEqual([...utf8Bytes(s)], [...new TextEncoder().encode(s)]);
        assert.equal(fnv1a32(s), fnvReference(s));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('hashes are unsigned 32-bit and deterministic; ASCII and non-ASCII paths agree on bytes', () => {
    fc.assert(
      fc.property(anyString, fc.nat({ max: 0xffffffff }), (s, seed) => {
        for (const h of [fnv1a32(s), murmur3(s, seed), hashKey(s)]) {
          assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
        }
        assert.equal(murmur3(s, seed), murmur3(s, seed));
        // A string and the same bytes written as Latin-1 code units hash alike.
        const latin1 = String.fromCharCode(...utf8Bytes(s));
        if ([...latin1].every((c) => c.charCodeAt(0) < 0x80))
          assert.equal(murmur3(latin1, seed), murmur3(s, seed));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('fmix32 is a bijection on a sample and hashKey keeps distinct uint32 keys distinct', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.nat({ max: 0xffffffff }), { minLength: 2, maxLength: 50 }), (keys) => {
        assert.equal(new Set(keys.map(fmix32)).size, keys.length);
        assert.equal(new Set(keys.map(hashKey)).size, keys.length);
      }),
      { seed: SEED, numRuns: 200 },
    );
    assert.equal(hashKey(5), fmix32(5));
    assert.equal(hashKey(-1), murmur3('-1'));
    assert.equal(hashKey(1.5), murmur3('1.5'));
  });

  it('scaleToSpace is exact: floor(hash * size / 2^32), inside lo..hi', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 0xffffffff }),
        fc.integer({ min: -1e9, max: 1e9 }),
        fc.integer({ min: 1, max: 2 ** 32 }),
        (h, lo, size) => {
          const v = scaleToSpace(h, lo, lo + size - 1);
          const exact = Number((BigInt(h) * BigInt(size)) >> 32n);
          assert.equal(v, lo + exact);
          assert.ok(v >= lo && v <= lo + size - 1);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
    assert.equal(scaleToSpace(0xffffffff, 0, 32000), 32000);
    assert.equal(scaleToSpace(0, 0, 32000), 0);
  });

  it('hashToSpace spreads keys evenly over 0..32000', () => {
    const buckets = new Array(16).fill(0);
    const n = 64_000;
    for (let i = 0; i < n; i++) buckets[Math.floor((hashToSpace(`client-${i}`, 0, 32000) * 16) / 32001)]++;
    const expected = n / 16;
    const sd = Math.sqrt(n * (1 / 16) * (15 / 16));
    for (const count of buckets) assert.ok(Math.abs(count - expected) < 5 * sd, `bucket count ${count}`);
  });

  it('seededRandom is reproducible and in [0, 1)', () => {
    const a = seededRandom(42);
    const b = seededRandom(42);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const x = a();
      assert.equal(x, b());
      assert.ok(x >= 0 && x < 1);
      sum += x;
    }
    assert.ok(Math.abs(sum / 10_000 - 0.5) < 0.02);
  });
});
