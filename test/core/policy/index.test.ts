import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { seededRandom } from '../../../src/core/hash.js';
import {
  createPolicy,
  isPolicyName,
  LeastLoadedPolicy,
  MaglevPolicy,
  POLICY_NAMES,
  type RangesPolicy,
} from '../../../src/core/policy/index.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { upPool } from './support.js';

describe('createPolicy', () => {
  it('builds every named policy, whose name matches', () => {
    for (const name of POLICY_NAMES) {
      const policy = createPolicy(name);
      assert.equal(policy.name, name);
      assert.ok(policy.pick({ members: upPool(3), key: 'k' }) !== undefined);
    }
    assert.ok(isPolicyName('p2c') && !isPolicyName('high-water') && !isPolicyName(3));
  });

  it('passes options through', () => {
    assert.ok(
      createPolicy('least-loaded', { metric: 'custom.queue', normalizeByWeight: true }) instanceof
        LeastLoadedPolicy,
    );
    assert.ok(createPolicy('maglev', { tableSize: 251 }) instanceof MaglevPolicy);
    const ranges = createPolicy('ranges', { space: { lo: 0, hi: 99 }, buckets: 10 }) as RangesPolicy;
    assert.equal(ranges.allocation({ members: upPool(2) }).buckets, 10);
    const random = createPolicy('random', { random: seededRandom(1), metric: undefined } as never);
    assert.equal(random.name, 'random', 'undefined options are ignored');
  });

  it('rejects unknown names, unknown options and bad values with InvalidArgumentError', () => {
    const cases: Array<[() => unknown, RegExp]> = [
      [() => createPolicy('fastest'), /expected one of round-robin, .*got "fastest"/],
      [() => createPolicy('high-water'), /HighWaterScheduler/],
      [() => createPolicy('maglev', { tableSize: 1000 }), /tableSize: expected a prime/],
      [
        () => createPolicy('maglev', { tablesize: 65537 }),
        /unknown option "tablesize"; expected one of tableSize, random/,
      ],
      [() => createPolicy('round-robin', { random: Math.random }), /expected no options/],
      [
        () => createPolicy('least-loaded', { metric: 'memory' }),
        /metric: expected one of users, .*got "memory"/,
      ],
      [
        () => createPolicy('least-loaded', { normalizeByWeight: 'yes' }),
        /normalizeByWeight: expected true or false, got "yes"/,
      ],
      [() => createPolicy('p2c', { random: 0.5 }), /random: expected a function/],
      [() => createPolicy('ranges', { space: [0, 10] }), /space: expected \{ lo, hi \}/],
      [() => createPolicy('ranges', { buckets: 0 }), /buckets: expected an integer/],
      [() => createPolicy('random', null as never), /options: expected an object/],
    ];
    for (const [make, message] of cases) {
      assert.throws(make, (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, `not an InvalidArgumentError: ${e}`);
        assert.equal(e.code, 'USHER_ERR_INVALID_ARGUMENT');
        assert.match(e.message, message);
        return true;
      });
    }
  });
});
