/**
 * Building the roles `usher run` starts from their config sections, kept out of runtime.ts
 * (which owns their lifecycle: start order, roles(), reload, close).
 */
import type { Metrics } from './admin/metrics.js';
import { ClusterRole } from './cluster/cluster-role.js';
import { type Config, etcdSchema } from './config/schema.js';
import { makeMember } from './core/model.js';
import { DemoStreamMember } from './demo/stream-member.js';
import { type ListHttpServer, startListHttp } from './list/list-http.js';
import { ListService } from './list/list-service.js';
import { ProbeAgent } from './probe/agent.js';
import { parseEndpoint } from './probe/host-port.js';
import { CoordinatorElection } from './registry/etcd/election.js';
import type { Registry } from './registry/registry.js';
import type { Logger } from './util/logger.js';

/**
 * Starts one probe agent and registers its member (advertised address, public port). `keep` gets
 * the agent before it starts, so that a failed start is still cleaned up by the caller.
 */
export async function startAgent(
  a: Config['agents'][number],
  registry: Registry,
  logger: Logger,
  keep: (agent: ProbeAgent) => void,
): Promise<void> {
  const advertise = a.advertise === undefined ? undefined : parseEndpoint(a.advertise);
  const agent = new ProbeAgent({
    id: a.id,
    app: a.app,
    site: a.site,
    host: a.host,
    port: a.port,
    upstream: parseEndpoint(a.upstream),
    ...(advertise ? { advertise } : {}),
    ...(a.incarnations ? { incarnations: a.incarnations } : {}),
    ...(a.assigners ? { assigners: a.assigners } : {}),
    sessionIdleMs: a.sessionIdleMs,
    maxSessions: a.maxSessions,
    registry,
    reportIntervalMs: a.reportIntervalMs,
  });
  keep(agent);
  const bound = await agent.start();
  const unspecified = bound.address === '0.0.0.0' || bound.address === '::';
  const address = advertise?.address ?? (unspecified ? '127.0.0.1' : bound.address);
  await registry.register(
    makeMember({
      id: a.id,
      pool: a.pool,
      addresses: [address],
      ports: { main: advertise?.port ?? bound.port },
      site: a.site,
      group: a.group,
      weight: a.weight,
      labels: { role: 'agent', ...(a.incarnations ? { incarnations: a.incarnations.join(',') } : {}) },
    }),
  );
  logger.info({ member: a.id, port: bound.port, upstream: a.upstream }, 'probe agent started');
}

/** The cluster role; in coordinator mode with its election through etcd (started here). */
export async function clusterRole(
  config: Config,
  registry: Registry,
  logger: Logger,
): Promise<{ role: ClusterRole; election: CoordinatorElection | undefined }> {
  const c = config.cluster!;
  const etcd = config.registry.etcd ?? etcdSchema.parse({});
  const election =
    c.exchange === 'coordinator'
      ? await CoordinatorElection.start({
          endpoints: etcd.endpoints,
          prefix: etcd.prefix,
          role: `cluster/${c.pool}`,
          candidate: c.member.id,
          dialTimeoutMs: etcd.dialTimeoutMs,
        })
      : undefined;
  election?.on('error', (err) => logger.warn({ err }, 'cluster: coordinator election'));
  const role = new ClusterRole({
    registry,
    logger,
    pool: c.pool,
    member: c.member,
    vip: c.vip,
    ports: c.ports,
    udpPorts: c.udpPorts,
    filter: c.filter,
    ...(c.availability !== undefined ? { availability: c.availability } : {}),
    intervalMs: c.intervalMs,
    table: c.table,
    seed: c.seed,
    buckets: c.buckets,
    ...(election ? { leadership: election } : {}),
  });
  return { role, election };
}

export function demoStreamMember(
  st: NonNullable<Config['demo']>['streams'][number],
  i: number,
  registry: Registry,
): DemoStreamMember {
  return new DemoStreamMember({
    id: `${st.name ?? st.pool}-${i + 1}`,
    pool: st.pool,
    host: st.host,
    port: st.basePort === 0 ? 0 : st.basePort + i,
    site: st.site,
    group: st.group,
    capacity: st.capacities?.[i % st.capacities.length] ?? 100,
    tickMs: st.tickMs,
    registry,
  });
}

/** The list service and its HTTP server (with the demo page when demo streams run). */
export async function startList(
  config: Config,
  registry: Registry,
  metrics: Metrics,
  logger: Logger,
  demo: boolean,
): Promise<{ service: ListService; http: ListHttpServer }> {
  const cfg = config.list!;
  const service = new ListService({
    registry,
    pools: cfg.pools ?? Object.keys(config.pools),
    cacheMaxAgeSec: cfg.maxAgeSec,
    metrics,
  });
  try {
    const http = await startListHttp({ service, host: cfg.host, port: cfg.port, demo, logger });
    return { service, http };
  } catch (error) {
    await service.close();
    throw error;
  }
}
