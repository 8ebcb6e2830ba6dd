/**
 * Builds the registry the config names (`registry.kind`): the embedded memory registry, a node
 * of the status mesh (L3.1, L3.2) whose shared secret comes from USHER_MESH_SECRET, or a client
 * of etcd (scale-out; docs/protocols/etcd.md).
 */
import { hostname } from 'node:os';
import { type Config, etcdSchema, meshSchema } from '../config/schema.js';
import type { Logger } from '../util/logger.js';
import { EtcdRegistry } from './etcd/index.js';
import { LeasedRegistry } from './leased.js';
import { MemoryRegistry } from './memory.js';
import { MeshRegistry } from './mesh/index.js';
import type { Registry } from './registry.js';

export interface CreateRegistryOptions {
  readonly logger: Logger;
  /** Environment to read USHER_MESH_SECRET from (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
}

export async function createRegistry(
  config: Config['registry'],
  options: CreateRegistryOptions,
): Promise<Registry> {
  const { logger } = options;
  const onListenerError = (err: unknown) => logger.error({ err }, 'registry listener failed');
  if (config.kind === 'memory') return new MemoryRegistry({ onListenerError });
  if (config.kind === 'etcd') return createEtcd(config.etcd ?? etcdSchema.parse({}), logger, onListenerError);
  const mesh = config.mesh ?? meshSchema.parse({});
  const secret = (options.env ?? process.env).USHER_MESH_SECRET;
  const log = logger.child({ component: 'mesh' });
  const registry = await MeshRegistry.start({
    nodeId: mesh.node ?? hostname(),
    host: mesh.host,
    port: mesh.port,
    ...(mesh.advertise !== undefined ? { advertise: mesh.advertise } : {}),
    seeds: mesh.seeds,
    ...(secret ? { secret } : {}),
    intervalMs: mesh.intervalMs,
    missedReports: mesh.missedReports,
    pingTimeoutMs: mesh.pingTimeoutMs,
    indirectChecks: mesh.indirectChecks,
    suspicionMinMs: mesh.suspicionMinMs,
    suspicionMaxMs: mesh.suspicionMaxMs,
    reapAfterMs: mesh.reapAfterMs,
    onListenerError,
    logger: {
      debug: (obj, msg) => log.debug(obj, msg),
      info: (obj, msg) => log.info(obj, msg),
      warn: (obj, msg) => log.warn(obj, msg),
    },
  });
  if (!secret) logger.warn('mesh: USHER_MESH_SECRET is not set, peers are not authenticated');
  return registry;
}

async function createEtcd(
  etcd: NonNullable<Config['registry']['etcd']>,
  logger: Logger,
  onListenerError: (err: unknown) => void,
): Promise<Registry> {
  const log = logger.child({ component: 'etcd' });
  const registry = await EtcdRegistry.start({
    endpoints: etcd.endpoints,
    prefix: etcd.prefix,
    dialTimeoutMs: etcd.dialTimeoutMs,
    onListenerError,
    logger: {
      debug: (obj, msg) => log.debug(obj, msg),
      info: (obj, msg) => log.info(obj, msg),
      warn: (obj, msg) => log.warn(obj, msg),
    },
  });
  // The members this process registers go when it goes (their lease stops being renewed).
  return new LeasedRegistry(registry, etcd.leaseTtlMs, log);
}
