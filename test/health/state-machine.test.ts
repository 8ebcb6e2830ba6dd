import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { HealthState } from '../../src/core/model.js';
import {
  HEALTH_DEFAULTS,
  type HealthSignal,
  HealthStateMachine,
  type HealthThresholds,
  initialMachine,
  publishedState,
  resolveThresholds,
  step,
} from '../../src/health/state-machine.js';

const fail = (reason = 'refused'): HealthSignal => ({ kind: 'check', ok: false, reason });
const pass = (reason = 'ok'): HealthSignal => ({ kind: 'check', ok: true, reason });

/** A machine on a manual clock. */
function machine(thresholds: Partial<HealthThresholds> = {}, initial?: HealthState) {
  const clock = { now: 1_000_000 };
  const m = new HealthStateMachine({ thresholds, clock: () => clock.now, initial });
  return { m, clock };
}

function feed(m: HealthStateMachine, signal: HealthSignal, times: number) {
  const transitions = [];
  for (let i = 0; i < times; i++) {
    const t = m.apply(signal);
    if (t) transitions.push(t);
  }
  return transitions;
}

describe('health state machine', () => {
  it('exports frozen defaults and rejects impossible thresholds', () => {
    assert.ok(Object.isFrozen(HEALTH_DEFAULTS));
    assert.deepEqual(resolveThresholds(), HEALTH_DEFAULTS);
    assert.equal(resolveThresholds({ fall: 5, rise: undefined }).fall, 5);
    for (const bad of [
      { fall: 0 },
      { rise: 1.5 },
      { downAfter: -1 },
      { suspectTimeoutMs: 0 },
      { reuseThreshold: 3_000 },
      { maxPenalty: 100 },
      { halfLifeMs: 0 },
    ]) {
      assert.throws(
        () => resolveThresholds(bad),
        (e: unknown) => (e as { code?: string }).code === 'USHER_ERR_INVALID_ARGUMENT',
        JSON.stringify(bad),
      );
    }
    assert.doesNotThrow(() => resolveThresholds({ flapPenalty: 0, reuseThreshold: 99_999 }), 'damping off');
  });

  it('goes up → suspect after `fall` consecutive failures, suspect → down after `downAfter` more', () => {
    const { m } = machine({ fall: 3, downAfter: 2 });
    assert.deepEqual(feed(m, fail(), 2), []);
    assert.equal(m.state, 'up');
    const [toSuspect] = feed(m, fail('tcp connect ECONNREFUSED'), 1);
    assert.deepEqual(toSuspect, {
      from: 'up',
      to: 'suspect',
      reason: '3 consecutive failures (last: tcp connect ECONNREFUSED)',
    });
    assert.deepEqual(feed(m, fail(), 1), []);
    const [toDown] = feed(m, fail('timeout'), 1);
    assert.equal(toDown?.from, 'suspect');
    assert.equal(toDown?.to, 'down');
    assert.match(toDown?.reason ?? '', /5 consecutive failures \(last: timeout\)/);
  });

  it('a success in between resets the failure count', () => {
    const { m } = machine({ fall: 2 });
    for (let i = 0; i < 10; i++) {
      m.apply(fail());
      m.apply(pass());
    }
    assert.equal(m.state, 'up');
  });

  it('suspect → up on one success; down → up only after `rise` consecutive successes', () => {
    const { m } = machine({ fall: 1, downAfter: 1, rise: 3 });
    m.apply(fail());
    assert.equal(m.state, 'suspect');
    assert.deepEqual(m.apply(pass('http status 200')), {
      from: 'suspect',
      to: 'up',
      reason: 'recovered (http status 200)',
    });
    m.apply(fail());
    m.apply(fail());
    assert.equal(m.state, 'down');
    feed(m, pass(), 2);
    m.apply(fail());
    feed(m, pass(), 2);
    assert.equal(m.state, 'down', 'a failure restarts the count');
    const [up] = feed(m, pass(), 1);
    assert.deepEqual(up, { from: 'down', to: 'up', reason: '3 consecutive successes (last: ok)' });
  });

  it('passive failures and successes count like check results', () => {
    const { m } = machine({ fall: 2, downAfter: 1, rise: 1 });
    m.apply({ kind: 'passive', ok: false, reason: 'upstream reset' });
    m.apply({ kind: 'passive', ok: false, reason: 'upstream timeout' });
    assert.equal(m.state, 'suspect');
    m.apply({ kind: 'passive', ok: true, reason: 'request ok' });
    assert.equal(m.state, 'up');
  });

  it('a suspect member with no success for `suspectTimeoutMs` goes down on the next signal or tick', () => {
    const { m, clock } = machine({ fall: 1, downAfter: 10, suspectTimeoutMs: 5_000 });
    m.apply(fail());
    clock.now += 4_999;
    assert.equal(m.tick(), undefined);
    clock.now += 1;
    assert.deepEqual(m.tick(), {
      from: 'suspect',
      to: 'down',
      reason: 'suspect for 5000 ms without a success',
    });
  });

  it('missed reports make the member suspect at once; successes do not count until a report arrives', () => {
    const { m } = machine({ fall: 3, downAfter: 2, rise: 1 });
    const t = m.apply({ kind: 'report-missed', reason: 'no load report for 3000 ms' });
    assert.deepEqual(t, { from: 'up', to: 'suspect', reason: 'no load report for 3000 ms' });
    assert.equal(m.apply(pass()), undefined, 'a passing check does not clear missed reports');
    m.apply({ kind: 'report-missed', reason: 'still nothing' });
    assert.equal(m.state, 'suspect');
    m.apply({ kind: 'report-missed', reason: 'still nothing' });
    assert.equal(m.state, 'down');
    assert.equal(m.apply({ kind: 'report' }), undefined);
    assert.deepEqual(m.apply(pass())?.to, 'up');
  });

  it('drain is sticky and undrain returns to the state the signals imply', () => {
    const { m } = machine({ fall: 1, downAfter: 1, rise: 1 });
    assert.deepEqual(m.drain(), { from: 'up', to: 'draining', reason: 'drained by operator' });
    assert.deepEqual(feed(m, fail(), 5), []);
    assert.equal(m.state, 'draining');
    assert.deepEqual(m.undrain(), { from: 'draining', to: 'down', reason: 'undrained by operator' });
    m.drain('deploy');
    m.apply(pass());
    assert.deepEqual(m.undrain(), { from: 'draining', to: 'up', reason: 'undrained by operator' });
  });

  it('flap damping holds a flapping member down until the penalty decays below the reuse threshold', () => {
    const { m, clock } = machine({ fall: 1, downAfter: 1, rise: 1 }); // default damping
    const flap = () => {
      m.apply(fail());
      m.apply(fail());
      return m.apply(pass());
    };
    assert.equal(flap()?.to, 'up');
    assert.equal(flap()?.to, 'up');
    m.apply(fail());
    const down = m.apply(fail());
    assert.equal(down?.to, 'down');
    assert.match(down?.reason ?? '', /held down by flap damping \(penalty 3000 >= 3000\)/);
    assert.equal(m.apply(pass()), undefined, 'checks pass but the member stays down');
    assert.equal(m.details.implied, 'up');
    assert.equal(m.state, 'down');
    // 3000 decays to 750 (the reuse threshold) after two half-lives (2 × 60 s).
    clock.now += 119_000;
    assert.equal(m.tick(), undefined);
    clock.now += 2_000;
    const released = m.tick();
    assert.equal(released?.from, 'down');
    assert.equal(released?.to, 'up');
    assert.match(released?.reason ?? '', /released by flap damping/);
  });

  it('flapPenalty 0 turns damping off', () => {
    const { m } = machine({ fall: 1, downAfter: 1, rise: 1, flapPenalty: 0 });
    for (let i = 0; i < 20; i++) {
      m.apply(fail());
      m.apply(fail());
      assert.equal(m.apply(pass())?.to, 'up');
    }
  });

  it('starts from a given state (e.g. what the registry says)', () => {
    assert.equal(machine({}, 'down').m.state, 'down');
    assert.equal(machine({}, 'suspect').m.state, 'suspect');
    const drained = machine({ rise: 1 }, 'draining').m;
    assert.equal(drained.state, 'draining');
    assert.equal(drained.undrain()?.to, 'up');
  });
});

