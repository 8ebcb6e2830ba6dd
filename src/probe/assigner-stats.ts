/**
 * The assigner's counters: Prometheus metrics (through `Metrics`) and the same figures kept in
 * plain maps for the role summary the dashboard shows (prom-client reads are asynchronous).
 *
 * Metrics (all prefixed `usher_`):
 * - `probe_requests_total{app,kind}`: PROBE and CATALOG requests decoded (app `(unknown)` for
 *   apps not configured, so a client cannot grow the label set; empty for CATALOG);
 * - `probe_assignments_total{app,member,mode}`: clients placed on a member;
 * - `probe_dropped_total{reason}`: datagrams dropped, or requests left unanswered;
 * - `probe_errors_sent_total{code}`: ERROR answers by code name;
 * - `probe_retries_sent_total{kind}`: RETRY answers (a cookie instead of a larger answer);
 * - `probe_bytes_total{direction}`: `in` (every datagram received), `out` (to clients),
 *   `out-member` (FORWARD and NOTIFY to members).
 *
 * The per-datagram ones (requests, assignments, bytes) are counted in plain fields and added to
 * prom-client when it is read (`BufferedCounter`): prom-client's `inc(labels)` builds and looks
 * up a key string per call, several times per datagram.
 */
import type { Counter } from 'prom-client';
import type { Metrics } from '../admin/metrics.js';

/** Assignments per second are averaged over this many seconds. */
export const RATE_WINDOW_SECONDS = 10;

export type ByteDirection = 'in' | 'out' | 'out-member';

export interface AssignerSummary {
  /** `host:port` the assigner listens on. */
  readonly address: string;
  readonly mode: 'forward' | 'answer';
  /** Assignments per second over the last `RATE_WINDOW_SECONDS` seconds. */
  readonly assignmentsPerSecond: number;
  readonly totals: {
    readonly requests: number;
    readonly assignments: number;
    readonly dropped: number;
    readonly errors: number;
    readonly retries: number;
    readonly bytesIn: number;
    readonly bytesOut: number;
    readonly bytesToMembers: number;
  };
  /** Per configured app: its pool, requests and assignments. */
  readonly apps: Readonly<Record<string, { pool: string; requests: number; assignments: number }>>;
  /** Assignments per member id. */
  readonly members: Readonly<Record<string, number>>;
  /** Drops by reason. */
  readonly dropped: Readonly<Record<string, number>>;
  /** ERROR answers by code name. */
  readonly errors: Readonly<Record<string, number>>;
  /** Sources the rate limiter currently remembers. */
  readonly sources: number;
}

/** One series of a `BufferedCounter`: its labels, the increments not yet in prom-client, all of them. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>;
  pending: number;
  /** Everything `inc` added (for the summary; direct `pending` writes are not counted). */
  total: number;
}

type Level<T> = Map<string, T>;

/**
 * A prom-client counter whose increments are kept in plain numbers and added to it when the
 * metric is read (prom-client calls `collect` before every read), so a scrape sees every count.
 * Series are found by their label values (in label-name order, up to three) through nested maps,
 * with no key string built per increment; hot callers keep the `Series` and add to `pending`.
 */
export class BufferedCounter<L extends string> {
  readonly #counter: Counter<L>;
  readonly #labelNames: readonly L[];
  readonly #tree: Level<Level<Level<Series>>> = new Map();
  readonly #all: Series[] = [];

  constructor(counter: Counter<L>, labelNames: readonly L[]) {
    if (labelNames.length > 3) throw new RangeError('BufferedCounter: at most three labels');
    this.#counter = counter;
    this.#labelNames = labelNames;
    // Chained: another BufferedCounter over the same metric (one Metrics, two assigners) keeps its hook.
    const metric = counter as unknown as { collect?: () => void | Promise<void> };
    const previous = metric.collect;
    metric.collect = () => {
      this.flush();
      return previous?.call(counter);
    };
  }

  /** The series with these label values; unused trailing values are ''. */
  series(a: string, b = '', c = ''): Series {
    let l1 = this.#tree.get(a);
    if (l1 === undefined) {
      l1 = new Map();
      this.#tree.set(a, l1);
    }
    let l2 = l1.get(b);
    if (l2 === undefined) {
      l2 = new Map();
      l1.set(b, l2);
    }
    let s = l2.get(c);
    if (s === undefined) {
      const values = [a, b, c];
      const labels: Record<string, string> = {};
      this.#labelNames.forEach((name, i) => {
        labels[name] = values[i]!;
      });
      s = { labels, pending: 0, total: 0 };
      l2.set(c, s);
      this.#all.push(s);
    }
    return s;
  }

  inc(n: number, a: string, b = '', c = ''): void {
    const s = this.series(a, b, c);
    s.pending += n;
    s.total += n;
  }

  /** Every series so far. */
  all(): readonly Series[] {
    return this.#all;
  }

  /** Adds the pending increments to prom-client. */
  flush(): void {
    for (const s of this.#all) {
      if (s.pending === 0) continue;
      this.#counter.inc(s.labels as Partial<Record<L, string>>, s.pending);
      s.pending = 0;
    }
  }
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** The series totals of `counter` added up by the value of one label. */
function totalsBy<L extends string>(counter: BufferedCounter<L>, label: L): Map<string, number> {
  const totals = new Map<string, number>();
  for (const s of counter.all()) bump(totals, s.labels[label] ?? '', s.total);
  return totals;
}

