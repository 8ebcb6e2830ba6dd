import { InvalidArgumentError } from '../../errors.js';
import { type LeastLoadedOptions, LeastLoadedPolicy } from './least-loaded.js';
import { type MaglevOptions, MaglevPolicy } from './maglev.js';
import { type P2cOptions, P2cPolicy } from './p2c.js';
import type { Policy } from './policy.js';
import { type PriorityLoadOptions, PriorityLoadPolicy } from './priority-load.js';
import { type RandomOptions, RandomPolicy } from './random.js';
import { RangesPolicy, type RangesPolicyOptions } from './ranges.js';
import { RoundRobinPolicy } from './round-robin.js';
import { type WeightedRandomOptions, WeightedRandomPolicy } from './weighted-random.js';

export * from './high-water.js';
export * from './least-loaded.js';
export * from './maglev.js';
export * from './p2c.js';
export * from './policy.js';
export * from './priority-load.js';
export * from './random.js';
export * from './ranges.js';
export * from './round-robin.js';
export * from './weighted-random.js';

/**
 * Names of the policies `createPolicy` builds (the `policy` key of a pool in the config).
 * `high-water` is not among them: it is a stateful scheduler with leases, `HighWaterScheduler`.
 */
export const POLICY_NAMES = [
  'round-robin',
  'random',
  'weighted-random',
  'least-loaded',
  'p2c',
  'priority-load',
  'ranges',
  'maglev',
] as const;

export type PolicyName = (typeof POLICY_NAMES)[number];

/** Options accepted by each policy. */
export interface PolicyOptionsByName {
  'round-robin': Record<string, never>;
  random: RandomOptions;
  'weighted-random': WeightedRandomOptions;
  'least-loaded': LeastLoadedOptions;
  p2c: P2cOptions;
  'priority-load': PriorityLoadOptions;
  ranges: RangesPolicyOptions;
  maglev: MaglevOptions;
}

type Check = (value: unknown) => string | undefined;

const isFunction: Check = (v) =>
  typeof v === 'function' ? undefined : 'expected a function () => number in [0, 1)';
const isBoolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'expected true or false');
const isString: Check = (v) => (typeof v === 'string' ? undefined : 'expected a string'); // content checked by the policy
const isNumber: Check = (v) => (typeof v === 'number' ? undefined : 'expected a number'); // range checked by the policy
const isSpace: Check = (v) =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as { lo?: unknown }).lo === 'number' &&
  typeof (v as { hi?: unknown }).hi === 'number'
    ? undefined
    : 'expected { lo, hi } with integer lo <= hi';

/** The options each policy knows, with a type check; value ranges are checked by the constructors. */
const KNOWN_OPTIONS: Record<PolicyName, Record<string, Check>> = {
  'round-robin': {},
  random: { random: isFunction },
  'weighted-random': { random: isFunction },
  'least-loaded': { metric: isString, normalizeByWeight: isBoolean, random: isFunction },
  p2c: { metric: isString, random: isFunction },
  'priority-load': { metric: isString, normalizeByWeight: isBoolean, sharpen: isBoolean, random: isFunction },
  ranges: { space: isSpace, buckets: isNumber, random: isFunction },
  maglev: { tableSize: isNumber, random: isFunction },
};

export function isPolicyName(name: unknown): name is PolicyName {
  return typeof name === 'string' && (POLICY_NAMES as readonly string[]).includes(name);
}

/**
 * Builds a policy by name. Throws InvalidArgumentError (code `USHER_ERR_INVALID_ARGUMENT`) for
 * an unknown name, an unknown option, or an option of the wrong type or out of range; the
 * message names the policy and the option, says what was expected and what was found.
 * Options whose value is `undefined` are ignored, as if absent (defaults apply).
 */
export function createPolicy<N extends PolicyName>(name: N, options?: PolicyOptionsByName[N]): Policy;
export function createPolicy(name: string, options?: Record<string, unknown>): Policy;
export function createPolicy(name: string, options: object = {}): Policy {
  if (!isPolicyName(name)) {
    const hint =
      name === 'high-water' ? ' (high-water is a scheduler with leases: use HighWaterScheduler)' : '';
    throw new InvalidArgumentError(
      `policy: expected one of ${POLICY_NAMES.join(', ')}, got ${JSON.stringify(name)}${hint}`,
    );
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(
      `policy ${name}: options: expected an object, got ${JSON.stringify(options)}`,
    );
  }
  const known = KNOWN_OPTIONS[name];
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const check = known[key];
    if (check === undefined) {
      const allowed = Object.keys(known);
      throw new InvalidArgumentError(
        `policy ${name}: unknown option ${JSON.stringify(key)}; expected ${allowed.length === 0 ? 'no options' : `one of ${allowed.join(', ')}`}`,
      );
    }
    const problem = check(value);
    if (problem !== undefined) {
      throw new InvalidArgumentError(`policy ${name}: option ${key}: ${problem}, got ${describe(value)}`);
    }
  }
  const o = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as never;
  switch (name) {
    case 'round-robin':
      return new RoundRobinPolicy();
    case 'random':
      return new RandomPolicy(o);
    case 'weighted-random':
      return new WeightedRandomPolicy(o);
    case 'least-loaded':
      return new LeastLoadedPolicy(o);
    case 'p2c':
      return new P2cPolicy(o);
    case 'priority-load':
      return new PriorityLoadPolicy(o);
    case 'ranges':
      return new RangesPolicy(o);
    case 'maglev':
      return new MaglevPolicy(o);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
