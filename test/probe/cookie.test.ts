import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors.js';
import { COOKIE_BYTES, CookieJar } from '../../src/probe/cookie.js';

const SEED = 0x5eed;
const SLOT_MS = 30_000;

/** A jar with a clock the test moves by hand. */
function jarAt(start: number, secret: Uint8Array | string = 'test secret') {
  const clock = { ms: start };
  const jar = new CookieJar({ secret, now: () => clock.ms });
  return { jar, clock };
}

const client = { address: '198.51.100.7', port: 51234 };

describe('probe cookies', () => {
  it('makes 16-byte cookies that match the documented HMAC', () => {
    const start = 1_700_000_000_000;
    const { jar } = jarAt(start, 'k');
    const cookie = jar.make(client);
    assert.equal(cookie.length, COOKIE_BYTES);
    const slot = Math.floor(start / 1000 / 30);
    const input = Buffer.from([4, 198, 51, 100, 7, 51234 >> 8, 51234 & 0xff, 0, 0, 0, 0]);
    input.writeUInt32BE(slot, 7);
    const reference = createHmac('sha256', 'k').update(input).digest().subarray(0, 16);
    assert.deepEqual([...cookie], [...reference]);
  });

  it('is valid in the same and the next slot, invalid two slots later', () => {
    const start = 1_700_000_000_000 - (1_700_000_000_000 % SLOT_MS); // the start of a slot
    const { jar, clock } = jarAt(start);
    const cookie = jar.make(client);
    assert.ok(jar.check(client, cookie), 'same instant');
    clock.ms = start + SLOT_MS - 1;
    assert.ok(jar.check(client, cookie), 'end of the same slot');
    clock.ms = start + SLOT_MS;
    assert.ok(jar.check(client, cookie), 'start of the next slot');
    clock.ms = start + 2 * SLOT_MS - 1;
    assert.ok(jar.check(client, cookie), 'end of the next slot');
    clock.ms = start + 2 * SLOT_MS;
    assert.ok(!jar.check(client, cookie), 'two slots later');
    clock.ms = start - 1;
    assert.ok(!jar.check(client, cookie), 'a slot earlier (made in the future)');
  });

  it('honours slotSeconds', () => {
    const clock = { ms: 0 };
    const jar = new CookieJar({ secret: 's', slotSeconds: 5, now: () => clock.ms });
    const cookie = jar.make(client);
    clock.ms = 9_999;
    assert.ok(jar.check(client, cookie));
    clock.ms = 10_000;
    assert.ok(!jar.check(client, cookie));
  });

  it('is invalid for another address, another port or another secret', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 2 ** 41 }),
        (ip, port, now) => {
          const { jar } = jarAt(now);
          const address = ip.join('.');
          const cookie = jar.make({ address, port });
          assert.ok(jar.check({ address, port }, cookie));
          const otherIp = [...ip];
          otherIp[3] = (otherIp[3]! + 1) & 0xff;
          assert.ok(!jar.check({ address: otherIp.join('.'), port }, cookie), 'other address');
          assert.ok(!jar.check({ address, port: (port + 1) & 0xffff }, cookie), 'other port');
          assert.ok(!jarAt(now, 'other secret').jar.check({ address, port }, cookie), 'other secret');
        },
      ),
      { seed: SEED, numRuns: 300 },
    );
    const { jar } = jarAt(0);
    assert.ok(!jar.check({ address: '::ffff:c633:6407', port: 1 }, jar.make({ address: '::1', port: 1 })));
    assert.ok(!jar.check({ address: '2001:db8::1', port: 1 }, jar.make({ address: '2001:db8::2', port: 1 })));
  });

  it('gives mapped and plain IPv4, and any IPv6 spelling, the same cookie', () => {
    const { jar } = jarAt(1_700_000_000_000);
    const plain = jar.make({ address: '192.0.2.1', port: 9 });
    assert.deepEqual(jar.make({ address: '::ffff:192.0.2.1', port: 9 }), plain);
    assert.deepEqual(jar.make({ address: '::FFFF:c000:201', port: 9 }), plain);
    assert.ok(jar.check({ address: '::ffff:192.0.2.1', port: 9 }, plain));
    assert.deepEqual(
      jar.make({ address: '2001:DB8:0::1', port: 9 }),
      jar.make({ address: '2001:db8::1', port: 9 }),
    );
  });

  it('check refuses missing, short and long cookies and bad endpoints without throwing', () => {
    const { jar } = jarAt(0);
    const cookie = jar.make(client);
    assert.equal(jar.check(client, undefined), false);
    assert.equal(jar.check(client, cookie.subarray(0, 15)), false);
    assert.equal(jar.check(client, new Uint8Array([...cookie, 0])), false);
    assert.equal(jar.check({ address: 'nope', port: 1 }, cookie), false);
    assert.equal(jar.check({ address: client.address, port: 70000 }, cookie), false);
    assert.equal(jar.check({ address: client.address, port: 1.5 }, cookie), false);
    assert.equal(jar.check(undefined as never, cookie), false);
    assert.throws(() => jar.make({ address: 'fe80::1%eth0', port: 1 }), InvalidArgumentError);
    assert.throws(() => jar.make({ address: '1.2.3.4', port: -1 }), InvalidArgumentError);
  });

  it('takes the secret from USHER_PROBE_SECRET, else a random one per jar', () => {
    const saved = process.env.USHER_PROBE_SECRET;
    try {
      process.env.USHER_PROBE_SECRET = 'shared by every assigner';
      const a = new CookieJar({ now: () => 0 });
      const b = new CookieJar({ now: () => 0 });
      assert.ok(b.check(client, a.make(client)), 'same environment secret, same cookies');
      assert.ok(jarAt(0, 'shared by every assigner').jar.check(client, a.make(client)));
      delete process.env.USHER_PROBE_SECRET;
      const c = new CookieJar({ now: () => 0 });
      const d = new CookieJar({ now: () => 0 });
      assert.ok(!d.check(client, c.make(client)), 'random secrets differ');
      assert.ok(c.check(client, c.make(client)));
      const bytes = new Uint8Array([1, 2, 3]);
      const e = new CookieJar({ secret: bytes, now: () => 0 });
      const before = e.make(client);
      bytes.fill(0);
      assert.deepEqual(e.make(client), before, 'the jar keeps its own copy of the secret');
    } finally {
      if (saved === undefined) delete process.env.USHER_PROBE_SECRET;
      else process.env.USHER_PROBE_SECRET = saved;
    }
  });

  it('refuses an empty secret and a bad slot length', () => {
    assert.throws(() => new CookieJar({ secret: '' }), InvalidArgumentError);
    assert.throws(() => new CookieJar({ secret: new Uint8Array(0) }), InvalidArgumentError);
    assert.throws(() => new CookieJar({ slotSeconds: 0 }), InvalidArgumentError);
    assert.throws(() => new CookieJar({ slotSeconds: Number.NaN }), InvalidArgumentError);
  });
});
