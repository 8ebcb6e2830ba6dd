import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { chooseServer, listMemberViews, parseListDocument } from '../../src/client/stream-list.js';
import { createPolicy } from '../../src/core/policy/index.js';
import {
  type ClientFrame,
  encodeFrame,
  MAX_TOPIC_LENGTH,
  parseClientFrame,
  parseServerFrame,
  type ServerFrame,
  validateClientFrame,
  validateServerFrame,
} from '../../src/list/stream-protocol.js';

const topic = fc
  .string({ minLength: 1, maxLength: MAX_TOPIC_LENGTH })
  .filter((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f));
const seq = fc.maxSafeNat();
const pingId = fc.oneof(fc.string({ maxLength: 64 }), fc.double({ noNaN: true, noDefaultInfinity: true }));

const clientFrame: fc.Arbitrary<ClientFrame> = fc.oneof(
  fc.record({ op: fc.constant('subscribe' as const), topic }),
  fc.record({ op: fc.constant('subscribe' as const), topic, since: seq }),
  fc.record({ op: fc.constant('unsubscribe' as const), topic }),
  fc.record({ op: fc.constant('ping' as const), id: pingId }),
);

const serverFrame: fc.Arbitrary<ServerFrame> = fc.oneof(
  fc.record({
    type: fc.constant('welcome' as const),
    server: fc.string({ minLength: 1, maxLength: 64 }),
    heartbeatMs: fc.integer({ min: 1, max: 60_000 }),
  }),
  fc.record({ type: fc.constant('subscribed' as const), topic, seq }),
  fc.record({ type: fc.constant('data' as const), topic, seq, data: fc.jsonValue() }),
  fc.record({ type: fc.constant('heartbeat' as const), t: fc.integer({ min: 0 }) }),
  fc.record({ type: fc.constant('goaway' as const), reason: fc.string({ maxLength: 100 }) }),
  fc.record({
    type: fc.constant('error' as const),
    code: fc.constantFrom('malformed', 'too-large'),
    message: fc.string({ maxLength: 100 }),
  }),
);

/** Anything a peer might send: random JSON, near-misses of real frames, random text. */
const garbage = fc.oneof(
  fc.anything(),
  fc.jsonValue(),
  fc.record({
    op: fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'x'),
    topic: fc.anything(),
    since: fc.anything(),
    id: fc.anything(),
  }),
  fc.record({
    type: fc.constantFrom('welcome', 'subscribed', 'data', 'heartbeat', 'pong', 'goaway', 'error'),
    server: fc.anything(),
    heartbeatMs: fc.anything(),
    topic: fc.anything(),
    seq: fc.anything(),
    t: fc.anything(),
    code: fc.anything(),
    message: fc.anything(),
  }),
);

describe('stream protocol', () => {
  it('validators and parsers never throw on random input', () => {
    fc.assert(
      fc.property(garbage, (value) => {
        validateClientFrame(value);
        validateServerFrame(value);
        parseListDocument(value);
        let text: string | undefined;
        try {
          text = JSON.stringify(value);
        } catch {
          text = undefined; // BigInt and the like: not JSON, so not something a peer could send
        }
        parseClientFrame(text);
        parseServerFrame(text);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string(), fc.uint8Array(), (text, bytes) => {
        assert.equal(parseClientFrame(text.startsWith('{') ? text : `{${text}`), undefined);
        parseServerFrame(new TextDecoder().decode(bytes));
        parseClientFrame(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('every valid frame survives encoding and parsing unchanged', () => {
    fc.assert(
      fc.property(clientFrame, (frame) => {
        assert.deepEqual(parseClientFrame(encodeFrame(frame)), JSON.parse(encodeFrame(frame)));
      }),
    );
    fc.assert(
      fc.property(serverFrame, (frame) => {
        assert.deepEqual(parseServerFrame(encodeFrame(frame)), JSON.parse(encodeFrame(frame)));
      }),
    );
  });

  it('refuses near misses: bad seq, bad topic, missing data, unknown op', () => {
    const bad: unknown[] = [
      { op: 'subscribe', topic: 'a', since: -1 },
      { op: 'subscribe', topic: 'a', since: 1.5 },
      { op: 'subscribe', topic: 'a', since: '3' },
      { op: 'subscribe', topic: '' },
      { op: 'subscribe', topic: 'x'.repeat(MAX_TOPIC_LENGTH + 1) },
      { op: 'subscribe', topic: 'a\nb' },
      { op: 'ping', id: 'x'.repeat(65) },
      { op: 'publish', topic: 'a' },
      ['subscribe', 'a'],
      null,
    ];
    for (const frame of bad) assert.equal(validateClientFrame(frame), undefined, JSON.stringify(frame));
    assert.equal(validateServerFrame({ type: 'data', topic: 'a', seq: 1 }), undefined);
    assert.equal(validateServerFrame({ type: 'welcome', server: 's', heartbeatMs: 0 }), undefined);
    assert.equal(parseServerFrame('{"type":"heartbeat","t":1'), undefined);
    // Extra fields are ignored (a later revision may add some); the result holds known ones only.
    assert.deepEqual(parseClientFrame('{"op":"subscribe","topic":"t","since":4,"x":1}'), {
      op: 'subscribe',
      topic: 't',
      since: 4,
    });
  });
});

describe('stream list document (client side)', () => {
  const doc = {
    version: 1,
    pool: 'live',
    revision: 42,
    generatedAt: 1000,
    servers: [
      { id: 'a', status: 'up', users: 90, capacity: 100, group: 0, url: 'ws://127.0.0.1:1/usher/stream' },
      { id: 'b', status: 'up', users: 10, capacity: 100, group: 0, url: 'ws://127.0.0.1:2/usher/stream' },
      { id: 'c', status: 'up', users: 0, capacity: 100, group: 0 }, // no url: never chosen
      { id: 'd', status: 'weird', users: 0, capacity: 100, group: 0, url: 'ws://127.0.0.1:4/' }, // dropped
      { id: 'e', status: 'up', users: 0, capacity: 100, group: 1, url: 'http://127.0.0.1:5/' }, // not ws
    ],
  };

  it('keeps usable servers and maps them to member views', () => {
    const parsed = parseListDocument(doc);
    assert.ok(parsed, 'a valid document');
    assert.deepEqual(
      parsed.servers.map((s) => s.id),
      ['a', 'b', 'c', 'e'],
    );
    const views = listMemberViews(parsed);
    assert.deepEqual(
      views.map((v) => [v.member.id, v.member.weight, v.load?.users, v.health]),
      [
        ['a', 100, 90, 'up'],
        ['b', 100, 10, 'up'],
      ],
    );
    assert.equal(parseListDocument({ ...doc, version: 2 }), undefined);
  });

  it('chooses among servers with a url, leaving out excluded ones while any other is eligible', () => {
    const parsed = parseListDocument(doc)!;
    let r = 0;
    const policy = createPolicy('priority-load', { metric: 'users', random: () => (r = (r + 0.37) % 1) });
    for (let i = 0; i < 20; i++) assert.notEqual(['a', 'b'].indexOf(chooseServer(parsed, policy)!.id), -1);
    for (let i = 0; i < 20; i++) assert.equal(chooseServer(parsed, policy, new Set(['a']))?.id, 'b');
    // Every eligible server excluded: the exclusion is ignored rather than choosing nothing.
    assert.notEqual(chooseServer(parsed, policy, new Set(['a', 'b'])), undefined);
  });
});
