/**
 * Full-jitter exponential backoff (the "Exponential Backoff and Jitter" scheme): retry n waits a
 * uniform random time in [0, min(maxMs, baseMs·2ⁿ)], so that clients that lost the same member
 * at the same moment do not come back at the same moment. Pure and isomorphic.
 */

/** Full-jitter exponential backoff: attempt n waits a uniform random time in [0, min(maxMs, baseMs·2ⁿ)]. */
export interface BackoffOptions {
  readonly baseMs?: number;
  readonly maxMs?: number;
}

/** The wait before retry `attempt` (0-based): uniform in [0, min(maxMs, baseMs·2^attempt)]. */
export function backoffDelay(
  attempt: number,
  backoff: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const base = backoff.baseMs ?? 100;
  const max = backoff.maxMs ?? 5000;
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 52));
  return random() * cap;
}
