/**
 * Properties every policy must have: it never returns a down or draining member (nor a suspect
 * one while some member is up), it returns undefined exactly when nothing is eligible, and what
 * it returns is one of the members it was given, also when one instance sees a changing pool.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { seededRandom } from '../../../src/core/hash.js';
import { eligible, type MemberView, makeMember } from '../../../src/core/model.js';
import {
  createPolicy,
  HighWaterScheduler,
  POLICY_NAMES,
  type Policy,
} from '../../../src/core/policy/index.js';
import { poolArb, SEED, upPool, view } from './support.js';

type Factory = (seed: number) => Policy;

const factories: Array<[string, Factory]> = [
  ...POLICY_NAMES.map((name): [string, Factory] => [
    name,
    (seed) => createPolicy(name, name === 'round-robin' ? {} : { random: seededRandom(seed) }),
  ]),
  [
    'high-water (tryAcquire)',
    (seed) => {
      const scheduler = new HighWaterScheduler({ random: seededRandom(seed) });
      return {
        name: 'high-water',
        pick: (request) => {
          const lease = scheduler.tryAcquire(request.members);
          lease?.release();
          return lease?.member;
        },
      };
    },
  ],
];

const keyArb = fc.option(fc.oneof(fc.nat({ max: 0xffffffff }), fc.string({ maxLength: 12 })), {
  nil: undefined,
});

function checkPick(pool: readonly MemberView[], picked: ReturnType<Policy['pick']>, name: string): void {
  const allowed = eligible(pool);
  if (allowed.length === 0) {
    assert.equal(picked, undefined, `${name}: nothing eligible, expected undefined`);
    return;
  }
  assert.ok(picked !== undefined, `${name}: ${allowed.length} eligible members, got undefined`);
  const from = pool.find((v) => v.member === picked);
  assert.ok(from !== undefined, `${name}: returned a member that is not in the pool`);
  assert.ok(allowed.includes(from), `${name}: returned ${from.member.id}, which is ${from.health}`);
  if (name === 'priority-load') {
    const lowest = Math.min(...allowed.map((v) => v.member.group));
    assert.equal(from.member.group, lowest, 'priority-load: not from the lowest live group');
  }
}

describe('every policy', () => {
  for (const [name, make] of factories) {
    it(`${name}: never a down, draining (or needless suspect) member; undefined iff nothing eligible`, () => {
      fc.assert(
        fc.property(poolArb(), keyArb, fc.nat(), (pool, key, seed) => {
          const policy = make(seed);
          for (let i = 0; i < 5; i++) checkPick(pool, policy.pick({ members: pool, key }), name);
        }),
        { seed: SEED, numRuns: 150 },
      );
    });

    it(`${name}: one instance stays correct while the pool changes`, () => {
      fc.assert(
        fc.property(
          fc.array(poolArb(), { minLength: 1, maxLength: 6 }),
          keyArb,
          fc.nat(),
          (pools, key, seed) => {
            const policy = make(seed);
            for (const pool of pools) {
              checkPick(pool, policy.pick({ members: pool, key }), name);
              checkPick(pool, policy.pick({ members: pool, key }), name);
            }
          },
        ),
        { seed: SEED, numRuns: 80 },
      );
    });

    it(`${name}: serves a member as it is now after it changed its address (same id and weight)`, () => {
      const policy = make(3);
      const at = (address: string) => [
        { member: makeMember({ id: 'solo', addresses: [address] }), health: 'up' as const },
      ];
      for (let i = 0; i < 3; i++)
        assert.deepEqual(policy.pick({ members: at('10.0.0.1'), key: i })?.addresses, ['10.0.0.1']);
      assert.deepEqual(policy.pick({ members: at('10.0.0.2'), key: 1 })?.addresses, ['10.0.0.2']);
    });

    it(`${name}: undefined for an empty pool and for an all-down/draining pool`, () => {
      const policy = make(1);
      assert.equal(policy.pick({ members: [] }), undefined);
      const dead = [view('a', { health: 'down' }), view('b', { health: 'draining' })];
      assert.equal(policy.pick({ members: dead, key: 7 }), undefined);
      assert.equal(policy.pick({ members: dead, key: 'k' }), undefined);
    });

    it(`${name}: falls back to suspect members only when none is up`, () => {
      const policy = make(2);
      const pool = [view('a', { health: 'down' }), view('s', { health: 'suspect' })];
      assert.equal(policy.pick({ members: pool, key: 3 })?.id, 's');
      const withUp = [...upPool(1), view('s', { health: 'suspect' })];
      for (let i = 0; i < 20; i++) assert.equal(policy.pick({ members: withUp, key: i })?.id, 'm0');
    });
  }
});
