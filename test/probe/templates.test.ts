import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { decode, encode } from '../../src/probe/codec.js';
import { Flag } from '../../src/probe/messages.js';
import { AnswerTemplates } from '../../src/probe/templates.js';
import { SessionTokens } from '../../src/probe/tokens.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

const APPS = ['game', 'voice-chat', 'jeu-é'];
const INCARNATIONS = [undefined, 'world-1', 'welt-ü', 'x'.repeat(64)];
const USERS = [undefined, 'alice', 'Zoë 🎮', 'u'.repeat(64)];
const CLIENTS = [
  { address: '203.0.113.7', port: 40000 },
  { address: '10.0.0.1', port: 0 },
  { address: '2001:db8::1', port: 65535 },
  { address: '::ffff:192.0.2.1', port: 5000 },
];

describe('assigner answer templates', () => {
  it('PROBE_RESPONSE, NOTIFY and FORWARD are byte for byte what encode() makes', () => {
    const templates = new AnswerTemplates();
    const members = [
      makeMember({ id: 'm1', site: 'eu', addresses: ['192.0.2.10'] }),
      makeMember({ id: 'member-ü', site: 'site-2', addresses: ['2001:db8::10'] }),
    ];
    let n = 0;
    // Twice over: the second pass is served from the caches.
    for (let pass = 0; pass < 2; pass++)
      for (const app of APPS)
        for (const incarnation of INCARNATIONS)
          for (const user of USERS)
            for (const client of CLIENTS) {
              n++;
              const requestId = (n * 2654435761) >>> 0;
              const session = new Uint8Array(randomBytes(16));
              const inc = incarnation !== undefined ? { incarnation } : {};
              const usr = user !== undefined ? { user } : {};
              const m = { requestId, session, client, user };

              assert.equal(
                hex(templates.notify(app, incarnation, m)),
                hex(encode({ kind: 'NOTIFY', requestId, app, ...inc, session, ...usr, endpoint: client })),
              );
              for (const validated of [false, true]) {
                const requestSize = (n * 7) % 0x10000;
                assert.equal(
                  hex(templates.forward(app, incarnation, m, validated, requestSize)),
                  hex(
                    encode({
                      kind: 'FORWARD',
                      requestId,
                      app,
                      ...inc,
                      session,
                      ...usr,
                      flags: validated ? Flag.VALIDATED : 0,
                      endpoint: client,
                      requestSize,
                    }),
                  ),
                );
              }
              const member = members[n % members.length]!;
              const own = { address: member.addresses[0]!, port: 7000 + (n % 100) };
              // The own endpoint is part of the cache key only through the member object.
              const target = new AnswerTemplates();
              assert.equal(
                hex(target.probeResponse(member, own, app, incarnation, requestId, session)),
                hex(
                  encode({
                    kind: 'PROBE_RESPONSE',
                    requestId,
                    app,
                    ...inc,
                    session,
                    endpoint: own,
                    member: member.id,
                    site: member.site,
                  }),
                ),
              );
            }
  });

  it('the bytes decode to the message, and a cached template is never changed by use', () => {
    const templates = new AnswerTemplates();
    const member = makeMember({ id: 'm1', site: 'local' });
    const own = { address: '127.0.0.1', port: 7001 };
    const a = templates.probeResponse(member, own, 'game', undefined, 1, new Uint8Array(16).fill(1));
    const b = templates.probeResponse(member, own, 'game', undefined, 2, new Uint8Array(16).fill(2));
    const da = decode(a);
    const db = decode(b);
    assert.ok(da.ok && db.ok);
    assert.equal(da.message.requestId, 1);
    assert.deepEqual([...da.message.session!], new Array(16).fill(1));
    assert.equal(db.message.requestId, 2);
    assert.deepEqual([...db.message.session!], new Array(16).fill(2));
    assert.deepEqual(da.message.endpoint, own);
  });

  it('refuses what encode() refuses', () => {
    const templates = new AnswerTemplates();
    const session = new Uint8Array(16);
    const client = { address: '127.0.0.1', port: 1 };
    const bad = [
      () =>
        templates.notify('game', undefined, {
          requestId: 1,
          session,
          client: { address: 'host', port: 1 },
          user: undefined,
        }),
      () =>
        templates.notify('game', undefined, {
          requestId: 1,
          session,
          client: { address: '1.2.3.4', port: 70000 },
          user: undefined,
        }),
      () => templates.notify('game', undefined, { requestId: 1, session, client, user: 'x'.repeat(65) }),
      () => templates.notify('game', undefined, { requestId: 1, session, client, user: '' }),
      () => templates.notify('game', undefined, { requestId: 1, session, client, user: '\ud800' }),
      () => templates.notify('game', undefined, { requestId: -1, session, client, user: undefined }),
      () =>
        templates.notify('game', undefined, {
          requestId: 1,
          session: new Uint8Array(15),
          client,
          user: undefined,
        }),
      () =>
        templates.forward(
          'game',
          undefined,
          { requestId: 1, session, client, user: undefined },
          false,
          0x10000,
        ),
      () => templates.notify('x'.repeat(65), undefined, { requestId: 1, session, client, user: undefined }),
      () =>
        templates.probeResponse(makeMember({ id: 'i'.repeat(65) }), client, 'game', undefined, 1, session),
    ];
    for (const f of bad) assert.throws(f, InvalidArgumentError);
  });

  it('session tokens are 16 fresh bytes each, never shared', () => {
    const tokens = new SessionTokens();
    const seen = new Set<string>();
    const first = tokens.next();
    const copy = hex(first);
    for (let i = 0; i < 10_000; i++) {
      const t = tokens.next();
      assert.equal(t.length, 16);
      seen.add(hex(t));
    }
    assert.equal(seen.size, 10_000);
    assert.equal(hex(first), copy, 'a refill does not change tokens handed out');
  });
});
