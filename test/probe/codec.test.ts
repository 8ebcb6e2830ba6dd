import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InvalidArgumentError } from '../../src/errors.js';
import { formatAddress } from '../../src/probe/address.js';
import { decode, encode, encodedSize, isProbeDatagram, splitBatch } from '../../src/probe/codec.js';
import {
  type DecodeError,
  Flag,
  HEADER_BYTES,
  Kind,
  type KindName,
  MAX_MESSAGE_BYTES,
  PADDED_REQUEST_BYTES,
  type ProbeMessage,
  Tag,
} from '../../src/probe/messages.js';

const SEED = 0x5eed;
const utf8 = (s: string) => new TextEncoder().encode(s);
const token = (fill: number) => new Uint8Array(16).fill(fill);

// ---------------------------------------------------------------------------------------------
// arbitraries

/** 1..64 bytes of UTF-8: ASCII, any code point (multi-byte), grapheme clusters. */
const text64 = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 64 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
  )
  .filter((s) => {
    const n = utf8(s).length;
    return n >= 1 && n <= 64;
  });
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 0xffffffff));
const bytes16 = fc.uint8Array({ minLength: 16, maxLength: 16 });
const endpoint = fc.record(
  {
    address: fc.oneof(
      fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => formatAddress(4, b)),
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => formatAddress(6, b)),
      fc.constantFrom('::', '::1', '::ffff:192.0.2.1', '2001:db8::1', '0.0.0.0', '255.255.255.255'),
    ),
    port: u16,
  },
  { noNullPrototype: true },
);
const fields = fc.record(
  {
    app: text64,
    incarnation: text64,
    cookie: bytes16,
    session: bytes16,
    member: text64,
    site: text64,
    error: fc.record(
      { code: u16, message: fc.string({ unit: 'binary', maxLength: 40 }) },
      { noNullPrototype: true },
    ),
    body: fc.jsonValue({ maxDepth: 3 }),
    seq: u32,
    requestSize: u16,
    user: text64,
    data: fc.uint8Array({ minLength: 1, maxLength: 300 }),
    mac: bytes16,
  },
  { requiredKeys: [], noNullPrototype: true },
);
const message: fc.Arbitrary<ProbeMessage> = fc
  .record(
    {
      kind: fc.constantFrom(...(Object.keys(Kind) as KindName[])),
      requestId: u32,
      flags: u8,
      endpoint,
      padTo: fc.oneof(fc.constant(PADDED_REQUEST_BYTES), fc.integer({ min: 0, max: 1500 })),
    },
    { requiredKeys: ['kind', 'requestId'], noNullPrototype: true },
  )
  .chain((head) => fields.map((f) => ({ ...head, ...f })))
  .filter((m) => encodedSize(m) <= MAX_MESSAGE_BYTES);

/** What decode(encode(m)) must give: m without padTo, flags present (PADDED when padded), body as JSON. */
function expected(m: ProbeMessage): ProbeMessage {
  const { padTo, ...rest } = m;
  const natural = encodedSize({ ...m, padTo: undefined });
  const padded = padTo !== undefined && padTo > natural;
  const out: Record<string, unknown> = { ...rest, flags: (m.flags ?? 0) | (padded ? Flag.PADDED : 0) };
  if ('body' in m) out.body = JSON.parse(JSON.stringify(m.body));
  return out as unknown as ProbeMessage;
}

// ---------------------------------------------------------------------------------------------
// handcrafted datagrams

interface Raw {
  length?: number;
  type?: number;
  version?: number;
  kind?: number;
  flags?: number;
  family?: number;
  requestId?: number;
  port?: number;
  fieldsLength?: number;
  address?: number[];
  fields?: readonly (readonly [tag: number, value: Uint8Array | number[]])[];
  /** Raw bytes appended after the fields (padding, or garbage for truncation cases). */
  tail?: number[];
}

