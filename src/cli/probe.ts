/**
 * `usher probe`: asks a probe assigner (seed 000) where a client of APP would be placed, prints
 * the assignment, and ends the session it opened at once (BYE). Exit 0 when placed, 1 when the
 * balancer does not answer or refuses, 2 for bad usage.
 */
import { connect, formatEndpoint, parseEndpoint } from '../client/node.js';
import { ProbeRejectedError, ProbeTimeoutError, UsageError } from '../errors.js';
import type { CliIo } from './main.js';

export const PROBE_DEFAULT_TIMEOUT_MS = 2000;
/** Probes sent within the timeout (UDP may lose one). */
const ATTEMPTS = 3;

export interface ProbeCommandOptions {
  readonly balancer?: string | undefined;
  readonly app?: string | undefined;
  readonly incarnation?: string | undefined;
  readonly user?: string | undefined;
  readonly timeout?: string | undefined;
  readonly json?: boolean;
}

export async function probeCommand(options: ProbeCommandOptions, io: CliIo): Promise<number> {
  if (options.balancer === undefined) throw new UsageError('probe: --balancer HOST:PORT is required');
  if (options.app === undefined || options.app === '') throw new UsageError('probe: --app NAME is required');
  let balancer: ReturnType<typeof parseEndpoint>;
  try {
    balancer = parseEndpoint(options.balancer);
  } catch (error) {
    throw new UsageError(`probe: --balancer: ${(error as Error).message}`);
  }
  const timeoutMs = options.timeout === undefined ? PROBE_DEFAULT_TIMEOUT_MS : Number(options.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1)
    throw new UsageError(
      `probe: --timeout: expected a whole number of milliseconds > 0, got ${options.timeout}`,
    );

  let client: Awaited<ReturnType<typeof connect>>;
  try {
    client = await connect({
      balancer,
      app: options.app,
      ...(options.incarnation !== undefined ? { incarnation: options.incarnation } : {}),
      ...(options.user !== undefined ? { user: options.user } : {}),
      probeTimeoutMs: Math.max(1, Math.ceil(timeoutMs / ATTEMPTS)),
      probeAttempts: ATTEMPTS,
      backoff: { baseMs: 0, maxMs: 0 },
      heartbeatMs: 3_600_000,
    });
  } catch (error) {
    if (error instanceof ProbeTimeoutError) {
      io.stderr.write(`usher: no answer from ${options.balancer} within ${timeoutMs} ms\n`);
      return 1;
    }
    if (error instanceof ProbeRejectedError) {
      io.stderr.write(`usher: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
  const a = client.assignment;
  await client.close();
  if (options.json) {
    io.stdout.write(`${JSON.stringify(a)}\n`);
    return 0;
  }
  const rows: [string, string][] = [
    ['member', a.member],
    ['address', formatEndpoint(a.endpoint)],
    ['app', a.app],
    ['incarnation', a.incarnation],
    ['site', a.site],
    ['session', a.session],
  ];
  io.stdout.write(rows.map(([k, v]) => `${k.padEnd(12)} ${v}\n`).join(''));
  return 0;
}
