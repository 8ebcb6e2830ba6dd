import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { hashKey, seededRandom } from '../../../src/core/hash.js';
import {
  buildMaglevTable,
  DEFAULT_MAGLEV_TABLE_SIZE,
  isPrime,
  type MaglevMember,
  MaglevPolicy,
  maglevLookup,
} from '../../../src/core/policy/maglev.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { SEED, view } from './support.js';

const PRIMES = [1009, 2003, 4099, 10007];

/** 1..maxLength members with unique ids; weights 1..10 (integers) or fractional. */
function membersArb(maxLength = 40): fc.Arbitrary<MaglevMember[]> {
  return fc.uniqueArray(
    fc.record({
      id: fc.string({ minLength: 1, maxLength: 8 }),
      weight: fc.oneof(fc.integer({ min: 1, max: 10 }), fc.double({ min: 0.05, max: 20, noNaN: true })),
    }),
    { selector: (m) => m.id, minLength: 1, maxLength },
  );
}

/** The smallest test prime with at least 100 slots per member. */
function sizeFor(n: number): number {
  return PRIMES.find((p) => p >= 100 * n) ?? DEFAULT_MAGLEV_TABLE_SIZE;
}

function counts(table: ReturnType<typeof buildMaglevTable>): Map<string, number> {
  const out = new Map<string, number>();
  for (const index of table.entries) {
    const id = table.ids[index]!;
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

describe('maglev: the table', () => {
  it('fills every slot, deterministically, whatever the order of the members', () => {
    fc.assert(
      fc.property(membersArb(), fc.nat(), (members, seed) => {
        const M = sizeFor(members.length);
        const table = buildMaglevTable(members, M);
        assert.equal(table.entries.length, M);
        for (const index of table.entries) assert.ok(index >= 0 && index < members.length);
        const random = seededRandom(seed);
        const shuffled = [...members].sort(() => random() - 0.5);
        assert.deepEqual(buildMaglevTable(shuffled, M), table);
      }),
      { seed: SEED, numRuns: 60 },
    );
  });

  it('stays the same from release to release (golden table)', () => {
    const table = buildMaglevTable(
      [
        { id: 'alpha', weight: 1 },
        { id: 'beta', weight: 2 },
        { id: 'gamma', weight: 1 },
      ],
      13,
    );
    assert.deepEqual(
      [...table.entries].map((i) => table.ids[i]),
      'alpha beta alpha beta gamma beta gamma beta alpha beta beta gamma alpha'.split(' '),
    );
  });

  it('balance: member i holds M w_i / W entries to within [-N w_i / W, +1] (+1 for rounding)', () => {
    fc.assert(
      fc.property(membersArb(), (members) => {
        const M = sizeFor(members.length);
        const N = members.length;
        const W = members.reduce((s, m) => s + m.weight, 0);
        const held = counts(buildMaglevTable(members, M));
        for (const m of members) {
          const deviation = (held.get(m.id) ?? 0) - (M * m.weight) / W;
          assert.ok(
            deviation <= 2 && deviation >= (-N * m.weight) / W - 1,
            `${m.id} (weight ${m.weight}): ${held.get(m.id)} entries, ideal ${((M * m.weight) / W).toFixed(1)}`,
          );
        }
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it('equal weights: every member within 1 entry of M / N at the default size', () => {
    const members = Array.from({ length: 100 }, (_, i) => ({ id: `backend-${i}`, weight: 1 }));
    const held = counts(buildMaglevTable(members));
    for (const [id, c] of held) assert.ok(Math.abs(c - 65537 / 100) <= 1, `${id}: ${c}`);
  });

  it('disruption on removal: entries moving between staying members <= removed share + 8% (3% on average)', () => {
    const fractions: number[] = [];
    fc.assert(
      fc.property(
        membersArb().filter((m) => m.length >= 2),
        fc.nat(),
        (members, pick) => {
          const M = sizeFor(members.length);
          const gone = members[pick % members.length]!;
          const before = buildMaglevTable(members, M);
          const after = buildMaglevTable(
            members.filter((m) => m !== gone),
            M,
          );
          let removed = 0;
          let collateral = 0;
          for (let s = 0; s < M; s++) {
            const was = before.ids[before.entries[s]!];
            const now = after.ids[after.entries[s]!];
            assert.notEqual(now, gone.id);
            if (was === gone.id) removed++;
            else if (was !== now) collateral++;
          }
          assert.ok(
            collateral <= removed + 0.08 * M,
            `removed ${gone.id} held ${removed} of ${M}; ${collateral} other entries moved`,
          );
          fractions.push(collateral / M);
        },
      ),
      { seed: SEED, numRuns: 150 },
    );
    const mean = fractions.reduce((s, x) => s + x, 0) / fractions.length;
    assert.ok(
      mean <= 0.03,
      `on average ${(mean * 100).toFixed(2)}% of the table moved between staying members`,
    );
  });

  it('disruption at scale: removing 1 of 100 equal members moves < 1% of the other entries', () => {
    const members = Array.from({ length: 100 }, (_, i) => ({ id: `backend-${i}`, weight: 1 }));
    const before = buildMaglevTable(members);
    const after = buildMaglevTable(members.filter((m) => m.id !== 'backend-42'));
    let collateral = 0;
    for (let s = 0; s < before.size; s++) {
      const was = before.ids[before.entries[s]!];
      if (was !== 'backend-42' && was !== after.ids[after.entries[s]!]) collateral++;
    }
    assert.ok(collateral / before.size < 0.01, `${collateral} entries moved`);
  });

  it('zero weights get nothing unless all are zero; no members, an empty table', () => {
    const t = buildMaglevTable(
      [
        { id: 'a', weight: 0 },
        { id: 'b', weight: 1 },
      ],
      101,
    );
    assert.deepEqual(t.ids, ['b']);
    const all = buildMaglevTable(
      [
        { id: 'a', weight: 0 },
        { id: 'b', weight: 0 },
      ],
      101,
    );
    assert.deepEqual(all.ids, ['a', 'b']);
    const empty = buildMaglevTable([], 101);
    assert.equal(maglevLookup(empty, 'x'), undefined);
  });

  it('validates the table size (a prime) and ids', () => {
    assert.ok(isPrime(65537) && isPrime(2) && isPrime(13) && !isPrime(1) && !isPrime(65536) && !isPrime(91));
    assert.throws(() => buildMaglevTable([], 1000), InvalidArgumentError);
    assert.throws(() => new MaglevPolicy({ tableSize: 65536 }), { code: 'USHER_ERR_INVALID_ARGUMENT' });
    assert.throws(() => new MaglevPolicy({ tableSize: 2 }), /prime/);
    assert.throws(() => new MaglevPolicy({ tableSize: 1.5 }), InvalidArgumentError);
    assert.throws(
      () =>
        buildMaglevTable(
          [
            { id: 'a', weight: 1 },
            { id: 'a', weight: 1 },
          ],
          13,
        ),
      /duplicate/,
    );
  });
});

describe('maglev: the policy', () => {
  const pool = [view('a', { weight: 1 }), view('b', { weight: 3 }), view('c', { health: 'draining' })];

  it('maps a key through hashKey(key) mod M, the same way on every instance', () => {
    const p1 = new MaglevPolicy({ tableSize: 1009 });
    const p2 = new MaglevPolicy({ tableSize: 1009 });
    const table = p1.table({ members: pool });
    fc.assert(
      fc.property(fc.oneof(fc.nat({ max: 0xffffffff }), fc.string()), (key) => {
        const id = p1.pick({ members: pool, key })?.id;
        assert.equal(id, table.ids[table.entries[hashKey(key) % 1009]!]);
        assert.equal(p2.pick({ members: [...pool].reverse(), key })?.id, id);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('builds the table once per eligible set and weights', () => {
    const policy = new MaglevPolicy();
    for (let i = 0; i < 50; i++) {
      const reported = pool.map((v) => ({
        ...v,
        load: { users: i, connections: i, inFlight: 0, cpu: 0, custom: {}, timestamp: i },
      }));
      policy.pick({ members: reported, key: i });
    }
    assert.equal(policy.builds, 1);
    policy.pick({ members: [view('a'), view('b', { weight: 3 })], key: 1 });
    assert.equal(policy.builds, 1, 'same ids and weights in new objects: no rebuild');
    policy.pick({ members: [view('a'), view('b', { weight: 3, health: 'down' })], key: 1 });
    assert.equal(policy.builds, 2, 'b went down: rebuild');
    policy.pick({ members: [view('a', { weight: 2 }), view('b', { weight: 3, health: 'down' })], key: 1 });
    assert.equal(policy.builds, 3, 'a weight change: rebuild');
  });

  it('a key keeps its member when an unrelated member leaves (most keys)', () => {
    const members = Array.from({ length: 20 }, (_, i) => view(`s${i}`));
    const policy = new MaglevPolicy();
    const keys = Array.from({ length: 2000 }, (_, i) => `session-${i}`);
    const before = keys.map((key) => policy.pick({ members, key })!.id);
    const fewer = members.filter((v) => v.member.id !== 's7');
    const after = keys.map((key) => policy.pick({ members: fewer, key })!.id);
    let moved = 0;
    before.forEach((id, i) => {
      if (id !== 's7' && id !== after[i]) moved++;
    });
    assert.ok(moved / keys.length < 0.03, `${moved} of ${keys.length} keys of staying members moved`);
  });
});
