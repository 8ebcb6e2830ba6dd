import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { makeMember } from '../../src/core/model.js';
import type { MemberRecord, Version } from '../../src/registry/mesh/messages.js';
import { Replica } from '../../src/registry/mesh/replica.js';

const v = (c: number, n = 'a'): Version => ({ c, n });
const member = (id: string, weight = 1) => makeMember({ id, weight });
const load = (users: number) => ({ users, connections: 0, inFlight: 0, cpu: 0, custom: {}, timestamp: 1 });

function added(id: string, c: number, n = 'a', weight = 1): MemberRecord {
  return {
    id,
    def: { m: member(id, weight), owner: n, ttl: null, ver: v(c, n) },
    health: { s: 'up', r: 'registered', mesh: false, ver: v(c, n) },
    load: { l: null, ver: v(c, n) },
  };
}

const types = (events: Array<{ type: string }>) => events.map((e) => e.type);

describe('mesh replica (last writer wins per field)', () => {
  it('applies each field on its own version: concurrent health and load writes both survive', () => {
    const r = new Replica('x', () => 0);
    assert.deepEqual(types(r.mergeMember(added('m', 1))), ['member-added']);
    const health: MemberRecord = { id: 'm', health: { s: 'draining', r: 'op', mesh: false, ver: v(5, 'b') } };
    const report: MemberRecord = { id: 'm', load: { l: load(7), ver: v(5, 'a') } };
    assert.deepEqual(types(r.mergeMember(report)), ['load']);
    assert.deepEqual(types(r.mergeMember(health)), ['health']);
    assert.equal(r.view('m')?.health, 'draining');
    assert.equal(r.view('m')?.load?.users, 7);
  });

  it('an older or repeated write changes nothing and emits nothing', () => {
    const r = new Replica('x', () => 0);
    r.mergeMember(added('m', 1));
    r.mergeMember({ id: 'm', health: { s: 'down', r: 'late', mesh: false, ver: v(10, 'b') } });
    assert.deepEqual(
      r.mergeMember({ id: 'm', health: { s: 'up', r: 'old', mesh: false, ver: v(9, 'z') } }),
      [],
    );
    assert.deepEqual(
      r.mergeMember({ id: 'm', health: { s: 'down', r: 'late', mesh: false, ver: v(10, 'b') } }),
      [],
    );
    assert.deepEqual(
      r.mergeMember({ id: 'm', health: { s: 'down', r: 'newer', mesh: false, ver: v(11) } }),
      [],
      'same state',
    );
    assert.equal(r.view('m')?.health, 'down');
  });

  it('ties on the clock are broken by node id, so every replica picks the same winner', () => {
    const one = new Replica('x', () => 0);
    const two = new Replica('y', () => 0);
    const fromA = { key: 'k', ver: v(3, 'a'), set: { value: 'A', at: 1 } };
    const fromB = { key: 'k', ver: v(3, 'b'), set: { value: 'B', at: 1 } };
    one.mergeAssignment(fromA);
    one.mergeAssignment(fromB);
    two.mergeAssignment(fromB);
    two.mergeAssignment(fromA);
    assert.equal(one.assignments()[0]?.value, 'B');
    assert.equal(two.assignments()[0]?.value, 'B');
  });

  it('a tombstone removes; a newer registration brings the member back, an older one does not', () => {
    const r = new Replica('x', () => 0);
    r.mergeMember(added('m', 1));
    const removed = r.mergeMember({ id: 'm', gone: { r: 'scaled-in', ver: v(5) } });
    assert.deepEqual(removed, [{ type: 'member-removed', id: 'm', reason: 'scaled-in' }]);
    assert.deepEqual(r.mergeMember(added('m', 4)), [], 'older than the tombstone');
    assert.equal(r.view('m'), undefined);
    assert.deepEqual(types(r.mergeMember(added('m', 6, 'a', 3))), ['member-added']);
    assert.equal(r.view('m')?.member.weight, 3);
  });

  it('records merged in any order converge to the same state', () => {
    const records: MemberRecord[] = [
      added('m', 1),
      { id: 'm', load: { l: load(1), ver: v(2) } },
      { id: 'm', health: { s: 'suspect', r: 'x', mesh: true, ver: v(3, 'b') } },
      { id: 'm', def: { m: member('m', 9), owner: 'b', ttl: 100, ver: v(4, 'b') } },
      { id: 'm', gone: { r: 'bye', ver: v(5) } },
      added('m', 6, 'c'),
      { id: 'm', load: { l: load(2), ver: v(7) } },
    ];
    const forward = new Replica('x', () => 0);
    const backward = new Replica('y', () => 0);
    for (const rec of records) forward.mergeMember(rec);
    for (const rec of [...records].reverse()) backward.mergeMember(rec);
    assert.deepEqual(forward.view('m'), backward.view('m'));
    assert.equal(forward.view('m')?.load?.users, 2);
  });

  it('deleting an assignment emits once; unknown keys emit nothing; tombstones are collected', () => {
    let now = 0;
    const r = new Replica('x', () => now);
    r.mergeAssignment({ key: 'k', ver: v(1), set: { value: 1, at: 1 } });
    assert.deepEqual(r.mergeAssignment({ key: 'k', ver: v(2) }), [{ type: 'assignment-deleted', key: 'k' }]);
    assert.deepEqual(r.mergeAssignment({ key: 'k', ver: v(3) }), []);
    assert.deepEqual(r.mergeAssignment({ key: 'never', ver: v(3) }), []);
    assert.equal(r.assignmentRecords().length, 2);
    now = 1_000;
    r.collectGarbage(500);
    assert.equal(r.assignmentRecords().length, 0);
  });

  it('the version clock never runs behind the wall clock nor behind versions it has seen', () => {
    let now = 1_000;
    const r = new Replica('x', () => now);
    assert.deepEqual(r.nextVersion(), { c: 1_000, n: 'x' });
    assert.deepEqual(r.nextVersion(), { c: 1_001, n: 'x' });
    r.mergeAssignment({ key: 'k', ver: v(5_000, 'b'), set: { value: 1, at: 1 } });
    assert.equal(r.nextVersion().c, 5_001);
    now = 9_000;
    assert.equal(r.nextVersion().c, 9_000);
  });
});
