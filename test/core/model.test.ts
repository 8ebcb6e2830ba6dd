import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eligible, emptyLoad, loadMetric, type MemberView, makeMember } from '../../src/core/model.js';

describe('core model', () => {
  it('eligible() keeps up members and never down or draining ones', () => {
    const views: MemberView[] = [
      { member: makeMember({ id: 'a' }), health: 'up' },
      { member: makeMember({ id: 'b' }), health: 'down' },
      { member: makeMember({ id: 'c' }), health: 'draining' },
      { member: makeMember({ id: 'd' }), health: 'suspect' },
    ];
    assert.deepEqual(
      eligible(views).map((v) => v.member.id),
      ['a'],
    );
  });

  it('eligible() falls back to suspect members when none is up', () => {
    const views: MemberView[] = [
      { member: makeMember({ id: 'b' }), health: 'down' },
      { member: makeMember({ id: 'd' }), health: 'suspect' },
    ];
    assert.deepEqual(
      eligible(views).map((v) => v.member.id),
      ['d'],
    );
  });

  it('loadMetric() reads built-in and custom metrics, 0 when missing', () => {
    const load = { ...emptyLoad(1), users: 7, custom: { fps: 60 } };
    assert.equal(loadMetric(load, 'users'), 7);
    assert.equal(loadMetric(load, 'custom.fps'), 60);
    assert.equal(loadMetric(load, 'custom.nope'), 0);
    assert.equal(loadMetric(undefined, 'cpu'), 0);
  });
});
