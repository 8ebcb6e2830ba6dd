/**
 * The etcd registry's replica on its own (no etcd): how the keys of one etcd revision become
 * registry events, and how a full re-read is turned into the differences.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import { KeyLayout } from '../../src/registry/etcd/keys.js';
import { EtcdReplica, type Kv, type KvChange } from '../../src/registry/etcd/replica.js';

const layout = new KeyLayout('/u/');
const LOAD = { users: 1, connections: 1, inFlight: 0, cpu: 0.1, custom: {}, timestamp: 1 };

function kv(key: string, value: unknown, mod: number, options: { create?: number; lease?: string } = {}): Kv {
  return {
    key: Buffer.from(`/u/${key}`),
    value: Buffer.from(value === undefined ? '' : JSON.stringify(value)),
    create_revision: String(options.create ?? mod),
    mod_revision: String(mod),
    lease: options.lease ?? '0',
  };
}
const put = (key: string, value: unknown, mod: number, options?: { create?: number; lease?: string }) =>
  ({ kv: kv(key, value, mod, options), deleted: false }) satisfies KvChange;
const del = (key: string, mod: number) => ({ kv: kv(key, undefined, mod), deleted: true }) satisfies KvChange;
const types = (events: { type: string }[]) => events.map((e) => e.type);

function withMember(id = 'm1'): EtcdReplica {
  const r = new EtcdReplica(layout);
  r.reset([
    kv(`members/${id}`, makeMember({ id }), 2, { lease: '7' }),
    kv(`health/${id}`, { health: 'up', reason: '' }, 2),
  ]);
  return r;
}

describe('etcd replica', () => {
  it('a new member with its health in one revision is one member-added', () => {
    const r = new EtcdReplica(layout);
    const events = r.applyRevision([
      put('members/m1', makeMember({ id: 'm1' }), 5),
      put('health/m1', { health: 'draining', reason: 'registered' }, 5),
    ]);
    assert.deepEqual(types(events), ['member-added']);
    assert.equal(r.view('m1')?.health, 'draining');
  });

  it('a deregister transaction is one member-removed with the recorded reason', () => {
    const r = withMember();
    r.applyRevision([put('load/m1', LOAD, 3)]);
    const events = r.applyRevision([
      del('members/m1', 4),
      del('health/m1', 4),
      del('load/m1', 4),
      put('removed/m1', { reason: 'scaled-in' }, 4),
    ]);
    assert.deepEqual(events, [{ type: 'member-removed', id: 'm1', reason: 'scaled-in' }]);
    assert.equal(r.view('m1'), undefined);
  });

  it('a deletion without removal record is a lease expiry', () => {
    const r = withMember();
    const events = r.applyRevision([del('members/m1', 4), del('health/m1', 4)]);
    assert.deepEqual(events, [{ type: 'member-removed', id: 'm1', reason: 'lease-expired' }]);
  });

  it('moving a member to a new lease is one member-updated: no load or health event', () => {
    const r = withMember();
    r.applyRevision([put('load/m1', LOAD, 3, { lease: '7' })]);
    const events = r.applyRevision([
      put('members/m1', makeMember({ id: 'm1', weight: 2 }), 4, { create: 2, lease: '9' }),
      put('health/m1', { health: 'up', reason: '' }, 4, { create: 2, lease: '9' }),
      put('load/m1', LOAD, 4, { create: 3, lease: '9' }),
    ]);
    assert.deepEqual(types(events), ['member-updated']);
    assert.equal(r.get('m1')?.lease, '9');
  });

  it('health events carry the previous state; an unchanged state is no event', () => {
    const r = withMember();
    const down = r.applyRevision([put('health/m1', { health: 'down', reason: 'refused' }, 3)]);
    assert.deepEqual(down, [{ type: 'health', id: 'm1', health: 'down', previous: 'up', reason: 'refused' }]);
    assert.deepEqual(r.applyRevision([put('health/m1', { health: 'down', reason: 'again' }, 4)]), []);
  });

  it('ignores values it cannot decode and keys of members it does not know', () => {
    const r = withMember();
    const events = r.applyRevision([
      put('load/ghost', LOAD, 3),
      { kv: { ...kv('health/m1', null, 3), value: Buffer.from('{') }, deleted: false },
      put('members/m2', { id: 'other' }, 3),
      put('elsewhere/x', 1, 3),
    ]);
    assert.deepEqual(events, []);
    assert.equal(r.malformed, 2);
  });

  it('a re-read after a compaction is reported as the differences', () => {
    const r = withMember('stays');
    r.applyRevision([
      put('members/goes', makeMember({ id: 'goes' }), 3),
      put('assignments/a', { value: 1, updatedAt: 1 }, 3),
    ]);
    const events = r.resync(
      [
        kv('members/stays', makeMember({ id: 'stays' }), 2),
        kv('health/stays', { health: 'down', reason: 'probe' }, 8, { create: 2 }),
        kv('members/new', makeMember({ id: 'new' }), 9),
        kv('removed/goes', { reason: 'scaled-in' }, 6),
        kv('assignments/b', { value: 2, updatedAt: 2 }, 7),
      ],
      3,
    );
    assert.deepEqual(
      events.map((e) => JSON.stringify(e)),
      [
        { type: 'member-removed', id: 'goes', reason: 'scaled-in' },
        { type: 'health', id: 'stays', health: 'down', previous: 'up', reason: 'probe' },
        { type: 'member-added', member: makeMember({ id: 'new' }) },
        { type: 'assignment-deleted', key: 'a' },
        { type: 'assignment-set', assignment: { key: 'b', value: 2, updatedAt: 2 } },
      ].map((e) => JSON.stringify(e)),
    );
  });
});
