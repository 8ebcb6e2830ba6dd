import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type ConnectionField,
  type ConnectionFields,
  canonicalAddress,
  connectionKey,
  connectionValue,
  DEFAULT_VALUE_SPACE,
  jhash,
} from '../../src/cluster/value.js';
import { seededRandom } from '../../src/core/hash.js';
import { InvalidArgumentError } from '../../src/errors.js';

const SEED = 0x5eed;
const FIELDS: ConnectionField[] = ['srcAddress', 'srcPort', 'dstAddress', 'dstPort', 'protocol'];

const ipv4 = fc.ipV4();
const ipv6 = fc.ipV6();
const port = fc.integer({ min: 0, max: 65535 });
const fieldsArb: fc.Arbitrary<ConnectionFields> = fc
  .oneof(
    ipv4.map((a) => [a, 4] as const),
    ipv6.map((a) => [a, 6] as const),
  )
  .chain(([src, family]) =>
    fc.record({
      srcAddress: fc.constant(src),
      srcPort: port,
      dstAddress: family === 4 ? ipv4 : ipv6,
      dstPort: port,
      protocol: fc.constantFrom('tcp' as const, 'udp' as const),
    }),
  );
const includeArb = fc.subarray(FIELDS, { minLength: 1 });
const seedArb = fc.integer({ min: 0, max: 0xffffffff });

/** A random IPv4 source from a seeded generator. */
function randomV4(random: () => number): string {
  return Array.from({ length: 4 }, () => Math.floor(random() * 256)).join('.');
}

/** Pearson's chi-square statistic of `values` (in 0..31999) over `bins` equal bins. */
function chiSquare(values: readonly number[], bins: number): number {
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.floor((v * bins) / 32000)]!++;
  const expected = values.length / bins;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
}

describe('cluster value: agreement with the kernel', () => {
  // Observed on Linux 6.18 (x86_64) with nftables 1.0.6 in a network namespace: a rule
  // `<tuple match> jhash <fields> mod N seed S offset LO == V counter` counted the packet for
  // exactly these V (and a `!= V` twin did not); 336 such tuples (IPv4 and IPv6, TCP and UDP, six field sets) agreed, none disagreed.
  const vectors: Array<[ConnectionFields, ConnectionField[], number, number, number, number]> = [
    // fields, include, mod, offset, seed, value
    [{ srcAddress: '10.9.0.1', srcPort: 20000 }, ['srcAddress', 'srcPort'], 32000, 0, 0x5eed, 8130],
    [{ srcAddress: '172.16.3.200', srcPort: 20010 }, ['srcAddress', 'srcPort'], 32000, 0, 0x5eed, 7580],
    [{ srcAddress: '10.9.0.2', srcPort: 20018 }, ['srcAddress', 'srcPort'], 32000, 0, 0x5eed, 31601],
    [{ srcAddress: 'fd00::abcd:1', srcPort: 20029 }, ['srcAddress', 'srcPort'], 32000, 0, 0x5eed, 12486],
    [{ srcAddress: '2001:db8::5', srcPort: 20044 }, ['srcAddress', 'srcPort'], 32000, 0, 0x5eed, 5761],
    [{ srcAddress: 'fd00::abcd:1', srcPort: 20038 }, ['srcAddress', 'srcPort'], 32000, 0, 0, 3613],
    [{ srcAddress: '::', srcPort: 20031, protocol: 'udp' }, ['srcPort'], 32000, 0, 0xdeadbeef, 6661],
    [{ srcAddress: '::', srcPort: 20260, protocol: 'udp' }, ['srcPort', 'protocol'], 65536, 0, 0, 62775],
    [{ srcAddress: '2001:db8::5', srcPort: 0 }, ['srcAddress'], 1000, 5, 0x5eed, 123],
    [{ srcAddress: '10.9.0.2', srcPort: 0 }, ['srcAddress'], 32000, 5, 0xdeadbeef, 17988],
    [
      { srcAddress: '192.168.77.5', srcPort: 0, dstAddress: '192.168.77.5', dstPort: 44543 },
      ['srcAddress', 'dstAddress', 'dstPort'],
      32000,
      100,
      12345,
      21790,
    ],
    [
      { srcAddress: 'fd12:3456:789a:1::42', srcPort: 0, dstAddress: 'fd00::1', dstPort: 25443 },
      ['srcAddress', 'dstAddress', 'dstPort'],
      65536,
      5,
      0xffffffff,
      41011,
    ],
    [
      { srcAddress: '10.9.0.2', srcPort: 20227, dstAddress: '192.168.77.5', dstPort: 44270, protocol: 'tcp' },
      FIELDS,
      32000,
      0,
      12345,
      10453,
    ],
    [
      {
        srcAddress: '172.16.3.200',
        srcPort: 20113,
        dstAddress: '172.16.3.200',
        dstPort: 22234,
        protocol: 'udp',
      },
      FIELDS,
      65536,
      5,
      0,
      20879,
    ],
    [
      { srcAddress: 'fd00::1', srcPort: 20282, dstAddress: 'fd00::abcd:1', dstPort: 34027, protocol: 'udp' },
      FIELDS,
      2,
      5,
      0,
      5,
    ],
  ];

  it('computes what nftables `jhash ... mod N seed S offset LO` computes', () => {
    for (const [fields, include, mod, lo, seed, expected] of vectors) {
      const value = connectionValue(fields, { include, space: { lo, hi: lo + mod - 1 }, seed });
      assert.equal(value, expected, `${JSON.stringify(fields)} ${include.join('.')} mod ${mod} seed ${seed}`);
    }
  });

  it('lays the key out as nftables registers do (fields padded to 32 bits, a lone field not)', () => {
    const fields: ConnectionFields = { srcAddress: '10.0.0.1', srcPort: 0x1234, protocol: 'udp' };
    assert.deepEqual([...connectionKey(fields)], [10, 0, 0, 1, 0x12, 0x34, 0, 0]);
    assert.deepEqual([...connectionKey(fields, ['srcPort'])], [0x12, 0x34]);
    assert.deepEqual([...connectionKey(fields, ['protocol'])], [17]);
    assert.deepEqual([...connectionKey(fields, ['protocol', 'srcPort'])], [0x12, 0x34, 0, 0, 17, 0, 0, 0]);
    assert.equal(connectionKey({ srcAddress: '::1', srcPort: 1 }).length, 20);
  });

  it('jhash of nothing is the initial state', () => {
    assert.equal(jhash(new Uint8Array(0), 0), 0xdeadbeef);
    assert.equal(jhash(new Uint8Array(0), 1), 0xdeadbef0);
  });
});

