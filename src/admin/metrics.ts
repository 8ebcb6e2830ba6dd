/**
 * Prometheus metrics for every Usher module, kept in a private prom-client registry (never the
 * global default one, so tests and several instances in one process never collide).
 *
 * Modules receive a `Metrics` object and get-or-create what they need:
 *
 *   const drops = metrics.counter('probe_dropped_total', 'Probe packets dropped', ['reason']);
 *   drops.inc({ reason: 'malformed' });
 *
 * Every name is prefixed `usher_` (added when missing), so the line above registers
 * `usher_probe_dropped_total`. Asking again for the same name returns the same metric;
 * asking for it with another type or other labels is a programming error and throws.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry as PromRegistry } from 'prom-client';
import { InvalidArgumentError } from '../errors.js';

export const METRIC_PREFIX = 'usher_';

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type Kind = 'counter' | 'gauge' | 'histogram';

interface Entry {
  readonly kind: Kind;
  readonly labelNames: readonly string[];
  readonly metric: Counter<string> | Gauge<string> | Histogram<string>;
}

export interface MetricsOptions {
  /** Collect Node.js process metrics (CPU, memory, event loop lag, GC) as `usher_process_*` / `usher_nodejs_*`. Default true. */
  readonly defaultMetrics?: boolean;
  /** Labels added to every series (e.g. `{ instance: 'lb-1' }`). */
  readonly defaultLabels?: Readonly<Record<string, string>>;
}

export class Metrics {
  /** The prom-client registry holding every Usher metric of this instance. */
  readonly registry: PromRegistry;
  #entries = new Map<string, Entry>();

  constructor(options: MetricsOptions = {}) {
    this.registry = new PromRegistry();
    if (options.defaultLabels) this.registry.setDefaultLabels({ ...options.defaultLabels });
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** Get or create a counter named `usher_<name>` (the prefix is added when missing). */
  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.#getOrCreate(
      'counter',
      name,
      labelNames,
      (full) => new Counter<L>({ name: full, help, labelNames, registers: [this.registry] }),
    ) as Counter<L>;
  }

  /** Get or create a gauge named `usher_<name>`. */
  gauge<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.#getOrCreate(
      'gauge',
      name,
      labelNames,
      (full) => new Gauge<L>({ name: full, help, labelNames, registers: [this.registry] }),
    ) as Gauge<L>;
  }

  /**
   * Get or create a histogram named `usher_<name>`. `buckets` (upper bounds, ascending) apply
   * only when the histogram is created; prom-client's defaults suit durations in seconds.
   */
  histogram<L extends string = string>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
    buckets?: readonly number[],
  ): Histogram<L> {
    return this.#getOrCreate(
      'histogram',
      name,
      labelNames,
      (full) =>
        new Histogram<L>({
          name: full,
          help,
          labelNames,
          registers: [this.registry],
          ...(buckets ? { buckets: [...buckets] } : {}),
        }),
    ) as Histogram<L>;
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }

  #getOrCreate(
    kind: Kind,
    name: string,
    labelNames: readonly string[],
    create: (fullName: string) => Entry['metric'],
  ): Entry['metric'] {
    const full = normaliseMetricName(name);
    const existing = this.#entries.get(full);
    if (existing) {
      if (existing.kind !== kind)
        throw new InvalidArgumentError(
          `metric ${full}: already registered as a ${existing.kind}, asked for a ${kind}`,
        );
      if (!sameLabels(existing.labelNames, labelNames))
        throw new InvalidArgumentError(
          `metric ${full}: already registered with labels [${existing.labelNames.join(', ')}], asked for [${labelNames.join(', ')}]`,
        );
      return existing.metric;
    }
    for (const label of labelNames) {
      if (!LABEL_RE.test(label) || label.startsWith('__'))
        throw new InvalidArgumentError(
          `metric ${full}: invalid label name ${JSON.stringify(label)}; expected [a-zA-Z_][a-zA-Z0-9_]* not starting with __`,
        );
    }
    if (this.registry.getSingleMetric(full))
      throw new InvalidArgumentError(`metric ${full}: name already used by a default process metric`);
    const metric = create(full);
    this.#entries.set(full, { kind, labelNames: [...labelNames], metric });
    return metric;
  }
}

/** `requests_total` → `usher_requests_total`; names already prefixed are kept. Throws on invalid names. */
export function normaliseMetricName(name: string): string {
  const full = name.startsWith(METRIC_PREFIX) ? name : `${METRIC_PREFIX}${name}`;
  if (full.length === METRIC_PREFIX.length || !NAME_RE.test(full))
    throw new InvalidArgumentError(
      `invalid metric name ${JSON.stringify(name)}: expected [a-zA-Z_:][a-zA-Z0-9_:]* (prefixed ${METRIC_PREFIX})`,
    );
  return full;
}

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((l) => set.has(l));
}
