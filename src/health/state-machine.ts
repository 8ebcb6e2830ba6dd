/**
 * The health state machine of one member: pure, synchronous, no timers. Time comes from the
 * caller (`now` in ms); `tick` signals let time-based rules fire when nothing else happens.
 *
 * Signals
 * - `check`   an active check result (pass / fail with a reason).
 * - `passive` what traffic saw: an error or timeout (fail) or a completed request (pass).
 * - `report-missed` the member's load-report deadline passed (the caller decides the deadline,
 *   e.g. no report for 3 intervals) — and again for every further interval that passes.
 * - `report`  a load report arrived.
 * - `drain` / `undrain` operator actions.
 * - `tick`    no news; only time-based rules are evaluated.
 *
 * States (model.ts): up, suspect, down, draining. The machine tracks the state the signals
 * imply (`implied`: up / suspect / down) and derives the published state from it:
 * `draining` if drained, else `down` if suppressed by flap damping, else `implied`.
 *
 * Rules for `implied`
 * - A failure (`check`/`passive` fail, `report-missed`) resets the success count and adds one
 *   to the consecutive failure count. A success resets the failure count and adds one to the
 *   success count.
 * - up → suspect after `fall` consecutive failures. Suspicion comes before down: a suspect
 *   member is still chosen when no member is up (model.ts `eligible`).
 *   A `report-missed` moves up → suspect at once (its deadline already counts missed
 *   intervals) and counts as `fall` failures.
 * - suspect → down after `downAfter` further consecutive failures, or when the member has
 *   been suspect for `suspectTimeoutMs` without a success (evaluated on any signal, `tick`
 *   included).
 * - suspect → up on one success.
 * - down → up after `rise` consecutive successes.
 * - Missed reports: `report-missed` marks the member's reports stale, `report` clears the mark.
 *   While stale, successes are ignored (neither counted nor resetting failures): a member that
 *   answers checks but stopped reporting is alive but its load is unknown, so it is not
 *   trusted back to up until it reports again.
 *
 * Flap damping (after RFC 2439, route flap damping)
 * - Every time `implied` enters down, `flapPenalty` is added to a penalty that decays
 *   exponentially with half-life `halfLifeMs`, capped at `maxPenalty`.
 * - When the penalty reaches `suppressThreshold` the member is suppressed: it is published as
 *   down whatever the signals imply, until the penalty has decayed below `reuseThreshold`;
 *   then it takes the implied state again (checked on every signal, `tick` included).
 *   With the defaults, the third flap within about a minute suppresses the member for
 *   about two minutes; `flapPenalty: 0` turns damping off.
 *
 * Drain is sticky: a drained member is published as `draining` whatever the signals say;
 * signals still update `implied` (and damping), so `undrain` returns it to the state the
 * signals imply.
 *
 * Every change of the published state is returned as a transition `{ from, to, reason }`.
 */
import type { HealthState } from '../core/model.js';
import { InvalidArgumentError } from '../errors.js';

/** Thresholds of the state machine. */
export interface HealthThresholds {
  /** Consecutive failures that move up → suspect. */
  readonly fall: number;
  /** Consecutive successes that move down → up. */
  readonly rise: number;
  /** Further consecutive failures (after `fall`) that move suspect → down. */
  readonly downAfter: number;
  /** Time suspect without a success that moves suspect → down (`Infinity`: never). */
  readonly suspectTimeoutMs: number;
  /** Penalty added each time the member goes down; 0 disables damping. */
  readonly flapPenalty: number;
  /** Half-life of the penalty. */
  readonly halfLifeMs: number;
  /** Penalty at or above which the member is suppressed (held down). */
  readonly suppressThreshold: number;
  /** Penalty below which a suppressed member is released. */
  readonly reuseThreshold: number;
  /** Ceiling of the penalty (bounds the longest suppression). */
  readonly maxPenalty: number;
}

export const HEALTH_DEFAULTS: HealthThresholds = Object.freeze({
  fall: 3,
  rise: 2,
  downAfter: 2,
  suspectTimeoutMs: 10_000,
  flapPenalty: 1_000,
  halfLifeMs: 60_000,
  suppressThreshold: 3_000,
  reuseThreshold: 750,
  maxPenalty: 12_000,
});

