/**
 * Checks what a caller hands the etcd registry and encodes it as the JSON stored in etcd. The
 * member, load and health checks are the mesh's (the same values are valid in every registry);
 * a value etcd could not store is a programming error: InvalidArgumentError.
 */
import { InvalidArgumentError } from '../../errors.js';
import { encode } from './keys.js';

export { healthInput, loadInput, memberInput, ttlInput } from '../mesh/local-input.js';

/** etcd refuses requests over --max-request-bytes (1.5 MiB by default); leave room for the key. */
const MAX_VALUE_BYTES = 1_500_000;

export function idInput(id: unknown, what = 'member id'): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 1024) {
    throw new InvalidArgumentError(`${what}: expected a string of 1..1024 characters, got ${String(id)}`);
  }
  return id;
}

export function reasonInput(reason: unknown): string {
  if (typeof reason !== 'string') {
    throw new InvalidArgumentError(`reason: expected a string, got ${typeof reason}`);
  }
  return reason;
}

/** The stored form of an assignment: `{ value, updatedAt }` as JSON. */
export function assignmentInput(key: string, value: unknown, updatedAt: number): string {
  let json: string;
  try {
    json = encode({ value, updatedAt });
  } catch (error) {
    throw new InvalidArgumentError(`assignment ${key}: value is not JSON-serialisable (${String(error)})`);
  }
  if (Buffer.byteLength(json) > MAX_VALUE_BYTES) {
    throw new InvalidArgumentError(
      `assignment ${key}: expected at most ${MAX_VALUE_BYTES} bytes of JSON, got ${Buffer.byteLength(json)}`,
    );
  }
  return json;
}
