/**
 * Options of the etcd registry: defaults and validation. A bad option throws
 * InvalidArgumentError naming the option, before anything connects.
 */
import { InvalidArgumentError } from '../../errors.js';

/** Pino-compatible logger; every method is optional. */
export interface EtcdLogger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
}

export interface EtcdRegistryOptions {
  /** etcd client URLs, `http://host:port` (or `https://`): every member of the cluster, or some. */
  readonly endpoints: readonly string[];
  /** Key prefix of this installation; starts and ends with `/`. Default `/usher/`. */
  readonly prefix?: string;
  /** Deadline of each call to etcd, and of the first connection in `start`, in ms. Default 5000. */
  readonly dialTimeoutMs?: number;
  /** Longest pause between two attempts to re-open the watch after a disconnect, in ms. Default 2000. */
  readonly reconnectMaxMs?: number;
  /** How long a deregistration's removal record stays, in seconds. Default 60. */
  readonly removalTtlSec?: number;
  /** Called when a registry listener throws; the error never reaches the caller of the change. */
  readonly onListenerError?: (error: unknown) => void;
  readonly logger?: EtcdLogger;
}

export interface ResolvedEtcdOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly dialTimeoutMs: number;
  readonly reconnectMaxMs: number;
  readonly removalTtlSec: number;
  readonly onListenerError: (error: unknown) => void;
  readonly logger: EtcdLogger;
}

export const ETCD_DEFAULTS = Object.freeze({
  prefix: '/usher/',
  dialTimeoutMs: 5_000,
  reconnectMaxMs: 2_000,
  removalTtlSec: 60,
});

function fail(name: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got) : Array.isArray(got) ? '[…]' : String(got);
  throw new InvalidArgumentError(`etcd option ${name}: expected ${expected}, got ${shown}`);
}

function int(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(name, `an integer in ${min}..${max}`, value);
  }
  return value;
}

const ENDPOINT = /^https?:\/\/[^\s/]+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const PREFIX = /^\/[^\s\u0000-\u001f]*\/$/;

/** Fills defaults and checks every option; throws InvalidArgumentError naming the first bad one. */
export function resolveEtcdOptions(options: EtcdRegistryOptions): ResolvedEtcdOptions {
  if (options === null || typeof options !== 'object') fail('(options)', 'an object', options);
  const { endpoints } = options;
  if (!Array.isArray(endpoints) || endpoints.length === 0) {
    fail('endpoints', 'a non-empty array of http://host:port', endpoints);
  }
  for (const [i, e] of endpoints.entries()) {
    if (typeof e !== 'string' || !ENDPOINT.test(e)) fail(`endpoints[${i}]`, 'http://host:port', e);
  }
  const prefix = options.prefix ?? ETCD_DEFAULTS.prefix;
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    fail('prefix', 'a key prefix that starts and ends with /', prefix);
  }
  const dialTimeoutMs = int(
    'dialTimeoutMs',
    options.dialTimeoutMs,
    ETCD_DEFAULTS.dialTimeoutMs,
    100,
    600_000,
  );
  const reconnectMaxMs = int(
    'reconnectMaxMs',
    options.reconnectMaxMs,
    ETCD_DEFAULTS.reconnectMaxMs,
    10,
    600_000,
  );
  const removalTtlSec = int('removalTtlSec', options.removalTtlSec, ETCD_DEFAULTS.removalTtlSec, 1, 86_400);
  if (options.onListenerError !== undefined && typeof options.onListenerError !== 'function') {
    fail('onListenerError', 'a function', options.onListenerError);
  }
  if (options.logger !== undefined && (options.logger === null || typeof options.logger !== 'object')) {
    fail('logger', 'an object with debug/info/warn methods', options.logger);
  }
  return Object.freeze({
    endpoints: Object.freeze([...endpoints]),
    prefix,
    dialTimeoutMs,
    reconnectMaxMs,
    removalTtlSec,
    onListenerError: options.onListenerError ?? (() => {}),
    logger: options.logger ?? {},
  });
}