// ---------------------------------------------------------------- properties

const signalArb: fc.Arbitrary<HealthSignal> = fc.oneof(
  fc.record({ kind: fc.constant('check' as const), ok: fc.boolean(), reason: fc.constant('c') }),
  fc.record({ kind: fc.constant('passive' as const), ok: fc.boolean(), reason: fc.constant('p') }),
  fc.constant({ kind: 'report-missed', reason: 'm' } as const),
  fc.constant({ kind: 'report' } as const),
  fc.constant({ kind: 'tick' } as const),
);
const timedArb = fc.array(fc.tuple(signalArb, fc.integer({ min: 0, max: 30_000 })), { maxLength: 80 });
const thresholdsArb: fc.Arbitrary<HealthThresholds> = fc
  .record({
    fall: fc.integer({ min: 1, max: 5 }),
    rise: fc.integer({ min: 1, max: 5 }),
    downAfter: fc.integer({ min: 1, max: 5 }),
    suspectTimeoutMs: fc.integer({ min: 1, max: 100_000 }),
    flapPenalty: fc.integer({ min: 0, max: 2_000 }),
    halfLifeMs: fc.integer({ min: 1, max: 200_000 }),
    suppressThreshold: fc.integer({ min: 100, max: 5_000 }),
    reuseFraction: fc.double({ min: 0.05, max: 0.95, noNaN: true }),
  })
  .map(({ reuseFraction, ...t }) =>
    resolveThresholds({
      ...t,
      reuseThreshold: Math.max(1, Math.floor(t.suppressThreshold * reuseFraction)),
      maxPenalty: t.suppressThreshold * 4,
    }),
  );