/** Builds a datagram byte by byte, with correct length and fieldsLength unless overridden. */
function raw(r: Raw = {}): Uint8Array {
  const tlvs: number[] = [];
  for (const [tag, value] of r.fields ?? []) tlvs.push(tag, value.length >> 8, value.length & 0xff, ...value);
  const address = r.address ?? [];
  const body = [...address, ...tlvs, ...(r.tail ?? [])];
  const out = new Uint8Array(HEADER_BYTES + body.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, r.length ?? out.length);
  view.setUint16(2, r.type ?? 0xffff);
  out[4] = r.version ?? 1;
  out[5] = r.kind ?? Kind.PROBE;
  out[6] = r.flags ?? 0;
  out[7] = r.family ?? (address.length === 4 ? 4 : address.length === 16 ? 6 : 0);
  view.setUint32(8, r.requestId ?? 1);
  view.setUint16(12, r.port ?? 0);
  view.setUint16(14, r.fieldsLength ?? tlvs.length);
  out.set(body, HEADER_BYTES);
  return out;
}

function refused(bytes: Uint8Array, error: DecodeError, why: string) {
  assert.deepEqual(decode(bytes), { ok: false, error }, why);
}

function decoded(bytes: Uint8Array): ProbeMessage {
  const r = decode(bytes);
  assert.ok(r.ok, `expected a message, got ${r.ok ? '' : r.error}`);
  return r.message;
}

// ---------------------------------------------------------------------------------------------