export type HealthSignal =
  | { readonly kind: 'check'; readonly ok: boolean; readonly reason: string }
  | { readonly kind: 'passive'; readonly ok: boolean; readonly reason: string }
  | { readonly kind: 'report-missed'; readonly reason: string }
  | { readonly kind: 'report' }
  | { readonly kind: 'drain'; readonly reason?: string }
  | { readonly kind: 'undrain'; readonly reason?: string }
  | { readonly kind: 'tick' };

export interface HealthTransition {
  readonly from: HealthState;
  readonly to: HealthState;
  readonly reason: string;
}

export type ImpliedHealth = 'up' | 'suspect' | 'down';

/** Everything the machine remembers about one member. Immutable; `step` returns a new one. */
export interface MachineState {
  readonly implied: ImpliedHealth;
  readonly drained: boolean;
  readonly suppressed: boolean;
  readonly failures: number;
  readonly successes: number;
  /** When `implied` became suspect (ms), while it is. */
  readonly suspectSince: number | undefined;
  readonly reportsStale: boolean;
  /** Flap penalty as of `penaltyAt`. */
  readonly penalty: number;
  readonly penaltyAt: number;
}

/** Checks thresholds and fills in defaults; throws InvalidArgumentError for impossible values. */
export function resolveThresholds(partial: Partial<HealthThresholds> = {}): HealthThresholds {
  const t: HealthThresholds = { ...HEALTH_DEFAULTS, ...stripUndefined(partial) };
  for (const key of ['fall', 'rise', 'downAfter'] as const) {
    if (!Number.isInteger(t[key]) || t[key] < 1)
      throw new InvalidArgumentError(`health.${key}: expected an integer >= 1, got ${t[key]}`);
  }
  if (!(t.suspectTimeoutMs > 0))
    throw new InvalidArgumentError(`health.suspectTimeoutMs: expected > 0, got ${t.suspectTimeoutMs}`);
  if (!(t.flapPenalty >= 0) || !Number.isFinite(t.flapPenalty))
    throw new InvalidArgumentError(`health.flapPenalty: expected a finite number >= 0, got ${t.flapPenalty}`);
  if (t.flapPenalty > 0) {
    if (!(t.halfLifeMs > 0) || !Number.isFinite(t.halfLifeMs))
      throw new InvalidArgumentError(`health.halfLifeMs: expected a finite number > 0, got ${t.halfLifeMs}`);
    if (!(t.reuseThreshold > 0 && t.reuseThreshold < t.suppressThreshold))
      throw new InvalidArgumentError(
        `health.reuseThreshold: expected 0 < reuseThreshold < suppressThreshold (${t.suppressThreshold}), got ${t.reuseThreshold}`,
      );
    if (!(t.maxPenalty >= t.suppressThreshold))
      throw new InvalidArgumentError(
        `health.maxPenalty: expected >= suppressThreshold (${t.suppressThreshold}), got ${t.maxPenalty}`,
      );
  }
  return Object.freeze(t);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A machine starting in `initial` (a registry's current health, `up` by default). */
export function initialMachine(initial: HealthState = 'up', now = 0): MachineState {
  return {
    implied: initial === 'draining' ? 'up' : initial,
    drained: initial === 'draining',
    suppressed: false,
    failures: 0,
    successes: 0,
    suspectSince: initial === 'suspect' ? now : undefined,
    reportsStale: false,
    penalty: 0,
    penaltyAt: now,
  };
}

/** The state published for a machine. */
export function publishedState(m: MachineState): HealthState {
  if (m.drained) return 'draining';
  if (m.suppressed) return 'down';
  return m.implied;
}

/** The flap penalty decayed to `now`. */
export function penaltyAt(m: MachineState, now: number, t: HealthThresholds): number {
  if (m.penalty === 0 || t.flapPenalty === 0) return 0;
  return m.penalty * 2 ** (-Math.max(0, now - m.penaltyAt) / t.halfLifeMs);
}

/** Applies one signal at time `now`. Pure: returns the next state and the transition, if any. */
export function step(
  m: MachineState,
  signal: HealthSignal,
  now: number,
  t: HealthThresholds,
): { state: MachineState; transition?: HealthTransition } {
  const before = publishedState(m);
  const s: { -readonly [K in keyof MachineState]: MachineState[K] } = { ...m };
  let reason: string | undefined;

  const enterDown = (why: string): void => {
    s.implied = 'down';
    s.suspectSince = undefined;
    s.successes = 0;
    reason = why;
    if (t.flapPenalty > 0) {
      s.penalty = Math.min(t.maxPenalty, penaltyAt(s, now, t) + t.flapPenalty);
      s.penaltyAt = now;
      if (!s.suppressed && s.penalty >= t.suppressThreshold) {
        s.suppressed = true;
        reason = `${why}; held down by flap damping (penalty ${Math.round(s.penalty)} >= ${t.suppressThreshold})`;
      }
    }
  };

  const failure = (why: string, decisive: boolean): void => {
    s.successes = 0;
    s.failures = decisive ? Math.max(s.failures + 1, t.fall) : s.failures + 1;
    if (s.implied === 'up' && s.failures >= t.fall) {
      s.implied = 'suspect';
      s.suspectSince = now;
      reason = decisive ? why : `${s.failures} consecutive failures (last: ${why})`;
    } else if (s.implied === 'suspect' && s.failures >= t.fall + t.downAfter) {
      enterDown(`${s.failures} consecutive failures (last: ${why})`);
    }
  };

  const success = (why: string): void => {
    if (s.reportsStale) return;
    s.failures = 0;
    s.successes += 1;
    if (s.implied === 'suspect') {
      s.implied = 'up';
      s.suspectSince = undefined;
      reason = `recovered (${why})`;
    } else if (s.implied === 'down' && s.successes >= t.rise) {
      s.implied = 'up';
      reason = `${s.successes} consecutive successes (last: ${why})`;
    }
  };

  switch (signal.kind) {
    case 'check':
    case 'passive':
      if (signal.ok) success(signal.reason);
      else failure(signal.reason, false);
      break;
    case 'report-missed':
      s.reportsStale = true;
      failure(signal.reason, true);
      break;
    case 'report':
      s.reportsStale = false;
      break;
    case 'drain':
      s.drained = true;
      reason = signal.reason ?? 'drained by operator';
      break;
    case 'undrain':
      s.drained = false;
      reason = signal.reason ?? 'undrained by operator';
      break;
    case 'tick':
      break;
  }

  if (s.implied === 'suspect' && s.suspectSince !== undefined && now - s.suspectSince >= t.suspectTimeoutMs) {
    enterDown(`suspect for ${now - s.suspectSince} ms without a success`);
  }
  if (s.suppressed) {
    const p = penaltyAt(s, now, t);
    if (p < t.reuseThreshold) {
      s.suppressed = false;
      s.penalty = p;
      s.penaltyAt = now;
      if (!s.drained && s.implied !== 'down')
        reason = `released by flap damping (penalty ${Math.round(p)} < ${t.reuseThreshold})`;
    }
  }

  const after = publishedState(s);
  if (after === before) return { state: s };
  if (before === 'draining' && reason === undefined) reason = 'undrained';
  return { state: s, transition: { from: before, to: after, reason: reason ?? `now ${after}` } };
}

export interface HealthStateMachineOptions {
  readonly thresholds?: Partial<HealthThresholds>;
  /** Clock in ms; `Date.now` by default. Inject one to test time-based rules. */
  readonly clock?: () => number;
  /** Starting state (e.g. what the registry says); `up` by default. */
  readonly initial?: HealthState;
}

/** A stateful wrapper around `step` with an injectable clock. Holds no timers. */
export class HealthStateMachine {
  readonly thresholds: HealthThresholds;
  #clock: () => number;
  #state: MachineState;

  constructor(options: HealthStateMachineOptions = {}) {
    this.thresholds = resolveThresholds(options.thresholds);
    this.#clock = options.clock ?? Date.now;
    this.#state = initialMachine(options.initial, this.#clock());
  }

  /** The published state. */
  get state(): HealthState {
    return publishedState(this.#state);
  }

  /** Everything the machine remembers (immutable). */
  get details(): MachineState {
    return this.#state;
  }

  /** The flap penalty now. */
  penalty(): number {
    return penaltyAt(this.#state, this.#clock(), this.thresholds);
  }

  apply(signal: HealthSignal): HealthTransition | undefined {
    const { state, transition } = step(this.#state, signal, this.#clock(), this.thresholds);
    this.#state = state;
    return transition;
  }

  tick(): HealthTransition | undefined {
    return this.apply({ kind: 'tick' });
  }

  drain(reason?: string): HealthTransition | undefined {
    return this.apply({ kind: 'drain', reason });
  }

  undrain(reason?: string): HealthTransition | undefined {
    return this.apply({ kind: 'undrain', reason });
  }
}
