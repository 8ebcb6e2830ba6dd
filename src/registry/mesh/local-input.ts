/**
 * Checks and copies what a caller hands the mesh registry (a member, a load report, an
 * assignment value) into the plain JSON form that is stored and replicated. A value the mesh
 * could not replicate is a programming error: InvalidArgumentError.
 */
import type { HealthState, LoadReport, Member } from '../../core/model.js';
import { InvalidArgumentError } from '../../errors.js';
import { isHealthState, isLoadReport, isMember } from './messages.js';

export function memberInput(member: Member): Member {
  if (!isMember(member)) {
    throw new InvalidArgumentError(
      'member: expected id, pool, addresses, ports, site, group, weight and labels with finite numbers',
    );
  }
  return {
    id: member.id,
    pool: member.pool,
    addresses: [...member.addresses],
    ports: { ...member.ports },
    site: member.site,
    group: member.group,
    weight: member.weight,
    labels: { ...member.labels },
  };
}

export function loadInput(load: LoadReport): LoadReport {
  if (!isLoadReport(load)) {
    throw new InvalidArgumentError(
      'load report: expected users, connections, inFlight, cpu, custom and timestamp as finite numbers',
    );
  }
  return {
    users: load.users,
    connections: load.connections,
    inFlight: load.inFlight,
    cpu: load.cpu,
    custom: { ...load.custom },
    timestamp: load.timestamp,
  };
}

export function healthInput(health: unknown, what = 'health'): HealthState {
  if (!isHealthState(health)) {
    throw new InvalidArgumentError(`${what}: expected up, suspect, down or draining, got ${String(health)}`);
  }
  return health;
}

export function ttlInput(ttlMs: unknown): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new InvalidArgumentError(`ttlMs: expected a number of milliseconds > 0, got ${String(ttlMs)}`);
  }
  return ttlMs;
}

/** A JSON copy of an assignment value, at most `maxBytes` once encoded. */
export function valueInput(key: unknown, value: unknown, maxBytes: number): unknown {
  if (typeof key !== 'string')
    throw new InvalidArgumentError(`assignment key: expected a string, got ${typeof key}`);
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new InvalidArgumentError(`assignment ${key}: value is not JSON-serialisable (${String(error)})`);
  }
  if (json === undefined) throw new InvalidArgumentError(`assignment ${key}: value is not JSON-serialisable`);
  if (Buffer.byteLength(json) + Buffer.byteLength(key) + 256 > maxBytes) {
    throw new InvalidArgumentError(
      `assignment ${key}: value too large for one mesh frame (max ${maxBytes} bytes)`,
    );
  }
  return JSON.parse(json);
}
