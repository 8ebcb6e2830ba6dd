import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureDetector, suspicionTimeout } from '../../src/registry/mesh/detector.js';

const OPTIONS = {
  selfId: 'me',
  intervalMs: 500,
  missedReports: 3,
  indirectChecks: 3,
  suspicionMinMs: 2_000,
  suspicionMaxMs: 8_000,
};

function setup() {
  const clock = { now: 1_000_000 };
  const detector = new FailureDetector({ ...OPTIONS, now: () => clock.now });
  return { clock, detector };
}

/** Makes `id` known and alive, then silent long enough to be checked, and fails the check. */
function suspectByCheck(detector: FailureDetector, clock: { now: number }, id: string, open = false) {
  detector.heard(id, 0);
  clock.now += 1_500;
  assert.deepEqual(detector.dueChecks(), [id]);
  clock.now += 400;
  return detector.checked(id, open ? 'open' : 'timeout', ['timeout', 'timeout']);
}

describe('mesh failure detector', () => {
  it('suspicion timeout follows the Lifeguard formula', () => {
    assert.equal(suspicionTimeout(0, 3, 2_000, 8_000), 8_000);
    assert.equal(suspicionTimeout(1, 3, 2_000, 8_000), 5_000); // 8000 − 6000·log2/log4
    assert.equal(
      suspicionTimeout(2, 3, 2_000, 8_000),
      Math.floor(8_000 - (6_000 * Math.log(3)) / Math.log(4)),
    );
    assert.equal(suspicionTimeout(3, 3, 2_000, 8_000), 2_000);
    assert.equal(suspicionTimeout(10, 3, 2_000, 8_000), 2_000, 'never below the minimum');
    assert.equal(suspicionTimeout(0, 0, 2_000, 8_000), 2_000, 'K = 0: no confirmations expected');
  });

  it('a node silent for missedReports × intervalMs is checked once; an answer keeps it alive', () => {
    const { clock, detector } = setup();
    detector.heard('b', 0);
    clock.now += 1_499;
    assert.deepEqual(detector.dueChecks(), []);
    clock.now += 1;
    assert.deepEqual(detector.dueChecks(), ['b']);
    assert.deepEqual(detector.dueChecks(), [], 'not twice while the check runs');
    assert.equal(detector.checked('b', 'timeout', ['ack']), undefined, 'an indirect ack is enough');
    assert.equal(detector.node('b')?.state, 'alive');
  });

  it('a report heard while the check runs keeps the node alive', () => {
    const { clock, detector } = setup();
    detector.heard('b', 0);
    clock.now += 1_500;
    detector.dueChecks();
    clock.now += 10;
    detector.heard('b', 0);
    assert.equal(detector.checked('b', 'timeout', ['timeout']), undefined);
    assert.equal(detector.node('b')?.state, 'alive');
  });

  it('a lost connection makes the node due for a check at once', () => {
    const { detector } = setup();
    detector.heard('b', 0);
    assert.deepEqual(detector.dueChecks(), []);
    detector.lost('b');
    assert.deepEqual(detector.dueChecks(), ['b']);
  });

  it('no answer makes a suspect, dead after suspicionMaxMs without confirmation', () => {
    const { clock, detector } = setup();
    const t = suspectByCheck(detector, clock, 'b');
    assert.equal(t?.state, 'suspect');
    assert.equal(t?.previous, 'alive');
    assert.equal(t?.from, 'me');
    const started = clock.now;
    assert.equal(detector.node('b')?.deadline, started + 8_000);
    clock.now = started + 7_999;
    assert.deepEqual(detector.expire(), []);
    clock.now = started + 8_000;
    const [dead] = detector.expire();
    assert.equal(dead?.state, 'dead');
    assert.equal(dead?.previous, 'suspect');
    assert.equal(detector.node('b')?.state, 'dead');
  });

  it('independent confirmations shorten the suspicion toward suspicionMinMs', () => {
    const { clock, detector } = setup();
    suspectByCheck(detector, clock, 'b');
    const started = clock.now;
    const gossip = (from: string) =>
      detector.gossip({ id: 'b', addr: '', state: 'suspect', inc: 0, from }, from);
    assert.deepEqual(gossip('c'), {}, 'a confirmation is no transition');
    assert.equal(detector.node('b')?.deadline, started + 5_000);
    gossip('c');
    assert.equal(detector.node('b')?.deadline, started + 5_000, 'the same node confirms only once');
    gossip('d');
    gossip('e');
    assert.equal(detector.node('b')?.deadline, started + 2_000);
    clock.now = started + 2_000;
    assert.equal(detector.expire()[0]?.state, 'dead');
  });

  it('a port that still accepts connections keeps the longest suspicion despite confirmations', () => {
    const { clock, detector } = setup();
    const t = suspectByCheck(detector, clock, 'b', true);
    assert.equal(t?.open, true);
    const started = clock.now;
    for (const from of ['c', 'd', 'e']) {
      detector.gossip({ id: 'b', addr: '', state: 'suspect', inc: 0, from }, from);
    }
    assert.equal(detector.node('b')?.deadline, started + 8_000);
  });

  it('a higher incarnation refutes the suspicion; the same one does not', () => {
    const { clock, detector } = setup();
    suspectByCheck(detector, clock, 'b');
    assert.equal(detector.heard('b', 0), undefined, 'same incarnation: still suspect');
    assert.equal(detector.node('b')?.state, 'suspect');
    const t = detector.heard('b', 1);
    assert.equal(t?.state, 'alive');
    assert.equal(t?.previous, 'suspect');
    assert.equal(detector.node('b')?.incarnation, 1);
    clock.now += 60_000;
    assert.deepEqual(detector.expire(), [], 'no suspicion left to expire');
    // Gossip about an older incarnation is stale.
    assert.deepEqual(detector.gossip({ id: 'b', addr: '', state: 'suspect', inc: 0, from: 'c' }, 'c'), {});
    assert.equal(detector.node('b')?.state, 'alive');
  });

  it('refused both directly and by a helper means dead at once', () => {
    const { clock, detector } = setup();
    detector.heard('b', 0);
    detector.lost('b');
    detector.dueChecks();
    clock.now += 5;
    const t = detector.checked('b', 'refused', ['refused']);
    assert.equal(t?.state, 'dead');
    assert.equal(t?.reason, 'connection refused');
  });

  it('refused directly but not by the helpers is only a suspicion', () => {
    const { clock, detector } = setup();
    detector.heard('b', 0);
    detector.lost('b');
    detector.dueChecks();
    clock.now += 5;
    assert.equal(detector.checked('b', 'refused', ['timeout', 'open'])?.state, 'suspect');
  });

  it('gossip that this node is suspect or dead is refuted by bumping its incarnation', () => {
    const { detector } = setup();
    assert.equal(detector.incarnation, 0);
    assert.deepEqual(detector.gossip({ id: 'me', addr: '', state: 'suspect', inc: 0, from: 'b' }, 'b'), {
      refute: true,
    });
    assert.equal(detector.incarnation, 1);
    assert.deepEqual(detector.gossip({ id: 'me', addr: '', state: 'suspect', inc: 0, from: 'c' }, 'c'), {});
    assert.deepEqual(detector.gossip({ id: 'me', addr: '', state: 'dead', inc: 4 }, 'c'), { refute: true });
    assert.equal(detector.incarnation, 5);
  });

  it('a dead node comes back only with a higher incarnation', () => {
    const { detector } = setup();
    detector.heard('b', 2);
    assert.equal(
      detector.gossip({ id: 'b', addr: '', state: 'dead', inc: 2 }, 'c').transition?.state,
      'dead',
    );
    assert.equal(detector.heard('b', 2), undefined);
    assert.equal(detector.gossip({ id: 'b', addr: '', state: 'alive', inc: 2 }, 'c').transition, undefined);
    assert.equal(detector.heard('b', 3)?.state, 'alive');
  });

  it('after a local stall, silence is forgiven and suspicions are pushed back', () => {
    const { clock, detector } = setup();
    suspectByCheck(detector, clock, 'b');
    const deadline = detector.node('b')!.deadline!;
    detector.heard('c', 0);
    clock.now += 5_000;
    detector.grace(5_000);
    assert.deepEqual(detector.dueChecks(), [], 'nobody is due right after the stall');
    assert.equal(detector.node('b')?.deadline, deadline + 5_000);
  });

  it('a node that leaves is left, not dead', () => {
    const { detector } = setup();
    detector.heard('b', 0);
    assert.equal(detector.left('b', 0)?.state, 'left');
    assert.deepEqual(detector.dueChecks(), []);
  });
});
