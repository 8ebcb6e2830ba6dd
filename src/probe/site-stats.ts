/**
 * Counts of clients the assigner placed on another site (P0.9), as the Prometheus counter
 * `usher_probe_overflow_total{from,to}` (from: the assigner's site, to: the member's) and as the
 * `sites` part of the assigner's summary.
 */
import type { Counter } from 'prom-client';
import type { Metrics } from '../admin/metrics.js';
import type { OverflowReason } from './sites.js';

export interface SitesSummary {
  /** `assigner.site`, or null when each app takes its pool's majority site. */
  readonly site: string | null;
  /** Clients placed on another site, by `<from>-><to>`. */
  readonly overflow: Readonly<Record<string, number>>;
  /** The same, by why the local site could not take them. */
  readonly overflowReasons: Readonly<Record<OverflowReason, number>>;
}

export class SiteStats {
  readonly #overflowM: Counter<'from' | 'to'>;
  readonly #overflow = new Map<string, number>();
  readonly #reasons: Record<OverflowReason, number> = { down: 0, full: 0 };

  constructor(metrics: Metrics) {
    this.#overflowM = metrics.counter(
      'probe_overflow_total',
      "Clients placed on a member of another site than the assigner's: from the assigner's site to the member's.",
      ['from', 'to'],
    );
  }

  overflow(from: string, to: string, reason: OverflowReason): void {
    this.#overflowM.inc({ from, to });
    const key = `${from}->${to}`;
    this.#overflow.set(key, (this.#overflow.get(key) ?? 0) + 1);
    this.#reasons[reason] += 1;
  }

  summary(site: string | undefined): SitesSummary {
    return {
      site: site ?? null,
      overflow: Object.fromEntries([...this.#overflow].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      overflowReasons: { ...this.#reasons },
    };
  }
}
