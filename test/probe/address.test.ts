import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors.js';
import { formatAddress, normalizeAddress, parseAddress, unmapIPv4 } from '../../src/probe/address.js';

const SEED = 0x5eed;

describe('probe addresses', () => {
  it('parses IPv4 dotted quads to 4 bytes', () => {
    assert.deepEqual(parseAddress('192.0.2.1'), { family: 4, bytes: new Uint8Array([192, 0, 2, 1]) });
    assert.deepEqual(parseAddress('0.0.0.0'), { family: 4, bytes: new Uint8Array(4) });
    assert.deepEqual(parseAddress('255.255.255.255'), { family: 4, bytes: new Uint8Array(4).fill(255) });
  });

  it('parses IPv6 in every textual form', () => {
    const v6 = (text: string) => {
      const p = parseAddress(text);
      assert.equal(p?.family, 6, text);
      return [...p!.bytes];
    };
    assert.deepEqual(v6('::'), new Array(16).fill(0));
    assert.deepEqual(v6('::1'), [...new Array(15).fill(0), 1]);
    assert.deepEqual(v6('1::'), [0, 1, ...new Array(14).fill(0)]);
    assert.deepEqual(v6('::ffff:1.2.3.4'), [...new Array(10).fill(0), 0xff, 0xff, 1, 2, 3, 4]);
    assert.deepEqual(v6('::FFFF:0102:0304'), v6('::ffff:1.2.3.4'));
    assert.deepEqual(v6('0:0:0:0:0:ffff:1.2.3.4'), v6('::ffff:1.2.3.4'));
    assert.deepEqual(v6('2001:DB8:0000:0000:0000:0000:0000:0001'), v6('2001:db8::1'));
    assert.deepEqual(v6('1:2:3:4:5:6:7:8'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    assert.deepEqual(v6('1:2:3:4:5:6:7::'), v6('1:2:3:4:5:6:7:0'));
    assert.deepEqual(v6('::2:3:4:5:6:7:8'), v6('0:2:3:4:5:6:7:8'));
    assert.deepEqual(v6('1:2:3:4:5:6:1.2.3.4'), v6('1:2:3:4:5:6:102:304'));
    assert.deepEqual(v6('ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255'), new Array(16).fill(255));
  });

  it('formats RFC 5952 canonical text (its section 4 examples)', () => {
    const cases: [string, string][] = [
      ['2001:db8:0:0:0:0:2:1', '2001:db8::2:1'], // 4.2.1 shorten as much as possible
      ['2001:0db8::0001', '2001:db8::1'], // 4.1 no leading zeros
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2 a single 0 group is not shortened
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3 the longest run
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3 the first of equal runs
      ['2001:DB8::ABCD', '2001:db8::abcd'], // 4.3 lowercase
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['1:0:0:0:0:0:0:0', '1::'],
      ['0:0:0:0:0:ffff:c000:0201', '::ffff:192.0.2.1'], // section 5: mapped IPv4
      ['::ffff:0.0.0.0', '::ffff:0.0.0.0'],
      ['::1.2.3.4', '::102:304'], // deprecated IPv4-compatible: plain hex
      ['fe80:0:0:0:1:0:0:0', 'fe80::1:0:0:0'], // equal runs again: the first wins
      ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['010.0.0.1'.slice(1), '10.0.0.1'],
    ];
    for (const [input, canonical] of cases) assert.equal(normalizeAddress(input), canonical, input);
  });

  it('refuses malformed text without throwing', () => {
    const bad = [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1.2.3.-1',
      '01.2.3.4',
      '1.2.3.00',
      '1..2.3',
      '1.2.3.4 ',
      ' 1.2.3.4',
      '0x1.2.3.4',
      '1e1.2.3.4',
      '١.٢.٣.٤',
      '1::2::3',
      ':::',
      '::::',
      ':1::',
      '1::2:',
      ':',
      'fe80::1%eth0',
      'fe80::1%1',
      '[::1]',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8::',
      '::1:2:3:4:5:6:7:8',
      '12345::',
      'g::',
      '::1.2.3',
      '::256.0.0.0',
      '::ffff:01.2.3.4',
      '1.2.3.4::',
      '::1.2.3.4:5',
      '1:2:3:4:5:6:7:1.2.3.4',
      'localhost',
      '1.2.3.4/24',
    ];
    for (const text of bad) {
      assert.equal(parseAddress(text), undefined, JSON.stringify(text));
      assert.equal(normalizeAddress(text), undefined, JSON.stringify(text));
      assert.equal(unmapIPv4(text), text);
    }
    for (const notText of [undefined, null, 1, {}] as unknown as string[])
      assert.equal(parseAddress(notText), undefined);
  });

  it('round-trips random IPv4 and IPv6 bytes through canonical text', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ minLength: 4, maxLength: 4 }).map((bytes) => ({ family: 4 as const, bytes })),
          fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => ({ family: 6 as const, bytes })),
          // Mostly-zero IPv6 exercises the `::` choice.
          fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff), { minLength: 8, maxLength: 8 }).map((groups) => ({
            family: 6 as const,
            bytes: new Uint8Array(groups.flatMap((g) => [g >> 8, g & 0xff])),
          })),
        ),
        ({ family, bytes }) => {
          const text = formatAddress(family, bytes);
          assert.deepEqual(parseAddress(text), { family, bytes });
          assert.equal(normalizeAddress(text), text);
          assert.equal(text, text.toLowerCase());
          assert.ok(!text.includes(':::'));
          assert.equal(isIP(text), family, 'node agrees it is an address of that family');
        },
      ),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it("agrees with node's own IPv6 parser on what is an address", () => {
    const piece = fc.oneof(
      fc.constantFrom(
        '',
        ':',
        '::',
        '0',
        '1',
        'ffff',
        'FFFF',
        '12345',
        '.',
        '1.2.3.4',
        '256',
        '01',
        'g',
        '%',
      ),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), maxLength: 5 }),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const text = pieces.join('');
        const node = isIP(text);
        const ours = parseAddress(text)?.family ?? 0;
        // Node accepts zone ids (`%eth0`) and leading zeros in IPv4; we refuse both.
        if (text.includes('%') || (node !== 0 && ours === 0 && /(^|[.:])0\d/.test(text))) return;
        assert.equal(ours, node, JSON.stringify(text));
      }),
      { seed: SEED, numRuns: 5000 },
    );
  });

  it('unmapIPv4 turns IPv4-mapped IPv6 into IPv4 and leaves everything else as is', () => {
    assert.equal(unmapIPv4('::ffff:1.2.3.4'), '1.2.3.4');
    assert.equal(unmapIPv4('::FFFF:1.2.3.4'), '1.2.3.4');
    assert.equal(unmapIPv4('::ffff:0102:0304'), '1.2.3.4');
    assert.equal(unmapIPv4('1.2.3.4'), '1.2.3.4');
    assert.equal(unmapIPv4('::1'), '::1');
    assert.equal(unmapIPv4('::1.2.3.4'), '::1.2.3.4');
    assert.equal(unmapIPv4('::ffff:1:2:3:4'), '::ffff:1:2:3:4');
    assert.equal(unmapIPv4('2001:DB8::1'), '2001:DB8::1', 'not mapped: unchanged, not even normalised');
    assert.equal(
      normalizeAddress('::ffff:1.2.3.4'),
      '::ffff:1.2.3.4',
      'normalizeAddress keeps the mapped form',
    );
  });

  it('formatAddress refuses bytes of the wrong length', () => {
    assert.throws(() => formatAddress(4, new Uint8Array(16)), InvalidArgumentError);
    assert.throws(() => formatAddress(6, new Uint8Array(4)), InvalidArgumentError);
    assert.throws(() => formatAddress(5 as 4, new Uint8Array(4)), InvalidArgumentError);
  });
});
