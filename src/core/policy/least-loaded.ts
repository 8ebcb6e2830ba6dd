import { InvalidArgumentError } from '../../errors.js';
import {
  eligible,
  type LoadMetric,
  type LoadReport,
  loadMetric,
  type Member,
  type MemberView,
} from '../model.js';
import type { PickRequest, Policy, Random } from './policy.js';
import { randomIndex } from './random.js';
import { sanitizeWeight } from './weighted-random.js';

export interface LeastLoadedOptions {
  /** Metric to minimise; `connections` by default. A missing load report reads as 0. */
  readonly metric?: LoadMetric;
  /** Divide the metric by `member.weight` (a member with twice the weight may carry twice the load). Default false. */
  readonly normalizeByWeight?: boolean;
  /** Breaks ties that weight does not break; `Math.random` by default. */
  readonly random?: Random;
}

const BUILT_IN_METRICS = new Set(['users', 'connections', 'inFlight', 'cpu']);

/** Checks a metric name (`users`, `connections`, `inFlight`, `cpu` or `custom.<name>`). */
export function assertLoadMetric(metric: unknown, where: string): asserts metric is LoadMetric {
  const ok =
    typeof metric === 'string' &&
    (BUILT_IN_METRICS.has(metric) || (metric.startsWith('custom.') && metric.length > 'custom.'.length));
  if (!ok) {
    throw new InvalidArgumentError(
      `${where}: expected one of users, connections, inFlight, cpu or custom.<name>, got ${JSON.stringify(metric)}`,
    );
  }
}

/**
 * A fast reader for one metric (no string parsing per call): a missing report or metric reads as
 * 0, like `loadMetric`.
 */
export function metricReader(metric: LoadMetric): (load: LoadReport | undefined) => number {
  if (metric.startsWith('custom.')) {
    const name = metric.slice('custom.'.length);
    return (load) => load?.custom[name] ?? 0;
  }
  const key = metric as Exclude<LoadMetric, `custom.${string}`>;
  return (load) => (load === undefined ? 0 : load[key]);
}

/** `metric` as compared: NaN reads as +Infinity; divided by the weight when asked (no usable weight: +Infinity). */
export function scoreOf(value: number, weight: number, normalizeByWeight: boolean): number {
  const raw = Number.isNaN(value) ? Number.POSITIVE_INFINITY : value;
  if (!normalizeByWeight) return raw;
  const w = sanitizeWeight(weight);
  return w === 0 ? Number.POSITIVE_INFINITY : raw / w;
}

/**
 * The load a policy compares: the metric, divided by the weight when asked. A member with no
 * usable weight scores +Infinity under normalisation (it is chosen only if nothing else is).
 */
export function loadScore(view: MemberView, metric: LoadMetric, normalizeByWeight: boolean): number {
  return scoreOf(loadMetric(view.load, metric), view.member.weight, normalizeByWeight);
}

/**
 * The eligible member with the lowest load metric (optionally per unit of weight). Ties go to
 * the member with the greater weight, then uniformly at random among those still tied.
 * Note: a member without a load report reads as 0 load, so a fresh member attracts every pick
 * until its first report arrives; pair with reports at a short interval.
 */
export class LeastLoadedPolicy implements Policy {
  readonly name = 'least-loaded';
  readonly #read: (load: LoadReport | undefined) => number;
  readonly #normalize: boolean;
  readonly #random: Random;
  readonly #tied: number[] = [];

  constructor(options: LeastLoadedOptions = {}) {
    const metric = options.metric ?? 'connections';
    assertLoadMetric(metric, 'least-loaded: option metric');
    this.#read = metricReader(metric);
    this.#normalize = options.normalizeByWeight ?? false;
    this.#random = options.random ?? Math.random;
  }

  pick(request: PickRequest): Member | undefined {
    const members = eligible(request.members);
    if (members.length === 0) return undefined;
    const tied = this.#tied;
    tied.length = 0;
    let bestScore = Number.POSITIVE_INFINITY;
    let bestWeight = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < members.length; i++) {
      const view = members[i]!;
      const score = scoreOf(this.#read(view.load), view.member.weight, this.#normalize);
      const weight = sanitizeWeight(view.member.weight);
      if (tied.length === 0 || score < bestScore || (score === bestScore && weight > bestWeight)) {
        bestScore = score;
        bestWeight = weight;
        tied.length = 0;
        tied.push(i);
      } else if (score === bestScore && weight === bestWeight) {
        tied.push(i);
      }
    }
    const index = tied.length === 1 ? tied[0]! : tied[randomIndex(tied.length, this.#random)]!;
    return members[index]!.member;
  }
}
