/**
 * The Usher server API (`usher`): what users may build on. Everything else is internal.
 */

export { Metrics, type MetricsOptions } from './admin/metrics.js';
export {
  type AdminActions,
  type AdminServer,
  type AdminServerOptions,
  createAdminServer,
} from './admin/server.js';
export { AvailabilityAgent, type AvailabilitySample } from './cluster/availability.js';
export { ClusterRole, type ClusterRoleOptions } from './cluster/cluster-role.js';
export { applyClusterTable, type ClusterTableOptions, renderClusterTable } from './cluster/nft-filter.js';
export { movedShare, ownerOf, planRanges, type RangePlan } from './cluster/plan.js';
export { UdpClusterFilter, type UdpClusterFilterOptions } from './cluster/udp-filter.js';
export { connectionValue } from './cluster/value.js';
export { loadConfigFile, parseConfig, validateConfig } from './config/load.js';
export type { Config, ConfigInput, HealthCheckConfig, MemberConfig, PoolConfig } from './config/schema.js';
export * from './core/hash.js';
export * from './core/model.js';
export * from './core/policy/index.js';
export * from './errors.js';
export * from './list/entry.js';
export { LIST_FORMATS, type ListFormat, negotiate, renderList } from './list/formats.js';
export { ListService, type ListServiceOptions } from './list/list-service.js';
export { StreamServer, type StreamServerOptions, type StreamServerStats } from './list/stream-server.js';
export { TickerFeed, type TickerOptions } from './list/ticker.js';
export { ProbeAgent, type ProbeAgentOptions, type ProbeAgentStats } from './probe/agent.js';
export { Assigner, type AssignerOptions, type AssignerSummary } from './probe/assigner.js';
export { decode as decodeProbe, encode as encodeProbe } from './probe/codec.js';
export {
  type MemberSession,
  ProbeMember,
  type ProbeMemberOptions,
  type RelayedData,
} from './probe/member.js';
export * as probeMessages from './probe/messages.js';
export { CoordinatorElection, type CoordinatorElectionOptions } from './registry/etcd/election.js';
export { EtcdRegistry, type EtcdRegistryOptions, type EtcdStats } from './registry/etcd/index.js';
export { LeasedRegistry } from './registry/leased.js';
export { MemoryRegistry, type MemoryRegistryOptions } from './registry/memory.js';
export {
  MESH_DEFAULTS,
  type MeshNodeView,
  type MeshOptions,
  MeshRegistry,
  type MeshStats,
} from './registry/mesh/index.js';
export type {
  Assignment,
  RegisterOptions,
  Registry,
  RegistryEvent,
  RegistryListener,
  RegistrySnapshot,
} from './registry/registry.js';
export { Usher, type UsherOptions } from './runtime.js';
export { createLogger, type Logger, type LoggerOptions } from './util/logger.js';
export { VERSION } from './version.js';