function sum(map: Map<string, number>): number {
  let n = 0;
  for (const v of map.values()) n += v;
  return n;
}

/** Events per second over a sliding window of one-second slots. */
export class RateWindow {
  readonly #slots: number[];
  readonly #counts: number[];
  constructor(readonly seconds = RATE_WINDOW_SECONDS) {
    this.#slots = new Array<number>(seconds).fill(-1);
    this.#counts = new Array<number>(seconds).fill(0);
  }
  add(nowMs: number, n = 1): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % this.seconds;
    if (this.#slots[i] !== sec) {
      this.#slots[i] = sec;
      this.#counts[i] = 0;
    }
    this.#counts[i]! += n;
  }
  rate(nowMs: number): number {
    const sec = Math.floor(nowMs / 1000);
    let n = 0;
    for (let i = 0; i < this.seconds; i++) if (this.#slots[i]! > sec - this.seconds) n += this.#counts[i]!;
    return n / this.seconds;
  }
}

export class AssignerStats {
  readonly #requestsM: BufferedCounter<'app' | 'kind'>;
  readonly #assignmentsM: BufferedCounter<'app' | 'member' | 'mode'>;
  readonly #droppedM: Counter<'reason'>;
  readonly #errorsM: Counter<'code'>;
  readonly #retriesM: Counter<'kind'>;
  /** Bytes by direction: the three series of `probe_bytes_total`. */
  readonly #bytesM: Record<ByteDirection, Series>;
  readonly #dropped = new Map<string, number>();
  readonly #errors = new Map<string, number>();
  readonly #retries = new Map<string, number>();
  readonly #bytes: Record<ByteDirection, number> = { in: 0, out: 0, 'out-member': 0 };
  readonly #window = new RateWindow();

  constructor(metrics: Metrics) {
    this.#requestsM = new BufferedCounter(
      metrics.counter('probe_requests_total', 'Probe-protocol requests received, by app and kind.', [
        'app',
        'kind',
      ]),
      ['app', 'kind'],
    );
    this.#assignmentsM = new BufferedCounter(
      metrics.counter('probe_assignments_total', 'Clients the assigner placed on a member.', [
        'app',
        'member',
        'mode',
      ]),
      ['app', 'member', 'mode'],
    );
    this.#droppedM = metrics.counter(
      'probe_dropped_total',
      'Datagrams the assigner dropped (or left unanswered), by reason.',
      ['reason'],
    );
    this.#errorsM = metrics.counter('probe_errors_sent_total', 'ERROR answers sent, by code.', ['code']);
    this.#retriesM = metrics.counter(
      'probe_retries_sent_total',
      'RETRY answers sent (a cookie instead of an answer larger than the request), by request kind.',
      ['kind'],
    );
    const bytesM = metrics.counter(
      'probe_bytes_total',
      'Probe-protocol bytes: in (received), out (to clients), out-member (to members).',
      ['direction'],
    );
    for (const direction of ['in', 'out', 'out-member'] as const) bytesM.inc({ direction }, 0);
    const bytes = new BufferedCounter(bytesM, ['direction']);
    this.#bytesM = {
      in: bytes.series('in'),
      out: bytes.series('out'),
      'out-member': bytes.series('out-member'),
    };
  }

  // Per datagram: one series each, whose totals the summary adds up.
  request(app: string, kind: string): void {
    this.#requestsM.inc(1, app, kind);
  }

  assignment(app: string, member: string, mode: string, nowMs: number): void {
    this.#assignmentsM.inc(1, app, member, mode);
    this.#window.add(nowMs);
  }

  drop(reason: string): void {
    this.#droppedM.inc({ reason });
    bump(this.#dropped, reason);
  }

  error(code: string): void {
    this.#errorsM.inc({ code });
    bump(this.#errors, code);
  }

  retry(kind: string): void {
    this.#retriesM.inc({ kind });
    bump(this.#retries, kind);
  }

  bytes(direction: ByteDirection, n: number): void {
    this.#bytesM[direction].pending += n;
    this.#bytes[direction] += n;
  }

  summary(
    base: { address: string; mode: 'forward' | 'answer'; sources: number },
    apps: Readonly<Record<string, { pool: string }>>,
    nowMs: number,
  ): AssignerSummary {
    const requests = totalsBy(this.#requestsM, 'app');
    const assignments = totalsBy(this.#assignmentsM, 'app');
    const members = totalsBy(this.#assignmentsM, 'member');
    return {
      address: base.address,
      mode: base.mode,
      assignmentsPerSecond: Math.round(this.#window.rate(nowMs) * 100) / 100,
      totals: {
        requests: sum(requests),
        assignments: sum(assignments),
        dropped: sum(this.#dropped),
        errors: sum(this.#errors),
        retries: sum(this.#retries),
        bytesIn: this.#bytes.in,
        bytesOut: this.#bytes.out,
        bytesToMembers: this.#bytes['out-member'],
      },
      apps: Object.fromEntries(
        Object.entries(apps).map(([name, a]) => [
          name,
          {
            pool: a.pool,
            requests: requests.get(name) ?? 0,
            assignments: assignments.get(name) ?? 0,
          },
        ]),
      ),
      members: Object.fromEntries([...members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      dropped: Object.fromEntries(this.#dropped),
      errors: Object.fromEntries(this.#errors),
      sources: base.sources,
    };
  }
}
