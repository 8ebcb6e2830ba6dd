/**
 * Options of the mesh registry: defaults and validation. A bad option throws
 * InvalidArgumentError naming the option, before anything is started.
 */
import { InvalidArgumentError } from '../../errors.js';

/** Pino-compatible logger; every method is optional. */
export interface MeshLogger {
  debug?(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
  warn?(obj: object, msg?: string): void;
}

export interface MeshOptions {
  /** Unique name of this node in the mesh. */
  readonly nodeId: string;
  /** Host the TCP listener binds to. Default `127.0.0.1`. */
  readonly host?: string;
  /** Port of the TCP listener; 0 picks an ephemeral port. Default 0. */
  readonly port?: number;
  /** `host:port` other nodes dial to reach this one. Default `host:boundPort`. */
  readonly advertise?: string;
  /** `host:port` of some peers; the node learns the others from them. Default none. */
  readonly seeds?: readonly string[];
  /** Shared secret: when set, every connection authenticates both ways (HMAC-SHA256). */
  readonly secret?: string;
  /** Heartbeat period in ms. Default 500. */
  readonly intervalMs?: number;
  /** A peer silent for `missedReports × intervalMs` is checked. Default 3. */
  readonly missedReports?: number;
  /** How long a ping (direct or indirect) waits for its answer, in ms. Default 400. */
  readonly pingTimeoutMs?: number;
  /** Peers asked to ping a silent node on our behalf (also Lifeguard's K). Default 3. */
  readonly indirectChecks?: number;
  /** Shortest suspicion before a node is declared dead, in ms. Default 2000. */
  readonly suspicionMinMs?: number;
  /** Longest suspicion (no confirmation, or the node's port still accepts), in ms. Default 8000. */
  readonly suspicionMaxMs?: number;
  /** Members owned by a dead node are removed (reason `node-dead`) after this long, in ms. Default 60000. */
  readonly reapAfterMs?: number;
  /** Deletion markers (tombstones) are forgotten after this long, in ms. Default 300000. */
  readonly tombstoneTtlMs?: number;
  /** Largest frame accepted or sent, in bytes. Default 1 MiB. */
  readonly maxFrameBytes?: number;
  /** Called when a registry listener throws; the error never reaches the caller of the change. */
  readonly onListenerError?: (error: unknown) => void;
  readonly logger?: MeshLogger;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export interface ResolvedMeshOptions {
  readonly nodeId: string;
  readonly host: string;
  readonly port: number;
  readonly advertise: string | undefined;
  readonly seeds: readonly string[];
  readonly secret: string | undefined;
  readonly intervalMs: number;
  readonly missedReports: number;
  readonly pingTimeoutMs: number;
  readonly indirectChecks: number;
  readonly suspicionMinMs: number;
  readonly suspicionMaxMs: number;
  readonly reapAfterMs: number;
  readonly tombstoneTtlMs: number;
  readonly maxFrameBytes: number;
  readonly onListenerError: (error: unknown) => void;
  readonly logger: MeshLogger;
}

export const MESH_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  intervalMs: 500,
  missedReports: 3,
  pingTimeoutMs: 400,
  indirectChecks: 3,
  suspicionMinMs: 2_000,
  suspicionMaxMs: 8_000,
  reapAfterMs: 60_000,
  tombstoneTtlMs: 300_000,
  maxFrameBytes: 1024 * 1024,
});

function fail(name: string, expected: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  throw new InvalidArgumentError(`mesh option ${name}: expected ${expected}, got ${shown}`);
}

function int(name: string, value: unknown, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(name, `an integer in ${min}..${max}`, value);
  }
  return value;
}

/** Parses `host:port` (IPv6 as `[::1]:7000`); undefined when it is not one. */
export function parseHostPort(text: string): HostPort | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return undefined;
  return { host: (match[1] ?? match[2])!, port };
}

/** `host:port`, bracketing IPv6 hosts. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function hostPort(name: string, value: unknown): string {
  if (typeof value !== 'string' || !parseHostPort(value)) fail(name, 'host:port', value);
  return value;
}

/** Fills defaults and checks every option; throws InvalidArgumentError naming the first bad one. */
export function resolveMeshOptions(options: MeshOptions): ResolvedMeshOptions {
  if (options === null || typeof options !== 'object') fail('(options)', 'an object', options);
  const { nodeId } = options;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (typeof nodeId !== 'string' || !/^[^\s\u0000-\u001f]{1,128}$/.test(nodeId)) {
    fail('nodeId', '1..128 characters without spaces', nodeId);
  }
  const host = options.host ?? MESH_DEFAULTS.host;
  if (typeof host !== 'string' || host.length === 0) fail('host', 'a host name or address', host);
  const port = int('port', options.port, MESH_DEFAULTS.port, 0, 65_535);
  const advertise = options.advertise === undefined ? undefined : hostPort('advertise', options.advertise);
  const seeds = options.seeds ?? [];
  if (!Array.isArray(seeds)) fail('seeds', 'an array of host:port', seeds);
  for (const [i, s] of seeds.entries()) hostPort(`seeds[${i}]`, s);
  if (options.secret !== undefined && (typeof options.secret !== 'string' || options.secret.length === 0)) {
    fail('secret', 'a non-empty string', options.secret);
  }
  const intervalMs = int('intervalMs', options.intervalMs, MESH_DEFAULTS.intervalMs, 1);
  const missedReports = int('missedReports', options.missedReports, MESH_DEFAULTS.missedReports, 1);
  const pingTimeoutMs = int('pingTimeoutMs', options.pingTimeoutMs, MESH_DEFAULTS.pingTimeoutMs, 1);
  const indirectChecks = int('indirectChecks', options.indirectChecks, MESH_DEFAULTS.indirectChecks, 0, 64);
  const suspicionMinMs = int('suspicionMinMs', options.suspicionMinMs, MESH_DEFAULTS.suspicionMinMs, 1);
  const suspicionMaxMs = int(
    'suspicionMaxMs',
    options.suspicionMaxMs,
    Math.max(MESH_DEFAULTS.suspicionMaxMs, suspicionMinMs),
    suspicionMinMs,
  );
  const reapAfterMs = int('reapAfterMs', options.reapAfterMs, MESH_DEFAULTS.reapAfterMs, 0);
  const tombstoneTtlMs = int('tombstoneTtlMs', options.tombstoneTtlMs, MESH_DEFAULTS.tombstoneTtlMs, 1);
  const maxFrameBytes = int(
    'maxFrameBytes',
    options.maxFrameBytes,
    MESH_DEFAULTS.maxFrameBytes,
    1024,
    256 * 1024 * 1024,
  );
  if (options.onListenerError !== undefined && typeof options.onListenerError !== 'function') {
    fail('onListenerError', 'a function', options.onListenerError);
  }
  if (options.logger !== undefined && (options.logger === null || typeof options.logger !== 'object')) {
    fail('logger', 'an object with debug/info/warn methods', options.logger);
  }
  return Object.freeze({
    nodeId,
    host,
    port,
    advertise,
    seeds: Object.freeze([...seeds]),
    secret: options.secret,
    intervalMs,
    missedReports,
    pingTimeoutMs,
    indirectChecks,
    suspicionMinMs,
    suspicionMaxMs,
    reapAfterMs,
    tombstoneTtlMs,
    maxFrameBytes,
    onListenerError: options.onListenerError ?? (() => {}),
    logger: options.logger ?? {},
  });
}
