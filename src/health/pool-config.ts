/**
 * Health-check configuration of a pool, and how one member's labels refine it.
 * The fields match the `pools.<name>.health` section of the config schema, plus the state
 * machine's thresholds and a few tuning knobs (jitter, missedReports).
 */
import type { Member } from '../core/model.js';
import { InvalidArgumentError } from '../errors.js';
import { type HealthThresholds, resolveThresholds } from './state-machine.js';

export type CheckKind = 'tcp' | 'http' | 'udp' | 'none';

/** Health checking of one pool. Threshold fields (fall, rise, ...) are the state machine's. */
export interface PoolHealthConfig extends HealthThresholds {
  readonly kind: CheckKind;
  /** Port number or name of one of the member's `ports`; default: `health`, else `main`, else the first. */
  readonly port?: string | number;
  /** HTTP path. */
  readonly path: string;
  /** Inclusive HTTP status range that passes. */
  readonly expectStatus: readonly [number, number];
  /** HTTP body must contain this text. */
  readonly bodyContains?: string;
  /** UDP probe check: the app named in the PROBE; the member's pool name by default. */
  readonly app?: string;
  /** Time between checks (and between time-based re-evaluations with `kind: 'none'`). */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Spread of each interval as a fraction: 0.1 means ± 10 %. */
  readonly jitter: number;
  /** Expected load-report interval; unset: reports are not watched. */
  readonly reportIntervalMs?: number;
  /** Intervals without a report before the member counts as having missed its reports. */
  readonly missedReports: number;
}

export const POOL_HEALTH_DEFAULTS: PoolHealthConfig = Object.freeze({
  ...resolveThresholds(),
  kind: 'tcp',
  path: '/healthz',
  expectStatus: [200, 399] as const,
  intervalMs: 2_000,
  timeoutMs: 1_000,
  jitter: 0.1,
  missedReports: 3,
});

const KINDS: readonly CheckKind[] = ['tcp', 'http', 'udp', 'none'];

/** Fills in and checks one pool's config; `where` prefixes error paths. */
export function resolvePoolHealth(partial: Partial<PoolHealthConfig>, where = 'health'): PoolHealthConfig {
  const defined = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
  const c = { ...POOL_HEALTH_DEFAULTS, ...defined } as PoolHealthConfig;
  const bad = (key: string, expected: string, got: unknown): never => {
    throw new InvalidArgumentError(`${where}.${key}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  if (!KINDS.includes(c.kind)) bad('kind', KINDS.join(' | '), c.kind);
  if (!(c.intervalMs > 0) || !Number.isFinite(c.intervalMs)) bad('intervalMs', 'a number > 0', c.intervalMs);
  if (!(c.timeoutMs > 0) || !Number.isFinite(c.timeoutMs)) bad('timeoutMs', 'a number > 0', c.timeoutMs);
  if (!(c.jitter >= 0 && c.jitter <= 1)) bad('jitter', '0..1', c.jitter);
  if (!Number.isInteger(c.missedReports) || c.missedReports < 1)
    bad('missedReports', 'an integer >= 1', c.missedReports);
  if (c.reportIntervalMs !== undefined && !(c.reportIntervalMs > 0 && Number.isFinite(c.reportIntervalMs)))
    bad('reportIntervalMs', 'a number > 0', c.reportIntervalMs);
  const [lo, hi] = c.expectStatus;
  if (!(lo >= 100 && hi <= 599 && lo <= hi))
    bad('expectStatus', '[min, max] within 100..599', c.expectStatus);
  try {
    resolveThresholds(c);
  } catch (error) {
    throw new InvalidArgumentError(`${where}: ${(error as Error).message}`);
  }
  return Object.freeze(c);
}

/**
 * The port a check targets, or undefined when the member has none that fits. By default:
 * `health`, else `main`, else the first; for a UDP probe check `probe` comes first.
 */
export function healthPort(
  member: Member,
  port: string | number | undefined,
  kind?: CheckKind,
): number | undefined {
  if (typeof port === 'number') return port;
  if (port !== undefined) {
    const n = Number(port);
    return Number.isInteger(n) && n > 0 ? n : member.ports[port];
  }
  if (kind === 'udp' && member.ports.probe !== undefined) return member.ports.probe;
  return member.ports.health ?? member.ports.main ?? Object.values(member.ports)[0];
}

/**
 * A member's config: its pool's, refined by the labels `health.kind` (tcp | http | udp | none),
 * `health.port` (a number or the name of one of the member's ports) and `health.path`.
 * A bad label is reported to `onError` and ignored. Returns `base` itself when no label applies.
 */
export function memberHealthConfig(
  base: PoolHealthConfig,
  member: Member,
  onError: (error: unknown) => void = () => {},
): PoolHealthConfig {
  const { labels } = member;
  const over: { -readonly [K in keyof PoolHealthConfig]?: PoolHealthConfig[K] } = {};
  const kind = labels['health.kind'];
  if (kind !== undefined) {
    if (KINDS.includes(kind as CheckKind)) over.kind = kind as CheckKind;
    else
      onError(
        new InvalidArgumentError(
          `member ${member.id}: label health.kind: expected tcp | http | udp | none, got ${JSON.stringify(kind)}`,
        ),
      );
  }
  if (labels['health.port'] !== undefined) over.port = labels['health.port'];
  if (labels['health.path'] !== undefined) over.path = labels['health.path'];
  return Object.keys(over).length === 0 ? base : Object.freeze({ ...base, ...over });
}