describe('probe codec', () => {
  it('round trip: decode(encode(m)) is m for arbitrary messages of every kind', () => {
    fc.assert(
      fc.property(message, (m) => {
        const bytes = encode(m);
        assert.equal(bytes.length, Math.max(encodedSize({ ...m, padTo: undefined }), m.padTo ?? 0));
        assert.equal(bytes.length, encodedSize(m));
        assert.ok(isProbeDatagram(bytes));
        assert.deepStrictEqual(decode(bytes), { ok: true, message: expected(m) });
      }),
      { seed: SEED, numRuns: 2000 },
    );
  });

  it('round trip: each kind with the fields the protocol doc gives it', () => {
    const s = token(7);
    const c = token(9);
    const member = { address: '2001:db8::10', port: 40000 };
    const client = { address: '198.51.100.7', port: 51234 };
    const examples: ProbeMessage[] = [
      { kind: 'PROBE', requestId: 1, app: 'chess', cookie: c, user: 'Zoë', padTo: PADDED_REQUEST_BYTES },
      {
        kind: 'PROBE_RESPONSE',
        requestId: 1,
        endpoint: member,
        app: 'chess',
        incarnation: 'w1',
        session: s,
        member: 'm-1',
        site: 'fra',
      },
      {
        kind: 'FORWARD',
        requestId: 1,
        flags: Flag.VALIDATED,
        endpoint: client,
        app: 'chess',
        session: s,
        requestSize: 256,
      },
      {
        kind: 'NOTIFY',
        requestId: 1,
        endpoint: client,
        app: 'chess',
        incarnation: 'w1',
        session: s,
        user: 'Zoë',
      },
      { kind: 'HEARTBEAT', requestId: 2, session: s, seq: 0xffffffff },
      { kind: 'HEARTBEAT_ACK', requestId: 2, session: s, seq: 0 },
      { kind: 'CATALOG', requestId: 3, padTo: PADDED_REQUEST_BYTES },
      {
        kind: 'CATALOG_RESPONSE',
        requestId: 3,
        body: { apps: [{ name: 'chess', incarnations: [{ id: 'w1', members: 2, users: 5 }] }] },
      },
      { kind: 'LOBBY', requestId: 4, session: s },
      {
        kind: 'LOBBY_RESPONSE',
        requestId: 4,
        body: { app: 'chess', incarnation: 'w1', member: 'm-1', users: ['a', 'ü'] },
      },
      { kind: 'RETRY', requestId: 3, cookie: c },
      { kind: 'ERROR', requestId: 1, error: { code: 2, message: 'no member available' } },
      { kind: 'BYE', requestId: 5, session: s },
      {
        kind: 'RELAY',
        requestId: 6,
        app: 'chess',
        incarnation: 'w1',
        member: 'm-1',
        site: 'fra',
        data: utf8('{"type":"pos","x":1}'),
        mac: token(3),
      },
      {
        kind: 'NOTIFY_BATCH',
        requestId: 0,
        data: new Uint8Array([
          ...encode({ kind: 'NOTIFY', requestId: 1, app: 'chess', session: s }),
          ...encode({ kind: 'NOTIFY', requestId: 2, app: 'chess', session: s }),
        ]),
      },
    ];
    assert.deepEqual(new Set(examples.map((m) => m.kind)), new Set(Object.keys(Kind)));
    for (const m of examples) assert.deepStrictEqual(decoded(encode(m)), expected(m), m.kind);
  });

  it('lays out the seed header: length, 0xFFFF marker, member address at offset 16', () => {
    const v4 = encode({
      kind: 'PROBE_RESPONSE',
      requestId: 0x01020304,
      endpoint: { address: '192.0.2.33', port: 0x1f90 },
      app: 'a',
      session: token(1),
    });
    const view = new DataView(v4.buffer);
    assert.equal(view.getUint16(0), v4.length);
    assert.deepEqual([...v4.subarray(2, 8)], [0xff, 0xff, 1, Kind.PROBE_RESPONSE, 0, 4]);
    assert.equal(view.getUint32(8), 0x01020304);
    assert.equal(view.getUint16(12), 0x1f90);
    assert.equal(view.getUint16(14), v4.length - 20);
    assert.deepEqual([...v4.subarray(16, 20)], [192, 0, 2, 33]);
    assert.deepEqual(
      [...v4.subarray(20, 24)],
      [Tag.app, 0, 1, 'a'.charCodeAt(0)],
      'fields follow the address',
    );

    const v6 = encode({
      kind: 'PROBE_RESPONSE',
      requestId: 1,
      endpoint: { address: '2001:db8::1', port: 1 },
    });
    assert.equal(v6.length, 32);
    assert.equal(v6[7], 6);
    assert.deepEqual([...v6.subarray(16, 32)], [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1]);

    const none = encode({ kind: 'HEARTBEAT', requestId: 1 });
    assert.deepEqual([...none], [0, 16, 0xff, 0xff, 1, Kind.HEARTBEAT, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  });

  it('writes fields in tag order whatever the object key order', () => {
    const bytes = encode({
      kind: 'PROBE',
      requestId: 1,
      user: 'u',
      cookie: token(0),
      app: 'a',
    } as ProbeMessage);
    const tags: number[] = [];
    for (let pos = HEADER_BYTES; pos < bytes.length; ) {
      tags.push(bytes[pos]!);
      pos += 3 + ((bytes[pos + 1]! << 8) | bytes[pos + 2]!);
    }
    assert.deepEqual(tags, [Tag.app, Tag.cookie, Tag.user]);
  });

  it('pads requests with zeros to padTo and sets PADDED; never pads below the natural size', () => {
    const probe = encode({ kind: 'PROBE', requestId: 9, app: 'chess', padTo: PADDED_REQUEST_BYTES });
    assert.equal(probe.length, PADDED_REQUEST_BYTES);
    assert.equal(probe[6]! & Flag.PADDED, Flag.PADDED);
    assert.equal(new DataView(probe.buffer).getUint16(0), PADDED_REQUEST_BYTES);
    assert.ok(probe.subarray(HEADER_BYTES + 3 + 5).every((b) => b === 0));

    const exact = encode({ kind: 'PROBE', requestId: 9, app: 'chess', padTo: 16 + 8 });
    assert.equal(exact.length, 24);
    assert.equal(exact[6], 0, 'no padding, no PADDED flag');

    const combined = decoded(encode({ kind: 'FORWARD', requestId: 1, flags: Flag.VALIDATED, padTo: 100 }));
    assert.equal(combined.flags, Flag.VALIDATED | Flag.PADDED);
  });

  it('a PROBE_RESPONSE with typical names fits in the padded PROBE it answers', () => {
    const request = encode({
      kind: 'PROBE',
      requestId: 1,
      app: 'a'.repeat(64),
      incarnation: 'i'.repeat(64),
      padTo: 256,
    });
    const response = encode({
      kind: 'PROBE_RESPONSE',
      requestId: 1,
      endpoint: { address: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', port: 65535 },
      app: 'a'.repeat(64),
      incarnation: 'i'.repeat(64),
      session: token(1),
      member: 'm'.repeat(32),
      site: 's'.repeat(33),
    });
    // 63 bytes + the four names with an IPv6 address (docs/protocols/probe.md).
    assert.equal(response.length, 63 + 64 + 64 + 32 + 33);
    assert.ok(response.length <= request.length);
  });

  it('keeps edge values: 64-byte multi-byte text, a leading BOM, null body, empty error text', () => {
    const m: ProbeMessage = {
      kind: 'ERROR',
      requestId: 0,
      app: 'é'.repeat(32),
      incarnation: '\u{1F600}'.repeat(16),
      member: '\uFEFFm',
      body: null,
      error: { code: 0xffff, message: '' },
    };
    assert.deepStrictEqual(decoded(encode(m)), { ...m, flags: 0 });
    assert.deepStrictEqual(decoded(encode({ kind: 'BYE', requestId: 1, body: 0 })).body, 0);
    assert.deepStrictEqual(decoded(encode({ kind: 'BYE', requestId: 1, body: '' })).body, '');
  });

  it('decodes from a Buffer slice of a larger pool and copies tokens out of it', () => {
    const bytes = encode({ kind: 'HEARTBEAT', requestId: 3, session: token(5), seq: 77 });
    const pool = Buffer.alloc(bytes.length + 100, 0xaa);
    pool.set(bytes, 37);
    const slice = pool.subarray(37, 37 + bytes.length);
    const m = decoded(slice);
    assert.equal(m.seq, 77);
    assert.equal(Object.getPrototypeOf(m.session), Uint8Array.prototype);
    pool.fill(0);
    assert.deepEqual(m.session, token(5), 'the session does not alias the datagram');

    const relay = encode({ kind: 'RELAY', requestId: 4, incarnation: 'w', data: utf8('xyz'), mac: token(6) });
    const pool2 = Buffer.alloc(relay.length + 50, 0xbb);
    pool2.set(relay, 11);
    const r = decoded(pool2.subarray(11, 11 + relay.length));
    pool2.fill(0);
    assert.equal(Object.getPrototypeOf(r.data), Uint8Array.prototype);
    assert.deepEqual(r.data, utf8('xyz'), 'the data does not alias the datagram');
    assert.deepEqual(r.mac, token(6), 'nor does the mac');
  });

  it('skips unknown tags and ignores padding, zero or not', () => {
    const m = decoded(
      raw({
        fields: [
          [Tag.app, utf8('a')],
          [0, [1, 2]],
          [200, []],
        ],
        tail: [9, 9, 9],
      }),
    );
    assert.deepStrictEqual(m, { kind: 'PROBE', requestId: 1, flags: 0, app: 'a' });
  });

  it('reports the address in canonical text and keeps unknown flag bits', () => {
    const m = decoded(
      raw({ flags: 0xff, port: 7, address: [...new Array(10).fill(0), 0xff, 0xff, 10, 0, 0, 1] }),
    );
    assert.deepStrictEqual(m.endpoint, { address: '::ffff:10.0.0.1', port: 7 });
    assert.equal(m.flags, 0xff);
  });

  it('refuses each malformed datagram with its reason', () => {
    const ok = raw({ fields: [[Tag.app, utf8('a')]] });
    assert.ok(decode(ok).ok);

    refused(
      new Uint8Array([0, 16, 0x12, 0x34, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
      'not-probe',
      'application data',
    );
    refused(raw({ type: 0xfffe }), 'not-probe', 'marker 0xFFFE');
    refused(new Uint8Array([0, 3, 0xff]), 'not-probe', 'three bytes');
    refused(new Uint8Array(0), 'not-probe', 'empty');
    refused(new Uint8Array([0, 4, 0xff, 0xff]), 'short', 'four bytes');
    refused(raw().subarray(0, 15), 'short', 'fifteen bytes');
    const big = raw({ tail: new Array(MAX_MESSAGE_BYTES + 1 - HEADER_BYTES).fill(0) });
    refused(big, 'too-large', 'one byte over the maximum');
    assert.ok(decode(raw({ tail: new Array(MAX_MESSAGE_BYTES - HEADER_BYTES).fill(0) })).ok, 'the maximum');
    refused(raw({ length: 17 }), 'length-mismatch', 'length longer than the datagram');
    refused(raw({ length: 15, tail: [0] }), 'length-mismatch', 'length shorter than the datagram');
    refused(raw({ version: 0 }), 'bad-version', 'version 0');
    refused(raw({ version: 2 }), 'bad-version', 'version 2');
    refused(raw({ kind: 0 }), 'bad-kind', 'kind 0');
    refused(raw({ kind: 16 }), 'bad-kind', 'kind 16');
    refused(raw({ kind: 255 }), 'bad-kind', 'kind 255');
    refused(raw({ family: 1 }), 'bad-family', 'family 1');
    refused(raw({ family: 5, address: [1, 2, 3, 4] }), 'bad-family', 'family 5');
    refused(raw({ family: 6, address: [1, 2, 3, 4] }), 'truncated', 'IPv6 address past length');
    refused(raw({ family: 4, address: [] }), 'truncated', 'IPv4 address past length');
    refused(raw({ fields: [[Tag.app, utf8('a')]], fieldsLength: 5 }), 'truncated', 'fields past length');
    refused(raw({ tail: [Tag.app, 0], fieldsLength: 2 }), 'truncated', 'TLV header past the fields');
    refused(raw({ tail: [Tag.app, 0, 2, 0x61], fieldsLength: 4 }), 'truncated', 'TLV value past the fields');
    refused(
      raw({ tail: [Tag.app, 0, 2, 0x61, 0x62], fieldsLength: 4 }),
      'truncated',
      'TLV value past fieldsLength (though within length)',
    );
    refused(
      raw({
        fields: [
          [Tag.app, utf8('a')],
          [Tag.app, utf8('b')],
        ],
      }),
      'duplicate-field',
      'app twice',
    );
    refused(
      raw({
        fields: [
          [Tag.seq, [0, 0, 0, 1]],
          [Tag.session, token(1)],
          [Tag.seq, [0, 0, 0, 2]],
        ],
      }),
      'duplicate-field',
      'seq twice, apart',
    );
  });

  it('refuses a field whose value is not valid for its tag (bad-field)', () => {
    const cases: [string, number, number[] | Uint8Array][] = [];
    for (const name of ['app', 'incarnation', 'member', 'site', 'user'] as const) {
      cases.push([`${name} empty`, Tag[name], []]);
      cases.push([`${name} 65 bytes`, Tag[name], utf8('x'.repeat(65))]);
      cases.push([`${name} 66 bytes of two-byte chars`, Tag[name], utf8('é'.repeat(33))]);
      cases.push([`${name} invalid UTF-8`, Tag[name], [0x61, 0xff]]);
      cases.push([`${name} overlong NUL`, Tag[name], [0xc0, 0x80]]);
      cases.push([`${name} encoded surrogate`, Tag[name], [0xed, 0xa0, 0x80]]);
      cases.push([`${name} cut multi-byte char`, Tag[name], [0xe2, 0x82]]);
    }
    for (const name of ['cookie', 'session', 'mac'] as const) {
      cases.push([`${name} empty`, Tag[name], []]);
      cases.push([`${name} 15 bytes`, Tag[name], new Uint8Array(15)]);
      cases.push([`${name} 17 bytes`, Tag[name], new Uint8Array(17)]);
    }
    cases.push(['error empty', Tag.error, []]);
    cases.push(['error one byte', Tag.error, [1]]);
    cases.push(['error invalid text', Tag.error, [0, 1, 0xff]]);
    cases.push(['body empty', Tag.body, []]);
    cases.push(['body not JSON', Tag.body, utf8('{"a":')]);
    cases.push(['body two values', Tag.body, utf8('1 2')]);
    cases.push(['body invalid UTF-8', Tag.body, [0x22, 0xff, 0x22]]);
    cases.push(['seq 3 bytes', Tag.seq, [0, 0, 1]]);
    cases.push(['seq 5 bytes', Tag.seq, [0, 0, 0, 0, 1]]);
    cases.push(['requestSize 1 byte', Tag.requestSize, [1]]);
    cases.push(['requestSize 4 bytes', Tag.requestSize, [0, 0, 1, 0]]);
    cases.push(['data empty', Tag.data, []]);
    for (const [why, tag, value] of cases) refused(raw({ fields: [[tag, value]] }), 'bad-field', why);

    assert.equal(decoded(raw({ fields: [[Tag.app, utf8('x'.repeat(64))]] })).app, 'x'.repeat(64));
    assert.equal(decoded(raw({ fields: [[Tag.error, [0, 4]]] })).error?.code, 4);
  });

  it('decodes a deeply nested body without throwing', () => {
    const deep = utf8(`${'['.repeat(4000)}${']'.repeat(4000)}`);
    const r = decode(raw({ fields: [[Tag.body, deep]] }));
    assert.ok(r.ok);
    const unbalanced = decode(raw({ fields: [[Tag.body, utf8('['.repeat(8000))]] }));
    assert.deepEqual(unbalanced, { ok: false, error: 'bad-field' });
  });

  it('decode never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = decode(bytes);
        assert.equal(typeof r.ok, 'boolean');
        if (!r.ok) assert.equal(r.error, isProbeDatagram(bytes) ? r.error : 'not-probe');
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });

  it('decode never throws on arbitrary bytes behind a plausible header', () => {
    /** A TLV with a random tag (known or not) and a value that is often valid for it. */
    const validValue = (tag: number): fc.Arbitrary<Uint8Array> => {
      switch (tag) {
        case Tag.cookie:
        case Tag.session:
        case Tag.mac:
          return bytes16;
        case Tag.data:
          return fc.uint8Array({ minLength: 1, maxLength: 60 });
        case Tag.seq:
          return fc.uint8Array({ minLength: 4, maxLength: 4 });
        case Tag.requestSize:
          return fc.uint8Array({ minLength: 2, maxLength: 2 });
        case Tag.body:
          return fc.jsonValue({ maxDepth: 2 }).map((v) => utf8(JSON.stringify(v)));
        case Tag.error:
          return fc
            .tuple(u16, fc.string({ maxLength: 10 }))
            .map(([c, t]) => new Uint8Array([c >> 8, c & 0xff, ...utf8(t)]));
        default:
          return text64.map(utf8);
      }
    };
    const tlv = fc
      .integer({ min: 0, max: 15 })
      .chain((tag) =>
        fc.tuple(
          fc.constant(tag),
          fc.oneof({ weight: 4, arbitrary: validValue(tag) }, fc.uint8Array({ maxLength: 70 })),
        ),
      );
    const plausible = fc
      .record({
        kind: fc.integer({ min: 0, max: 15 }),
        family: fc.constantFrom(0, 4, 6, 6, 4, 0, 7),
        flags: u8,
        port: u16,
        rest: fc.uint8Array({ maxLength: 200 }),
        fieldsLength: fc.option(fc.integer({ min: 0, max: 220 }), { nil: undefined, freq: 2 }),
        tlvs: fc.array(tlv, { maxLength: 6 }),
      })
      .map(({ kind, family, flags, port, rest, fieldsLength, tlvs }) => {
        const address =
          family === 4 ? [...rest.subarray(0, 4)] : family === 6 ? [...rest.subarray(0, 16)] : [];
        return raw({
          kind,
          family,
          flags,
          port,
          address,
          fields: tlvs,
          fieldsLength,
          tail: [...rest.subarray(16, 40)],
        });
      });
    let accepted = 0;
    fc.assert(
      fc.property(plausible, (bytes) => {
        const r = decode(bytes);
        if (r.ok) {
          accepted++;
          // What decode accepts, encode can write again, and it decodes to the same message.
          assert.deepStrictEqual(decode(encode(r.message)), r);
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
    assert.ok(
      accepted > 200,
      `only ${accepted} of 3000 plausible datagrams were accepted: the test is too weak`,
    );
  });

  it('on mutations of valid encodings decode either decodes or returns a DecodeError', () => {
    const errors = new Set<DecodeError>([
      'not-probe',
      'short',
      'length-mismatch',
      'bad-version',
      'bad-kind',
      'bad-family',
      'truncated',
      'bad-field',
      'duplicate-field',
      'too-large',
    ]);
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant('flip' as const),
        at: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
      }),
      fc.record({ op: fc.constant('truncate' as const), keep: fc.nat() }),
      fc.record({
        op: fc.constant('extend' as const),
        extra: fc.uint8Array({ minLength: 1, maxLength: 40 }),
      }),
    );
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(message, mutation, fc.boolean(), (m, mut, fixLength) => {
        const original = encode(m);
        let bytes: Uint8Array;
        if (mut.op === 'flip') {
          bytes = original.slice();
          for (const [i, x] of mut.at) bytes[i % bytes.length]! ^= x;
        } else if (mut.op === 'truncate') {
          bytes = original.slice(0, mut.keep % original.length);
        } else {
          bytes = new Uint8Array(original.length + mut.extra.length);
          bytes.set(original);
          bytes.set(mut.extra, original.length);
        }
        // Half the time fix the length field so the mutation reaches the deeper checks.
        if (fixLength && bytes.length >= 2) new DataView(bytes.buffer).setUint16(0, bytes.length & 0xffff);
        const r = decode(bytes);
        const label = r.ok ? 'ok' : r.error;
        seen.set(label, (seen.get(label) ?? 0) + 1);
        if (!r.ok) assert.ok(errors.has(r.error), `unknown error ${r.error}`);
        else assert.deepStrictEqual(decode(encode(r.message)), r);
      }),
      { seed: SEED, numRuns: 3000 },
    );
    for (const label of ['ok', 'length-mismatch', 'truncated', 'bad-field', 'bad-kind', 'not-probe']) {
      assert.ok((seen.get(label) ?? 0) > 0, `no mutation produced ${label}: ${JSON.stringify([...seen])}`);
    }
  });

  it('encode refuses what it cannot encode with InvalidArgumentError', () => {
    const base = { kind: 'PROBE', requestId: 1 } as const;
    const bad: [string, unknown][] = [
      ['unknown kind', { ...base, kind: 'HELLO' }],
      ['kind from the prototype', { ...base, kind: 'toString' }],
      ['requestId negative', { ...base, requestId: -1 }],
      ['requestId over u32', { ...base, requestId: 2 ** 32 }],
      ['requestId fractional', { ...base, requestId: 1.5 }],
      ['flags over u8', { ...base, flags: 256 }],
      ['endpoint address refused', { ...base, endpoint: { address: 'fe80::1%eth0', port: 1 } }],
      ['endpoint hostname', { ...base, endpoint: { address: 'localhost', port: 1 } }],
      ['endpoint port over u16', { ...base, endpoint: { address: '1.2.3.4', port: 65536 } }],
      ['app empty', { ...base, app: '' }],
      ['app 65 bytes', { ...base, app: 'x'.repeat(65) }],
      ['site 66 bytes of two-byte chars', { ...base, site: 'é'.repeat(33) }],
      ['user with a lone surrogate', { ...base, user: 'a\uD800' }],
      ['member not a string', { ...base, member: 5 }],
      ['cookie 15 bytes', { ...base, cookie: new Uint8Array(15) }],
      ['session 17 bytes', { ...base, session: new Uint8Array(17) }],
      ['session an array', { ...base, session: new Array(16).fill(0) }],
      ['error code over u16', { ...base, error: { code: 65536, message: '' } }],
      ['error without text', { ...base, error: { code: 1 } }],
      ['body undefined-valued (a function)', { ...base, body: () => 1 }],
      ['body with a bigint', { ...base, body: { n: 1n } }],
      ['seq over u32', { ...base, seq: 2 ** 32 }],
      ['requestSize over u16', { ...base, requestSize: 65536 }],
      ['mac 15 bytes', { ...base, mac: new Uint8Array(15) }],
      ['data empty', { ...base, data: new Uint8Array(0) }],
      ['data a string', { ...base, data: 'hello' }],
      ['data over the maximum', { ...base, data: new Uint8Array(MAX_MESSAGE_BYTES) }],
      ['padTo over the maximum', { ...base, padTo: MAX_MESSAGE_BYTES + 1 }],
      ['message over the maximum', { ...base, body: 'x'.repeat(MAX_MESSAGE_BYTES) }],
    ];
    for (const [why, m] of bad) {
      assert.throws(() => encode(m as ProbeMessage), InvalidArgumentError, why);
      assert.throws(() => encodedSize(m as ProbeMessage), InvalidArgumentError, why);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(
      () => encode({ ...base, body: cyclic }),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        assert.equal(e.code, 'USHER_ERR_INVALID_ARGUMENT');
        return true;
      },
    );
    assert.equal(encode({ ...base, padTo: MAX_MESSAGE_BYTES }).length, MAX_MESSAGE_BYTES);
  });

  it('isProbeDatagram looks at the length and bytes 2..3 only', () => {
    assert.equal(isProbeDatagram(new Uint8Array([0, 0, 0xff, 0xff])), true);
    assert.equal(isProbeDatagram(new Uint8Array([0, 0, 0xff])), false);
    assert.equal(isProbeDatagram(new Uint8Array([0xff, 0xff, 0xff, 0xfe])), false);
    assert.equal(isProbeDatagram(new Uint8Array(0)), false);
    assert.equal(isProbeDatagram(utf8('GET / HTTP/1.1')), false);
  });
});

describe('NOTIFY_BATCH pieces', () => {
  it('splitBatch yields each message by its own length, and undefined for a piece that runs past the end', () => {
    const a = encode({ kind: 'NOTIFY', requestId: 1, app: 'chess' });
    const b = encode({ kind: 'NOTIFY', requestId: 2, app: 'go' });
    const pieces = [...splitBatch(new Uint8Array([...a, ...b]))];
    assert.deepEqual(
      pieces.map((p) => (p ? decode(p).ok : 'bad')),
      [true, true],
    );
    assert.deepEqual([...splitBatch(new Uint8Array([...a, ...b.subarray(0, 10)]))].length, 2);
    assert.equal([...splitBatch(new Uint8Array([...a, ...b.subarray(0, 10)]))][1], undefined);
    assert.equal([...splitBatch(new Uint8Array([0, 3, 1]))][0], undefined, 'a length below the header size');
  });

  it('splitBatch never throws and never loops on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        let n = 0;
        for (const _ of splitBatch(bytes)) if (++n > 600) return false;
        return true;
      }),
    );
  });
});