describe('cluster value: properties', () => {
  it('is always an integer inside the space', () => {
    const spaceArb = fc
      .record({ lo: fc.integer({ min: 0, max: 2 ** 32 - 1 }), size: fc.integer({ min: 1, max: 2 ** 32 }) })
      .filter(({ lo, size }) => lo + size - 1 <= 2 ** 32 - 1)
      .map(({ lo, size }) => ({ lo, hi: lo + size - 1 }));
    fc.assert(
      fc.property(
        fieldsArb,
        includeArb,
        fc.option(spaceArb, { nil: undefined }),
        seedArb,
        (f, include, space, seed) => {
          const value = connectionValue(f, { include, space, seed });
          const { lo, hi } = space ?? DEFAULT_VALUE_SPACE;
          assert.ok(Number.isInteger(value) && value >= lo && value <= hi, `${value} outside ${lo}..${hi}`);
        },
      ),
      { seed: SEED, numRuns: 1000 },
    );
  });

  it('is deterministic and ignores the order and repeats of `include`', () => {
    fc.assert(
      fc.property(fieldsArb, includeArb, seedArb, (f, include, seed) => {
        const a = connectionValue(f, { include, seed });
        assert.equal(connectionValue({ ...f }, { include: [...include], seed }), a);
        assert.equal(connectionValue(f, { include: [...include].reverse().concat(include), seed }), a);
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('gives the same value for every text form of an address', () => {
    const same = (a: string, b: string) =>
      assert.equal(
        connectionValue({ srcAddress: a, srcPort: 4242 }),
        connectionValue({ srcAddress: b, srcPort: 4242 }),
      );
    same('10.1.2.3', '::ffff:10.1.2.3');
    same('10.1.2.3', '::FFFF:a01:203');
    same('10.1.2.3', '0:0:0:0:0:ffff:10.1.2.3');
    same('2001:db8::1', '2001:0DB8:0000:0000:0000:0000:0000:0001');
    same('fe80::1', 'fe80::1%eth0');
    assert.equal(canonicalAddress('::FFFF:10.1.2.3'), '10.1.2.3');
    assert.equal(canonicalAddress('2001:0DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonicalAddress('not an address'), undefined);
    fc.assert(
      fc.property(ipv4, port, (a, p) => {
        assert.equal(
          connectionValue({ srcAddress: `::ffff:${a}`, srcPort: p }),
          connectionValue({ srcAddress: a, srcPort: p }),
        );
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('is uniform over the space: random sources, and one source’s consecutive ports', () => {
    const random = seededRandom(SEED);
    const bins = 100;
    // chi-square with 99 degrees of freedom exceeds 148.2 with probability 0.001.
    const critical = 148.2;
    const spread = Array.from({ length: 200_000 }, () =>
      connectionValue({ srcAddress: randomV4(random), srcPort: 1024 + Math.floor(random() * 64512) }),
    );
    const spreadChi = chiSquare(spread, bins);
    assert.ok(spreadChi < critical, `random sources: chi-square ${spreadChi.toFixed(1)} >= ${critical}`);
    const ports = Array.from({ length: 64_000 }, (_, i) =>
      connectionValue({ srcAddress: '203.0.113.7', srcPort: 1024 + i }),
    );
    const portsChi = chiSquare(ports, bins);
    assert.ok(portsChi < critical, `consecutive ports: chi-square ${portsChi.toFixed(1)} >= ${critical}`);
    const six = Array.from({ length: 100_000 }, (_, i) =>
      connectionValue({ srcAddress: `2001:db8::${(i >> 8).toString(16)}`, srcPort: 40000 + (i & 0xff) }),
    );
    const sixChi = chiSquare(six, bins);
    assert.ok(sixChi < critical, `IPv6 sources: chi-square ${sixChi.toFixed(1)} >= ${critical}`);
  });

  it('different seeds give different values (independent up to chance agreement)', () => {
    fc.assert(
      fc.property(
        seedArb,
        seedArb,
        fc.array(fieldsArb, { minLength: 200, maxLength: 200 }),
        (s1, s2, batch) => {
          fc.pre(s1 !== s2);
          const equal = batch.filter(
            (f) => connectionValue(f, { seed: s1 }) === connectionValue(f, { seed: s2 }),
          ).length;
          // Independent values agree with probability 1/32000: 200 tuples, expected 0.006 agreements.
          assert.ok(equal <= 2, `${equal} of 200 values equal under seeds ${s1} and ${s2}`);
        },
      ),
      { seed: SEED, numRuns: 50 },
    );
  });
});

describe('cluster value: bad input', () => {
  const ok: ConnectionFields = { srcAddress: '10.0.0.1', srcPort: 1000, dstAddress: '10.0.0.2', dstPort: 80 };
  const bad = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message));

  it('refuses missing or malformed fields with the field named', () => {
    bad(
      () => connectionValue({ ...ok, srcAddress: '10.0.0.256' }),
      /srcAddress: expected an IPv4 or IPv6 address/,
    );
    bad(() => connectionValue({ ...ok, srcPort: 65536 }), /srcPort: expected an integer 0..65535, got 65536/);
    bad(() => connectionValue({ ...ok, srcPort: 1.5 }), /srcPort/);
    bad(
      () => connectionValue({ srcAddress: '10.0.0.1', srcPort: 1 }, { include: ['dstPort'] }),
      /dstPort.*undefined/,
    );
    bad(() => connectionValue(ok, { include: ['protocol'] }), /protocol: expected 'tcp' or 'udp'/);
    bad(() => connectionValue({ ...ok, dstAddress: '::1' }, { include: FIELDS }), /same address family/);
  });

  it('refuses bad options', () => {
    bad(() => connectionValue(ok, { include: [] }), /at least one field/);
    bad(() => connectionValue(ok, { include: ['srcMac' as ConnectionField] }), /include/);
    bad(() => connectionValue(ok, { space: { lo: 5, hi: 4 } }), /space/);
    bad(() => connectionValue(ok, { space: { lo: -1, hi: 4 } }), /space/);
    bad(() => connectionValue(ok, { space: { lo: 0, hi: 2 ** 32 } }), /space/);
    bad(() => connectionValue(ok, { seed: -1 }), /seed/);
    bad(() => connectionValue(ok, { seed: 2 ** 32 }), /seed/);
  });

  it('ignores fields it does not include', () => {
    assert.equal(
      connectionValue({ ...ok, dstAddress: 'garbage', dstPort: -5 }),
      connectionValue({ srcAddress: '10.0.0.1', srcPort: 1000 }),
    );
  });
});