describe('health state machine properties', () => {
  it('never down without `fall` failures (or a missed-report deadline)', () => {
    fc.assert(
      fc.property(thresholdsArb, timedArb, (t, signals) => {
        let m = initialMachine('up', 0);
        let now = 0;
        let failures = 0;
        let missed = 0;
        for (const [signal, dt] of signals) {
          now += dt;
          if ((signal.kind === 'check' || signal.kind === 'passive') && !signal.ok) failures += 1;
          if (signal.kind === 'report-missed') missed += 1;
          m = step(m, signal, now, t).state;
          if (publishedState(m) === 'down') assert.ok(failures >= t.fall || missed > 0);
        }
      }),
    );
  });

  it('every transition goes from the state before to the state after; no transition, no change', () => {
    fc.assert(
      fc.property(thresholdsArb, timedArb, (t, signals) => {
        let m = initialMachine('up', 0);
        let now = 0;
        for (const [signal, dt] of signals) {
          now += dt;
          const before = publishedState(m);
          const r = step(m, signal, now, t);
          const after = publishedState(r.state);
          if (r.transition) {
            assert.equal(r.transition.from, before);
            assert.equal(r.transition.to, after);
            assert.notEqual(before, after);
            assert.ok(r.transition.reason.length > 0);
          } else assert.equal(after, before);
          if (r.state.suppressed) assert.notEqual(after, 'up', 'a suppressed member is never up');
          m = r.state;
        }
      }),
    );
  });

  it('drain is sticky under any signals, and undrain gives what the signals imply', () => {
    fc.assert(
      fc.property(
        thresholdsArb,
        fc.constantFrom<HealthState>('up', 'suspect', 'down'),
        timedArb,
        (t, initial, signals) => {
          let drained = step(initialMachine(initial, 0), { kind: 'drain' }, 0, t).state;
          let twin = initialMachine(initial, 0);
          let now = 0;
          for (const [signal, dt] of signals) {
            now += dt;
            const r = step(drained, signal, now, t);
            assert.equal(r.transition, undefined, 'no transition while draining');
            assert.equal(publishedState(r.state), 'draining');
            drained = r.state;
            twin = step(twin, signal, now, t).state;
          }
          const undrained = step(drained, { kind: 'undrain' }, now, t).state;
          assert.equal(publishedState(undrained), publishedState(step(twin, { kind: 'tick' }, now, t).state));
        },
      ),
    );
  });

  it('damping suppresses a member that flaps often enough, and releases it once the penalty decays', () => {
    fc.assert(
      fc.property(thresholdsArb, (t0) => {
        const t = t0.flapPenalty === 0 ? { ...t0, flapPenalty: 500 } : t0;
        const flaps = Math.ceil(t.suppressThreshold / t.flapPenalty);
        let m = initialMachine('up', 0);
        const now = 0;
        const apply = (s: HealthSignal, n: number, at = now) => {
          for (let i = 0; i < n; i++) m = step(m, s, at, t).state;
        };
        for (let i = 0; i < flaps; i++) {
          apply(fail(), t.fall + t.downAfter);
          assert.equal(m.implied, 'down');
          apply(pass(), t.rise);
        }
        assert.equal(m.implied, 'up', 'the checks say up');
        assert.equal(publishedState(m), 'down', 'but the member is held down');
        // Long enough for the penalty (at most maxPenalty) to decay below reuse.
        const later = t.halfLifeMs * Math.ceil(Math.log2(t.maxPenalty / t.reuseThreshold) + 1);
        m = step(m, { kind: 'tick' }, later, t).state;
        assert.equal(publishedState(m), 'up');
      }),
    );
  });
});
