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

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
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
  readonly #requestsM: Counter<'app' | 'kind'>;
  readonly #assignmentsM: Counter<'app' | 'member' | 'mode'>;
  readonly #droppedM: Counter<'reason'>;
  readonly #errorsM: Counter<'code'>;
  readonly #retriesM: Counter<'kind'>;
  readonly #bytesM: Counter<'direction'>;
  readonly #requests = new Map<string, number>();
  readonly #assignments = new Map<string, number>();
  readonly #members = new Map<string, number>();
  readonly #dropped = new Map<string, number>();
  readonly #errors = new Map<string, number>();
  readonly #retries = new Map<string, number>();
  readonly #bytes = new Map<ByteDirection, number>();
  readonly #window = new RateWindow();

  constructor(metrics: Metrics) {
    this.#requestsM = metrics.counter(
      'probe_requests_total',
      'Probe-protocol requests received, by app and kind.',
      ['app', 'kind'],
    );
    this.#assignmentsM = metrics.counter(
      'probe_assignments_total',
      'Clients the assigner placed on a member.',
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
    this.#bytesM = metrics.counter(
      'probe_bytes_total',
      'Probe-protocol bytes: in (received), out (to clients), out-member (to members).',
      ['direction'],
    );
    for (const direction of ['in', 'out', 'out-member'] as const) this.#bytesM.inc({ direction }, 0);
  }

  request(app: string, kind: string): void {
    this.#requestsM.inc({ app, kind });
    bump(this.#requests, app);
  }

  assignment(app: string, member: string, mode: string, nowMs: number): void {
    this.#assignmentsM.inc({ app, member, mode });
    bump(this.#assignments, app);
    bump(this.#members, member);
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
    this.#bytesM.inc({ direction }, n);
    this.#bytes.set(direction, (this.#bytes.get(direction) ?? 0) + n);
  }

  summary(
    base: { address: string; mode: 'forward' | 'answer'; sources: number },
    apps: Readonly<Record<string, { pool: string }>>,
    nowMs: number,
  ): AssignerSummary {
    return {
      address: base.address,
      mode: base.mode,
      assignmentsPerSecond: Math.round(this.#window.rate(nowMs) * 100) / 100,
      totals: {
        requests: sum(this.#requests),
        assignments: sum(this.#assignments),
        dropped: sum(this.#dropped),
        errors: sum(this.#errors),
        retries: sum(this.#retries),
        bytesIn: this.#bytes.get('in') ?? 0,
        bytesOut: this.#bytes.get('out') ?? 0,
        bytesToMembers: this.#bytes.get('out-member') ?? 0,
      },
      apps: Object.fromEntries(
        Object.entries(apps).map(([name, a]) => [
          name,
          {
            pool: a.pool,
            requests: this.#requests.get(name) ?? 0,
            assignments: this.#assignments.get(name) ?? 0,
          },
        ]),
      ),
      members: Object.fromEntries([...this.#members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      dropped: Object.fromEntries(this.#dropped),
      errors: Object.fromEntries(this.#errors),
      sources: base.sources,
    };
  }
}
